"""Built-in queue-selection policies: which waiting interaction a freed agent takes next.

When an agent frees up, the router looks at the first interaction of every queue (and
requirement) the agent can serve and takes the one with the lowest key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pluggy

from .strategy import QueueSelectorSpec

if TYPE_CHECKING:
    from .state import Waiting

hookimpl = pluggy.HookimplMarker("omniroute")


def effective_priority(waiting: Waiting, now: float) -> float:
    """Queue priority plus interaction priority, plus one level per `aging` seconds
    waited, so nothing starves."""
    if waiting.aging <= 0:
        return float(waiting.rank)
    return waiting.rank + (now - waiting.enqueued_at) / waiting.aging


class PrioritySlaWait:
    """The default: highest (aged) priority level, then least time left before the SLA
    is breached, then the longest wait."""

    name = "priority-sla-wait"

    def key(self, waiting: Waiting, now: float) -> Any:
        aging = waiting.aging
        if aging > 0:
            level = waiting.rank + math.floor((now - waiting.enqueued_at) / aging)
        else:
            level = waiting.rank
        return (-level, waiting.sla_deadline, waiting.enqueued_at, waiting.seq)


class OldestFirst:
    """Strictly the longest-waiting interaction, whatever its queue or priority."""

    name = "oldest-first"

    def key(self, waiting: Waiting, now: float) -> Any:
        return (waiting.enqueued_at, waiting.seq)


@hookimpl
def omniroute_queue_selectors() -> Iterator[QueueSelectorSpec]:
    for selector in (PrioritySlaWait, OldestFirst):
        doc = (selector.__doc__ or "").split(".")[0]
        yield QueueSelectorSpec(name=selector.name, factory=selector, description=doc)

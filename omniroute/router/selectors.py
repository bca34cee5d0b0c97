"""Built-in queue-selection policies: which waiting interaction a freed agent takes next.

When an agent frees up, the router looks at the first interaction of every queue (and
requirement) the agent can serve and takes the one with the lowest key. The classes
live in `ordering.py`, compiled with the router; this module, the plugin, stays Python.
"""

from __future__ import annotations

from collections.abc import Iterator

import pluggy

from .ordering import OldestFirst, PrioritySlaWait, effective_priority
from .strategy import QueueSelectorSpec

__all__ = ["OldestFirst", "PrioritySlaWait", "effective_priority", "omniroute_queue_selectors"]

hookimpl = pluggy.HookimplMarker("omniroute")


@hookimpl
def omniroute_queue_selectors() -> Iterator[QueueSelectorSpec]:
    for selector in (PrioritySlaWait, OldestFirst):
        doc = selector.description
        yield QueueSelectorSpec(name=selector.name, factory=selector, description=doc)

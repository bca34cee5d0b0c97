"""How the built-in strategies order agents and the built-in queue-selection policies
order interactions: the classes behind `strategies.py` and `selectors.py`.

Their keys are computed on every decision (an agent's key whenever the agent changes,
a selection key for each queue a freed agent could serve), so this module is compiled
with the router (docs/performance.md). The modules that register them through the
plugin hooks stay Python: pluggy marks its hook functions with attributes, which a
compiled function cannot carry. mypyc also drops class docstrings, so what `omniroute
plugins` says of each is its `description`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .state import AgentStatus, Waiting
from .strategy import BaseStrategy


class LongestIdle(BaseStrategy):
    name = "longest-idle"
    description = "The agent who has been free the longest since their last contact."

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.idle_since, agent.ordinal)


class FewestAnswered(BaseStrategy):
    name = "fewest-answered"
    description = "The agent who answered the fewest contacts (since start or last reset)."

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.answered, agent.idle_since, agent.ordinal)


class LeastTalkTime(BaseStrategy):
    name = "least-talk-time"
    description = "The agent with the least handling time so far (spreads the talking)."

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.talk_time, agent.idle_since, agent.ordinal)


class BestSkill(BaseStrategy):
    name = "best-skill"
    description = "The most proficient agent in the required skills; ties: longest idle."

    def group_key(self, skills: Mapping[str, int], requirement: Mapping[str, int]) -> Any:
        # Highest total level over the required skills first (negated: lower key wins).
        return (-sum(skills.get(s, 0) for s in requirement),)

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.idle_since, agent.ordinal)


class LoadBalance(BaseStrategy):
    name = "load-balance"
    description = "The agent using the smallest share of their capacity."  # chats, emails

    def agent_key(self, agent: AgentStatus) -> Any:
        share = agent.total_load / agent.total_capacity if agent.total_capacity else 1.0
        return (share, agent.idle_since, agent.ordinal)


class RoundRobin(BaseStrategy):
    name = "round-robin"
    description = "Each agent in turn, remembering where it left off."
    # The least recently offered one goes next, ties in config order. One instance per
    # queue, so each queue keeps its turn.

    def __init__(self) -> None:
        self._turn = 0
        self._last: dict[str, int] = {}

    def agent_key(self, agent: AgentStatus) -> Any:
        return (self._last.get(agent.id, 0), agent.ordinal)

    def on_offer(self, agent: AgentStatus) -> None:
        self._turn += 1
        self._last[agent.id] = self._turn

    def snapshot_state(self) -> Any:
        return [self._turn, self._last]

    def restore_state(self, state: Any) -> None:
        self._turn, last = state
        self._last = dict(last)


class Random(BaseStrategy):
    name = "random"
    description = "A uniformly random free agent."
    # The draw hashes `[routing] seed`, the queue, the interaction and the offer number,
    # so the same run chooses the same agents, and so does a router rebuilt from the log.
    scan = True

    def __init__(self, seed: str) -> None:
        self._seed = seed

    def agent_key(self, agent: AgentStatus) -> Any:
        return agent.ordinal  # unused for ordering: `choose` decides

    def choose(self, agents: Sequence[AgentStatus], interaction_id: str, n: int) -> AgentStatus:
        digest = hashlib.blake2b(
            f"{self._seed}:{interaction_id}:{n}".encode(), digest_size=8
        ).digest()
        return agents[int.from_bytes(digest, "big") % len(agents)]


class RingAll(BaseStrategy):
    name = "ring-all"
    description = "Every matching available agent at once; the first to accept wins."
    ring_all = True

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.idle_since, agent.ordinal)


def effective_priority(waiting: Waiting, now: float) -> float:
    """Queue priority plus interaction priority, plus one level per `aging` seconds
    waited, so nothing starves."""
    if waiting.aging <= 0:
        return float(waiting.rank)
    return waiting.rank + (now - waiting.enqueued_at) / waiting.aging


class PrioritySlaWait:
    name: ClassVar[str] = "priority-sla-wait"
    description: ClassVar[str] = (
        "The default: highest (aged) priority level, then least time left before the SLA "
        "is breached, then the longest wait."
    )

    def key(self, waiting: Waiting, now: float) -> Any:
        aging = waiting.aging
        if aging > 0:
            level = waiting.rank + math.floor((now - waiting.enqueued_at) / aging)
        else:
            level = waiting.rank
        return (-level, waiting.sla_deadline, waiting.enqueued_at, waiting.seq)


class OldestFirst:
    name: ClassVar[str] = "oldest-first"
    description: ClassVar[str] = "Strictly the longest-waiting interaction, whatever its queue."

    def key(self, waiting: Waiting, now: float) -> Any:
        return (waiting.enqueued_at, waiting.seq)

"""The built-in routing strategies, registered through the same hook a plugin uses.

Each orders agents by a key (lower is offered first). Ties fall to the agent's position
in the config, so decisions are repeatable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from .strategy import BaseStrategy, StrategySpec

if TYPE_CHECKING:
    from ..model import Queue, Routing
    from .state import AgentStatus

hookimpl = pluggy.HookimplMarker("omniroute")


class LongestIdle(BaseStrategy):
    """The agent who has been free the longest since their last contact."""

    name = "longest-idle"

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.idle_since, agent.ordinal)


class FewestAnswered(BaseStrategy):
    """The agent who answered the fewest contacts (since start or last reset)."""

    name = "fewest-answered"

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.answered, agent.idle_since, agent.ordinal)


class LeastTalkTime(BaseStrategy):
    """The agent with the least handling time so far: spreads the talking evenly."""

    name = "least-talk-time"

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.talk_time, agent.idle_since, agent.ordinal)


class BestSkill(BaseStrategy):
    """The most proficient agent in the required skills; ties to the longest idle."""

    name = "best-skill"

    def group_key(self, skills: Mapping[str, int], requirement: Mapping[str, int]) -> Any:
        # Highest total level over the required skills first (negated: lower key wins).
        return (-sum(skills.get(s, 0) for s in requirement),)

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.idle_since, agent.ordinal)


class LoadBalance(BaseStrategy):
    """The agent using the smallest share of their capacity: spreads chats and emails."""

    name = "load-balance"

    def agent_key(self, agent: AgentStatus) -> Any:
        share = agent.total_load / agent.total_capacity if agent.total_capacity else 1.0
        return (share, agent.idle_since, agent.ordinal)


class RoundRobin(BaseStrategy):
    """Each agent in turn, remembering where it left off: the least recently offered one
    goes next, ties in config order. One instance per queue, so each queue keeps its turn."""

    name = "round-robin"

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
    """A uniformly random free agent. The draw hashes `[routing] seed`, the queue, the
    interaction and the offer number, so the same run chooses the same agents, and so
    does a router rebuilt from the log."""

    name = "random"
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
    """Offer to every matching available agent at once; the first to accept wins."""

    name = "ring-all"
    ring_all = True

    def agent_key(self, agent: AgentStatus) -> Any:
        return (agent.idle_since, agent.ordinal)


_STATELESS = (LongestIdle, FewestAnswered, LeastTalkTime, BestSkill, LoadBalance, RingAll)
_SHARED = {cls.name: cls() for cls in _STATELESS}


def _shared(name: str) -> Any:
    return lambda queue, routing: _SHARED[name]


@hookimpl
def omniroute_strategies() -> Iterator[StrategySpec]:
    for name, strategy in _SHARED.items():
        yield StrategySpec(name=name, factory=_shared(name), description=_doc(strategy))
    yield StrategySpec(name="round-robin", factory=_round_robin, description=_doc(RoundRobin))
    yield StrategySpec(name="random", factory=_random, description=_doc(Random))


def _round_robin(queue: Queue, routing: Routing) -> RoundRobin:
    return RoundRobin()


def _random(queue: Queue, routing: Routing) -> Random:
    return Random(f"{routing.seed}:{queue.name}")


def _doc(obj: object) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0]

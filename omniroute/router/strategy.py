"""What a routing strategy and a queue-selection policy are, for the router and plugins.

A strategy orders the agents who could take an interaction; it never does I/O. To keep
a decision independent of the number of agents, a strategy gives each agent a sort key
(lower is offered first) that the router keeps in heaps and recomputes whenever that
agent changes. So a key may depend only on the agent's status and on the strategy's
own state, and that state may change only in `on_offer` (the router then re-keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from .state import AgentStatus, Waiting


class Strategy(Protocol):
    name: str
    #: Offer to every matching available agent at once; the first to accept wins.
    ring_all: bool
    #: Order-free strategies (random) set this: the router hands `choose` every free
    #: matching agent instead of keeping them in heaps by key. Costs O(free agents).
    scan: bool

    def group_key(self, skills: Mapping[str, int], requirement: Mapping[str, int]) -> Any:
        """Key shared by all agents with these skills (e.g. proficiency); () if unused."""
        ...

    def agent_key(self, agent: AgentStatus) -> Any:
        """The agent's sort key: lower is offered first. Must be cheap: it is on the hot path."""
        ...

    def on_offer(self, agent: AgentStatus) -> None:
        """An offer went to `agent` by this strategy (round-robin remembers it here)."""
        ...

    def choose(self, agents: Sequence[AgentStatus], interaction_id: str, n: int) -> AgentStatus:
        """For `scan` strategies: pick one of `agents` (in config order) for the `n`th
        offer. Depend only on the arguments, so a rebuilt router chooses the same."""
        ...

    # Optional: a strategy that keeps state (changed in `on_offer`) also defines
    # `snapshot_state() -> Any` (msgpack-encodable) and `restore_state(state)`, so a router
    # started from a snapshot (`Router.rebuild(..., snapshot=...)`) has the same state.


class BaseStrategy:
    """Defaults for the optional parts of `Strategy`; subclass and write `agent_key`."""

    name = "base"
    ring_all = False
    scan = False

    def group_key(self, skills: Mapping[str, int], requirement: Mapping[str, int]) -> Any:
        return ()

    def agent_key(self, agent: AgentStatus) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_offer(self, agent: AgentStatus) -> None:
        return None

    def choose(self, agents: Sequence[AgentStatus], interaction_id: str, n: int) -> AgentStatus:
        return agents[0]

    def snapshot_state(self) -> Any:
        """The strategy's own state, for a router snapshot (None: it keeps none)."""
        return None

    def restore_state(self, state: Any) -> None:
        """Take back what `snapshot_state` returned."""
        return None


class QueueSelector(Protocol):
    """Picks which waiting interaction a freed agent takes, across all their queues."""

    name: str

    def key(self, waiting: Waiting, now: float) -> Any:
        """Sort key of the first waiting interaction of each eligible queue: lower wins."""
        ...


class StrategySpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by the `omniroute_strategies` hook. `factory(queue, routing)` returns the
    strategy a queue uses (`routing` is the `[routing]` section, e.g. for its seed): return
    a shared instance when the strategy keeps no per-queue state.

    A strategy with settings names its `[plugins.<section>]` table in `section` (the
    plugin registers the table's Struct with `omniroute_config_sections`); it is then
    built as `factory(queue, routing, settings)`, `settings` being the decoded table, or
    None when the config has none.
    """

    name: str
    factory: Callable[..., Strategy]
    description: str = ""
    section: str | None = None


class QueueSelectorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by the `omniroute_queue_selectors` hook; chosen by `[routing] queue_selection`."""

    name: str
    factory: Callable[[], QueueSelector]
    description: str = ""

"""The built-in routing strategies, registered through the same hook a plugin uses.

Each orders agents by a key (lower is offered first). Ties fall to the agent's position
in the config, so decisions are repeatable. The classes live in `ordering.py`, which is
compiled with the router; this module, the plugin, stays Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pluggy

from .ordering import (
    BestSkill,
    FewestAnswered,
    LeastTalkTime,
    LoadBalance,
    LongestIdle,
    Random,
    RingAll,
    RoundRobin,
)
from .strategy import StrategySpec

if TYPE_CHECKING:
    from ..model import Queue, Routing

__all__ = [
    "BestSkill",
    "FewestAnswered",
    "LeastTalkTime",
    "LoadBalance",
    "LongestIdle",
    "Random",
    "RingAll",
    "RoundRobin",
    "omniroute_strategies",
]

hookimpl = pluggy.HookimplMarker("omniroute")


_STATELESS = (LongestIdle, FewestAnswered, LeastTalkTime, BestSkill, LoadBalance, RingAll)
# Instances, not classes, are asked their name: the compiled classes keep `name` and
# `description` as attribute defaults of their instances.
_SHARED = {s.name: s for s in (cls() for cls in _STATELESS)}


def _shared(name: str) -> Any:
    return lambda queue, routing: _SHARED[name]


@hookimpl
def omniroute_strategies() -> Iterator[StrategySpec]:
    for name, strategy in _SHARED.items():
        yield StrategySpec(name=name, factory=_shared(name), description=_doc(strategy))
    yield StrategySpec(name="round-robin", factory=_round_robin, description=_doc(RoundRobin()))
    yield StrategySpec(name="random", factory=_random, description=_doc(Random("")))


def _round_robin(queue: Queue, routing: Routing) -> RoundRobin:
    return RoundRobin()


def _random(queue: Queue, routing: Routing) -> Random:
    return Random(f"{routing.seed}:{queue.name}")


def _doc(strategy: Any) -> str:
    return str(strategy.description)

"""What a simulation produces: the KPIs `--json` prints, and the run around them."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .timeline import Timeline

__all__ = ["AgentsResult", "QueueResult", "Result", "Run", "gini"]


class QueueResult(msgspec.Struct, kw_only=True):
    """One queue's KPIs over the measured contacts (see docs/simulate.md)."""

    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    asa: float | None
    awt: float | None
    aht: float | None
    max_wait: float


class AgentsResult(msgspec.Struct, kw_only=True):
    count: int
    occupancy: float | None
    answered_min: int
    answered_max: int
    answered_gini: float | None


class Result(msgspec.Struct, kw_only=True):
    """What `omniroute simulate --json` prints."""

    queues: dict[str, QueueResult]
    agents: AgentsResult
    events: int
    wall_seconds: float


class Run(msgspec.Struct, kw_only=True):
    """A finished simulation: the KPIs, and what the text output adds."""

    result: Result
    unfinished: int = 0  # contacts still in the system when the run stopped
    exact: bool = False  # the router's timers were woken one by one
    timeline: Timeline | None = None


def gini(values: Sequence[int]) -> float | None:
    """0 when every agent answered as many, towards 1 when one answered everything."""
    n, total = len(values), sum(values)
    if not n or not total:
        return None
    ordered = sorted(values)
    weighted = sum((i + 1) * x for i, x in enumerate(ordered))
    return 2 * weighted / (n * total) - (n + 1) / n

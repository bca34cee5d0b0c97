"""The `[simulation]` section: synthetic agents and traffic for `omniroute simulate`.

Plain msgspec Structs, decoded by `omniroute.config` with the same path-named errors
as the rest of the file; the checks that need more than one Struct (a traffic queue
must exist, a lognormal needs its `sd`...) are in `check`.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Collection, Iterator
from typing import Annotated

import msgspec

from ..model import DEFAULT_CAPACITY, VOICE, Level

__all__ = ["AgentGroup", "Distribution", "DistributionKind", "Simulation", "Traffic", "check"]

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class DistributionKind(enum.StrEnum):
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"
    CONSTANT = "constant"


class Distribution(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A random duration in seconds: `mean`, and `sd` for a lognormal."""

    distribution: DistributionKind = DistributionKind.EXPONENTIAL
    mean: NonNegative
    sd: NonNegative | None = None


class AgentGroup(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """`count` identical synthetic agents, added to `[[agents]]`; their ids are
    `NAME-1` .. `NAME-count` (NAME defaults to `sim1`, `sim2`... by position)."""

    count: Annotated[int, msgspec.Meta(ge=1)]
    name: str | None = None
    skills: dict[str, Level] = {}
    capacity: dict[str, Annotated[int, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_CAPACITY)
    )
    exclusive: list[str] = msgspec.field(default_factory=lambda: [VOICE])
    queues: list[str] | None = None
    team: str | None = None
    accept_delay: Distribution | None = None  # None: offers are accepted at once


class Traffic(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A Poisson stream of contacts into one queue, from `start` to `end` seconds."""

    queue: str
    channel: str = VOICE
    rate: Positive  # arrivals per hour
    handle: Distribution  # from answer to the end of the contact; wrap-up follows
    patience: Distribution | None = None  # None: customers never abandon
    skills: dict[str, Level] = {}  # required on top of the queue's own
    priority: int = 0
    start: NonNegative = 0.0
    end: Positive | None = None  # default: the end of the simulation


class Simulation(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The whole `[simulation]` table."""

    duration: Positive = 28800.0
    seed: int = 1
    warmup: NonNegative = 0.0  # contacts arriving before this are left out of the KPIs
    start: dt.datetime | None = None  # the virtual clock's start (matters for `hours`)
    agents: list[AgentGroup] = []
    traffic: list[Traffic] = []

    @property
    def start_epoch(self) -> float:
        """The start as epoch seconds: naive times are UTC; default Monday 2024-01-01."""
        start = self.start or dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        return start.timestamp()

    def group_names(self) -> list[str]:
        return [g.name if g.name is not None else f"sim{i + 1}" for i, g in enumerate(self.agents)]


def check(
    simulation: Simulation,
    queues: dict[str, list[str] | None],
    agent_ids: Collection[str],
) -> Iterator[str]:
    """Cross checks, each an error line starting with its path.

    `queues` maps each queue name to its channels (None: every channel).
    """
    at = "simulation"
    if simulation.warmup >= simulation.duration:
        yield f"{at}.warmup: must be shorter than duration ({simulation.duration:g})"
    seen = dict.fromkeys(agent_ids, "agents")
    for i, (group, name) in enumerate(
        zip(simulation.agents, simulation.group_names(), strict=True)
    ):
        where = f"{at}.agents[{i}]"
        if not name.strip():
            yield f"{where}.name: must not be empty"
        for j, queue in enumerate(group.queues or ()):
            if queue not in queues:
                yield f'{where}.queues[{j}]: unknown queue "{queue}"'
        if name in seen:
            yield f'{where}.name: "{name}" is used twice (also {seen[name]}); names must differ'
        seen[name] = where
        clashes = sorted(
            f"{name}-{n}" for n in range(1, group.count + 1) if f"{name}-{n}" in agent_ids
        )
        if clashes:
            yield (
                f'{where}: agent id "{clashes[0]}" is also in [[agents]]; '
                "give the group another name"
            )
        if group.accept_delay is not None:
            yield from _check_distribution(f"{where}.accept_delay", group.accept_delay)
    for i, traffic in enumerate(simulation.traffic):
        where = f"{at}.traffic[{i}]"
        if traffic.queue not in queues:
            known = ", ".join(sorted(queues)) or "none"
            yield f'{where}.queue: unknown queue "{traffic.queue}"; queues: {known}'
        else:
            channels = queues[traffic.queue]
            if channels is not None and traffic.channel not in channels:
                yield (
                    f'{where}.channel: queue "{traffic.queue}" does not take "{traffic.channel}" '
                    f"(it takes {', '.join(channels)})"
                )
        end = traffic.end if traffic.end is not None else simulation.duration
        if traffic.start >= end:
            yield f"{where}.start: must be before end ({end:g})"
        yield from _check_distribution(f"{where}.handle", traffic.handle, positive=True)
        if traffic.patience is not None:
            yield from _check_distribution(f"{where}.patience", traffic.patience, positive=True)


def _check_distribution(where: str, d: Distribution, *, positive: bool = False) -> Iterator[str]:
    if d.distribution is DistributionKind.LOGNORMAL:
        if d.sd is None:
            yield f"{where}.sd: a lognormal distribution needs sd (its standard deviation)"
        if d.mean <= 0:
            yield f"{where}.mean: a lognormal distribution needs mean > 0"
    elif d.sd is not None:
        yield f'{where}.sd: only a lognormal distribution has sd, not "{d.distribution.value}"'
    if d.distribution is DistributionKind.EXPONENTIAL and d.mean <= 0:
        yield f"{where}.mean: an exponential distribution needs mean > 0"
    if positive and d.distribution is DistributionKind.CONSTANT and d.mean <= 0:
        yield f"{where}.mean: must be > 0"
    if not math.isfinite(d.mean):
        yield f"{where}.mean: must be a finite number"

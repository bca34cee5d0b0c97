"""Synthetic traffic: Poisson arrivals with random handle times and patience.

Each purpose of each stream draws from its own seeded generator (arrivals, handle
times, patience), so the traffic is a function of the scenario and the seed alone:
changing the strategy or the team never changes which customers call, when, for how
long, or how patient they are.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from functools import partial

from .scenario import Distribution, DistributionKind, Simulation, Traffic

__all__ = ["Arrival", "Kind", "sampler", "synthetic"]

#: What contacts of one kind share: (queue, channel, extra skills, priority).
Kind = tuple[str, str, tuple[tuple[str, int], ...], int]
#: One arrival: (virtual time, kind, handle seconds, patience seconds or None).
Arrival = tuple[float, Kind, float, float | None]


def sampler(distribution: Distribution, seed: str) -> Callable[[], float]:
    """A function drawing from `distribution` with its own generator seeded by `seed`.

    `lognormal` takes the mean and standard deviation of the durations themselves
    (not of their logarithm).
    """
    rng = random.Random(seed)
    mean = distribution.mean
    if distribution.distribution is DistributionKind.EXPONENTIAL:
        return partial(rng.expovariate, 1.0 / mean)
    if distribution.distribution is DistributionKind.LOGNORMAL:
        sd = distribution.sd or 0.0
        sigma = math.sqrt(math.log1p((sd / mean) ** 2))
        return partial(rng.lognormvariate, math.log(mean) - sigma * sigma / 2, sigma)
    return partial(float, mean)


def synthetic(simulation: Simulation) -> list[Arrival]:
    """Every arrival of every `[[simulation.traffic]]` stream, in time order."""
    start = simulation.start_epoch
    streams = [
        _stream(i, traffic, simulation, start) for i, traffic in enumerate(simulation.traffic)
    ]
    if len(streams) == 1:
        return list(streams[0])
    return list(heapq.merge(*streams, key=lambda a: a[0]))


def _stream(i: int, traffic: Traffic, simulation: Simulation, start: float) -> Iterator[Arrival]:
    seed = simulation.seed
    gaps = random.Random(f"{seed}:arrivals:{i}")
    handle = sampler(traffic.handle, f"{seed}:handle:{i}")
    patience = (
        sampler(traffic.patience, f"{seed}:patience:{i}") if traffic.patience is not None else None
    )
    kind: Kind = (
        traffic.queue,
        traffic.channel,
        tuple(sorted(traffic.skills.items())),
        traffic.priority,
    )
    rate = traffic.rate / 3600.0
    end = start + (traffic.end if traffic.end is not None else simulation.duration)
    end = min(end, start + simulation.duration)
    t = start + traffic.start + gaps.expovariate(rate)
    draw_gap = partial(gaps.expovariate, rate)
    while t < end:
        yield (t, kind, handle(), patience() if patience is not None else None)
        t += draw_gap()

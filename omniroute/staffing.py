"""How many agents a queue needs: Erlang C, and Erlang A when customers abandon.

Erlang C is the M/M/n queue (Poisson arrivals, exponential handle times, customers who
never give up); Erlang A (M/M/n+M) adds exponential patience. Both are computed from
the Erlang B recursion `B(k) = a B(k-1) / (k + a B(k-1))`, which stays between 0 and 1,
so 2,000 agents cost 2,000 multiplications and no factorial ever overflows.

Service level has the definition the router uses: answered within T seconds over all
contacts that stopped waiting (answered or abandoned), so an abandon is a miss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

__all__ = [
    "Staffing",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "required_agents",
    "schedule",
]


class Staffing(msgspec.Struct, kw_only=True):
    """The expected figures of a queue worked by `agents` agents.

    `agents` are the agents taking contacts; `scheduled` adds shrinkage (breaks,
    training, absence): the head count to plan.
    """

    agents: int
    service_level: float  # answered within T / (answered + abandoned)
    asa: float  # mean wait of answered contacts, seconds
    occupancy: float  # busy time / available time
    wait_probability: float  # share of contacts that wait at all
    abandon_rate: float = 0.0
    scheduled: int = 0


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of `agents` servers offered `load` Erlangs (recursive form)."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load must be >= 0")
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, rate: float, aht: float, threshold: float) -> Staffing:
    """M/M/n: `rate` arrivals per second, `aht` seconds of handling, SL within `threshold`.

    With no more agents than Erlangs the queue grows without bound: service level 0,
    every contact waits, ASA infinite.
    """
    _check(agents, rate, aht, threshold)
    load = rate * aht
    if agents <= load:
        return Staffing(
            agents=agents,
            service_level=0.0,
            asa=math.inf,
            occupancy=1.0,
            wait_probability=1.0,
        )
    b = erlang_b(agents, load)
    waiting = agents * b / (agents - load * (1.0 - b))
    return _erlang_c_figures(agents, load, aht, threshold, waiting)


def _erlang_c_figures(
    agents: int, load: float, aht: float, threshold: float, waiting: float
) -> Staffing:
    slack = agents - load
    return Staffing(
        agents=agents,
        service_level=1.0 - waiting * math.exp(-slack * threshold / aht),
        asa=waiting * aht / slack,
        occupancy=load / agents,
        wait_probability=waiting,
    )


def erlang_a(agents: int, rate: float, aht: float, threshold: float, patience: float) -> Staffing:
    """M/M/n+M: Erlang C plus customers who leave after an exponential `patience` (mean s).

    From the stationary distribution of the birth-death chain (seen by arrivals, by
    PASTA). A customer who finds q others waiting is answered if q + 1 departures from
    the head of the line come before their own patience runs out; the chance of that
    is n mu / (n mu + (q + 1) theta), and the time it takes is a sum of exponentials
    with rates n mu + theta, ..., n mu + (q + 1) theta, whose distribution function is
    a negative binomial tail, summed here term by term in log space.
    """
    _check(agents, rate, aht, threshold)
    if patience <= 0:
        raise ValueError("patience must be > 0")
    if agents == 0:
        return Staffing(
            agents=0,
            service_level=0.0,
            asa=math.inf,
            occupancy=0.0,
            wait_probability=1.0,
            abandon_rate=1.0,
        )
    mu, theta = 1.0 / aht, 1.0 / patience
    load = rate * aht
    served_rate = agents * mu
    # Probabilities relative to pi(n), the state where every agent is busy and nobody
    # waits: below it sum to 1 / B(n); above it, pi(n + q) / pi(n) = prod rate / (n mu + i theta).
    blocking = erlang_b(agents, load)
    if blocking < 1e-300:  # so many agents that all of them are never busy at once
        return Staffing(
            agents=agents,
            service_level=1.0,
            asa=0.0,
            occupancy=load / agents,
            wait_probability=0.0,
        )
    below = 1.0 / blocking - 1.0  # states 0 .. n-1
    p = -math.expm1(-theta * threshold)  # one phase-count "success" chance over T
    log_p = math.log(p) if p > 0 else -math.inf
    shape = served_rate / theta + 1.0
    log_term = shape * -theta * threshold  # log of (1 - p) ** shape, the q = 0 term
    cumulative = 0.0  # negative binomial mass below q + 1
    tail = within = answered = answered_wait = queue_length = 0.0
    phase_time = 0.0
    weight = 1.0  # pi(n + q) / pi(n)
    q = 0
    while True:
        cumulative += math.exp(log_term)
        reach = served_rate / (served_rate + (q + 1) * theta)  # answered before leaving
        phase_time += 1.0 / (served_rate + (q + 1) * theta)
        tail += weight
        queue_length += q * weight
        answered += weight * reach
        answered_wait += weight * reach * phase_time
        within += weight * reach * max(0.0, 1.0 - cumulative)
        q += 1
        log_term += log_p + math.log((q + shape - 1.0) / q)
        weight *= rate / (served_rate + q * theta)
        if weight > 1e250:  # an overloaded queue: rescale everything, ratios stay
            below, tail, queue_length, answered, answered_wait, within, weight = (
                x * 1e-250
                for x in (below, tail, queue_length, answered, answered_wait, within, weight)
            )
        if weight < 1e-17 * (below + tail) and served_rate + q * theta > rate:
            break
    total = below + tail
    abandon = theta * queue_length / total / rate if rate > 0 else 0.0
    answered_share = below / total + answered / total
    return Staffing(
        agents=agents,
        service_level=below / total + within / total,
        asa=(answered_wait / total) / answered_share if answered_share > 0 else math.inf,
        occupancy=min(1.0, load * (1.0 - abandon) / agents),
        wait_probability=tail / total,
        abandon_rate=abandon,
    )


def required_agents(
    rate: float,
    aht: float,
    threshold: float,
    target: float,
    *,
    patience: float | None = None,
    shrinkage: float = 0.0,
    max_agents: int = 1_000_000,
) -> Staffing:
    """The fewest agents whose service level reaches `target` (Erlang A with patience).

    `scheduled` is that number divided by (1 - shrinkage), rounded up.
    """
    if not 0 < target < 1:
        raise ValueError("the service level target must be between 0 and 1 (exclusive)")
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be >= 0 and < 1")
    _check(0, rate, aht, threshold)
    if rate == 0:
        found = Staffing(agents=0, service_level=1.0, asa=0.0, occupancy=0.0, wait_probability=0.0)
    elif patience is None:
        found = _search_erlang_c(rate, aht, threshold, target, max_agents)
    else:
        found = _search_erlang_a(rate, aht, threshold, target, patience, max_agents)
    found.scheduled = math.ceil(found.agents / (1.0 - shrinkage) - 1e-9)
    return found


def _search_erlang_c(
    rate: float, aht: float, threshold: float, target: float, max_agents: int
) -> Staffing:
    """One pass of the Erlang B recursion: each step costs O(1)."""
    load = rate * aht
    b = 1.0
    for n in range(1, max_agents + 1):
        b = load * b / (n + load * b)
        if n > load:
            waiting = n * b / (n - load * (1.0 - b))
            figures = _erlang_c_figures(n, load, aht, threshold, waiting)
            if figures.service_level >= target:
                return figures
    raise ValueError(f"more than {max_agents} agents would be needed")


def _search_erlang_a(
    rate: float, aht: float, threshold: float, target: float, patience: float, max_agents: int
) -> Staffing:
    """Service level grows with the agents: double until enough, then bisect."""
    low, high = 0, 1
    while erlang_a(high, rate, aht, threshold, patience).service_level < target:
        low, high = high, high * 2
        if high > max_agents:
            raise ValueError(f"more than {max_agents} agents would be needed")
    while high - low > 1:
        mid = (low + high) // 2
        if erlang_a(mid, rate, aht, threshold, patience).service_level >= target:
            high = mid
        else:
            low = mid
    return erlang_a(high, rate, aht, threshold, patience)


def schedule(
    arrivals: Iterable[float],
    *,
    interval: float,
    aht: float | Iterable[float],
    threshold: float,
    target: float,
    patience: float | None = None,
    shrinkage: float = 0.0,
) -> list[Staffing]:
    """A staffing plan: for each interval's arrivals, the agents needed (each interval
    is treated as a steady state, as workforce planners do)."""
    counts = list(arrivals)
    ahts = [float(aht)] * len(counts) if isinstance(aht, int | float) else list(aht)
    return [
        required_agents(
            count / interval,
            handle,
            threshold,
            target,
            patience=patience,
            shrinkage=shrinkage,
        )
        for count, handle in zip(counts, ahts, strict=True)
    ]


def _check(agents: int, rate: float, aht: float, threshold: float) -> None:
    if agents < 0:
        raise ValueError("agents must be >= 0")
    if rate < 0:
        raise ValueError("the arrival rate must be >= 0")
    if aht <= 0:
        raise ValueError("the average handle time must be > 0")
    if threshold < 0:
        raise ValueError("the service level threshold must be >= 0")

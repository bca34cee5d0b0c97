"""The simulator against queueing theory.

Two steps, so that heavy load stays affordable:

1. For single-skill queues (FCFS, identical agents, no wrap-up), the waiting time of
   every customer is fixed by the arrivals, handle times and patience alone: the
   Kiefer-Wolfowitz recursion over the agents' next free times gives it exactly. The
   simulator, running the real router on the same traffic, must reproduce those
   figures to the last bit, from 5 to 500 agents, occupancy 0.6 to 0.95, with and
   without abandonment. This is cheap and exact.
2. The traffic the simulator generates, through that discipline, must agree with
   Erlang C (no abandonment) and Erlang A (exponential patience): service level within
   1.5 points, ASA within 7%. The figures come from independent replications; each
   test first checks that its run length makes three standard errors smaller than the
   tolerance (so a pass is not luck and a different seed would pass too), then checks
   the tolerance. A light case also runs end to end through the simulator itself.
   Heavier cases need more calls than a test suite can afford (ASA within 7% at 500
   agents and occupancy 0.95 takes tens of millions of calls: waits are rare and come
   in bursts), so step 1 covers them.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Callable, Sequence

import pytest

from omniroute.config import Config, from_dict
from omniroute.plugins import PluginHost
from omniroute.simulate.engine import run
from omniroute.simulate.traffic import Arrival, synthetic
from omniroute.staffing import Staffing, erlang_a, erlang_c

AHT = 180.0
SL_TOLERANCE = 0.015
ASA_TOLERANCE = 0.07


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost(entry_points=False)


def config(
    agents: int,
    occupancy: float,
    threshold: int,
    calls: int,
    *,
    patience: float | None = None,
    seed: int = 1,
) -> Config:
    """One queue, `agents` identical agents, Poisson arrivals at `occupancy` x agents
    Erlangs (the offered load), exponential handle times; about `calls` arrivals after
    a warm-up of 20 handle times."""
    rate = occupancy * agents / AHT  # per second
    warmup = 20 * AHT
    traffic: dict[str, object] = {"queue": "q", "rate": rate * 3600, "handle": {"mean": AHT}}
    if patience is not None:
        traffic["patience"] = {"mean": patience}
    return from_dict(
        {
            "queues": [{"name": "q", "wrap_up": 0, "sla": {"seconds": threshold}}],
            "simulation": {
                "duration": warmup + calls / rate,
                "warmup": warmup,
                "seed": seed,
                "agents": [{"count": agents, "capacity": {"voice": 1}}],
                "traffic": [traffic],
            },
        }
    )


def fcfs(arrivals: Sequence[Arrival], agents: int, threshold: float, counted_from: float):
    """(service level, ASA, answered, abandoned) of first-come-first-served service by
    `agents` identical agents: the exact waits, with no simulator involved."""
    free = [0.0] * agents  # when each agent is next free (a heap)
    answered = abandoned = within = 0
    waited = 0.0
    for at, _, handle, patience in arrivals:
        start = max(free[0], at)
        if patience is not None and start - at > patience:
            abandoned += at >= counted_from
            continue
        heapq.heapreplace(free, start + handle)
        if at >= counted_from:
            answered += 1
            waited += start - at
            within += start - at < threshold
    return within / (answered + abandoned), waited / answered, answered, abandoned


# ------------------------------------------------------------------ 1. exact


@pytest.mark.parametrize(
    ("agents", "occupancy", "threshold", "calls", "patience"),
    [
        (5, 0.6, 20, 4000, None),
        (5, 0.95, 20, 4000, None),
        (50, 0.9, 20, 6000, None),
        (500, 0.95, 5, 12000, None),
        (10, 1.1, 20, 4000, 120.0),  # overloaded: only abandons keep it stable
        (500, 0.95, 5, 12000, 60.0),
    ],
)
def test_the_simulator_is_exactly_fcfs_on_its_own_traffic(
    host: PluginHost,
    agents: int,
    occupancy: float,
    threshold: int,
    calls: int,
    patience: float | None,
) -> None:
    cfg = config(agents, occupancy, threshold, calls, patience=patience, seed=7)
    assert cfg.simulation is not None
    result = run(cfg, host).result.queues["q"]
    start = cfg.simulation.start_epoch + cfg.simulation.warmup
    sl, asa, answered, abandoned = fcfs(synthetic(cfg.simulation), agents, threshold, start)
    assert (result.answered, result.abandoned) == (answered, abandoned)
    assert result.service_level == pytest.approx(sl, abs=1e-12)
    assert result.asa == pytest.approx(asa, rel=1e-9)
    assert asa > 0  # people did wait: the comparison means something
    if patience is not None:
        assert abandoned > 0


# ------------------------------------------------------------------ 2. statistics


Measure = Callable[[Config], tuple[float, float]]


def by_fcfs(cfg: Config) -> tuple[float, float]:
    """Service level and ASA from the exact FCFS waits of the simulator's traffic."""
    assert cfg.simulation is not None
    start = cfg.simulation.start_epoch + cfg.simulation.warmup
    agents = cfg.simulation.agents[0].count
    sl, asa, _, _ = fcfs(synthetic(cfg.simulation), agents, cfg.queues[0].sla.seconds, start)
    return sl, asa


def replicate(
    measure: Measure,
    case: tuple[int, float, int, int, int, float | None],
) -> tuple[list[float], list[float]]:
    """Service level and ASA of independent replications (seeds 1..n)."""
    agents, occupancy, threshold, calls, replications, patience = case
    sls, asas = [], []
    for seed in range(1, replications + 1):
        sl, asa = measure(config(agents, occupancy, threshold, calls, patience=patience, seed=seed))
        sls.append(sl)
        asas.append(asa)
    return sls, asas


def theory(agents: int, occupancy: float, threshold: int, patience: float | None) -> Staffing:
    rate = occupancy * agents / AHT
    if patience is None:
        return erlang_c(agents, rate, AHT, threshold)
    return erlang_a(agents, rate, AHT, threshold, patience)


def assert_agrees(sls: list[float], asas: list[float], expected: Staffing) -> None:
    n = len(sls)
    sl, sl_se = statistics.fmean(sls), statistics.stdev(sls) / n**0.5
    asa, asa_se = statistics.fmean(asas), statistics.stdev(asas) / n**0.5
    # The run is long enough that chance alone stays well inside the tolerance...
    assert 3 * sl_se < SL_TOLERANCE, f"SL standard error {sl_se:.4f}: run longer"
    assert 3 * asa_se < ASA_TOLERANCE * expected.asa, f"ASA standard error {asa_se:.3f}"
    # ...so a difference beyond it is the simulator's.
    assert abs(sl - expected.service_level) < SL_TOLERANCE, (sl, expected.service_level)
    assert abs(asa / expected.asa - 1) < ASA_TOLERANCE, (asa, expected.asa)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        # agents, occupancy, threshold, calls per replication, replications, patience
        (5, 0.6, 20, 20_000, 20, None),
        (50, 0.9, 20, 70_000, 100, None),
        (5, 1.0, 20, 10_000, 12, 180.0),  # Erlang A
        (100, 0.95, 10, 50_000, 30, 120.0),  # Erlang A
    ],
)
def test_traffic_agrees_with_erlang(case: tuple[int, float, int, int, int, float | None]) -> None:
    sls, asas = replicate(by_fcfs, case)
    agents, occupancy, threshold, _, _, patience = case
    assert_agrees(sls, asas, theory(agents, occupancy, threshold, patience))


@pytest.mark.slow
def test_the_simulator_agrees_with_erlang_a_end_to_end(host: PluginHost) -> None:
    def by_simulator(cfg: Config) -> tuple[float, float]:
        result = run(cfg, host).result.queues["q"]
        assert result.service_level is not None and result.asa is not None
        return result.service_level, result.asa

    case = (5, 1.0, 20, 8_000, 12, 180.0)
    sls, asas = replicate(by_simulator, case)
    assert_agrees(sls, asas, theory(5, 1.0, 20, 180.0))

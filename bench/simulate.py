"""Calls simulated per second: one M/M/c day through `omniroute simulate` (the real
router, strategies and plugin host on a virtual clock) and through a plain SimPy model
of the same queue, in the same run.

500 agents, Poisson arrivals for 8 hours (about 100,000 calls), exponential handle
times at 95% occupancy, answered at once, no wrap-up. Each side is timed as a user
would see it: the simulator from reading the config to the printed JSON, SimPy from
building the environment to the computed KPIs. The rounds alternate and the best round
of each counts, so a busy machine disturbs both alike.

Prints both models' service level and ASA beside Erlang C, then the last line
`simulate: N calls/s, simpy M calls/s, ratio R`. `--profile` adds where the
simulator's time goes: microseconds per call in each router command and in the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from omniroute import cli
from omniroute.staffing import erlang_c

DURATION = 8 * 3600.0
THRESHOLD = 20
PROFILED = ("submit", "accept", "complete", "advance", "drain")  # the router's commands


def scenario(agents: int, calls: int, occupancy: float, seed: int) -> tuple[str, float, float]:
    """The TOML of the day, the arrival rate per second and the mean handle time."""
    rate = calls / DURATION
    aht = occupancy * agents / rate
    toml = f"""
[[queues]]
name = "q"
wrap_up = 0
sla = {{ target = 0.8, seconds = {THRESHOLD} }}

[simulation]
duration = {DURATION}
seed = {seed}

[[simulation.agents]]
count = {agents}
capacity = {{ voice = 1 }}

[[simulation.traffic]]
queue = "q"
rate = {rate * 3600}
handle = {{ mean = {aht} }}
"""
    return toml, rate, aht


def run_omniroute(path: Path) -> tuple[float, dict[str, Any]]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = cli.main(["simulate", str(path), "--json", "--no-progress"])
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"omniroute simulate failed with status {status}")
    return elapsed, json.loads(out.getvalue())["queues"]["q"]


def run_simpy(agents: int, rate: float, aht: float, seed: int) -> tuple[float, dict[str, Any]]:
    """The textbook SimPy M/M/c: a process per customer requesting a Resource."""
    import simpy

    started = time.perf_counter()
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=agents)
    arrivals, handles = random.Random(seed), random.Random(seed + 1)
    waits: list[float] = []

    def customer(env: simpy.Environment) -> Any:
        arrived = env.now
        with servers.request() as request:
            yield request
            waits.append(env.now - arrived)
            yield env.timeout(handles.expovariate(1 / aht))

    def source(env: simpy.Environment) -> Any:
        while True:
            yield env.timeout(arrivals.expovariate(rate))
            if env.now >= DURATION:
                return
            env.process(customer(env))

    env.process(source(env))
    env.run()
    kpis = {
        "offered": len(waits),
        "service_level": sum(w < THRESHOLD for w in waits) / len(waits),
        "asa": statistics.fmean(waits),
    }
    return time.perf_counter() - started, kpis


def profile(path: Path | str) -> str:
    """Microseconds per call: in each router command (timers that fall due fire inside
    them) and in the rest (config, traffic, the simulator's loop and KPI folds).

    A compiled simulator calls the compiled router directly, so there is nothing to
    time the commands by: the profile then runs the same source as Python, in a
    process of its own, and says so."""
    from omniroute import native

    if native.COMPILED:
        code = f"from bench.simulate import profile; print(profile({str(path)!r}))"
        env = {**os.environ, "OMNIROUTE_PURE_PYTHON": "1"}
        run = [sys.executable, "-W", "ignore", "-c", code]
        root = Path(__file__).parent.parent
        out = subprocess.run(run, env=env, cwd=root, capture_output=True, text=True, check=True)
        return f"{out.stdout.strip()} (the Python build: compiled, the router cannot be timed)"
    from omniroute.router.core import Router
    from omniroute.simulate import engine

    path = Path(path)

    spent: dict[str, int] = {}

    class Timed:
        """The simulator's router, each command timed (a compiled Router's methods
        cannot be replaced, so the router is wrapped instead)."""

        def __init__(self, **kwargs: Any) -> None:
            self._router = Router(**kwargs)
            for name in PROFILED:
                setattr(self, name, self._timed(name, getattr(self._router, name)))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._router, name)

        @staticmethod
        def _timed(name: str, method: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter_ns()
                try:
                    return method(*args, **kwargs)
                finally:
                    spent[name] = spent.get(name, 0) + time.perf_counter_ns() - started

            return wrapper

    engine.Router = Timed  # type: ignore[misc,assignment]
    try:
        elapsed, kpis = run_omniroute(path)
    finally:
        engine.Router = Router  # type: ignore[misc]
    calls = kpis["offered"]
    router = sum(spent.values()) / 1000 / calls
    total = elapsed * 1e6 / calls
    parts = ", ".join(f"{name} {spent.get(name, 0) / 1000 / calls:.1f}" for name in PROFILED)
    return (
        f"{total:.1f} us per call: router {router:.1f} us ({parts}), "
        f"simulator and the rest {total - router:.1f} us"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench simulate")
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--calls", type=int, default=100_000, help="calls expected in the day")
    parser.add_argument("--occupancy", type=float, default=0.95)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="say where the time goes")
    args = parser.parse_args(argv)
    try:
        import simpy  # noqa: F401
    except ImportError:
        print("python -m bench simulate needs SimPy: pip install 'omniroute[bench]'")
        return 2
    toml, rate, aht = scenario(args.agents, args.calls, args.occupancy, args.seed)
    best_ours = best_simpy = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mmc.toml"
        path.write_text(toml)
        for _ in range(args.rounds):
            ours_time, ours = run_omniroute(path)
            simpy_time, theirs = run_simpy(args.agents, rate, aht, args.seed)
            best_ours = min(best_ours, ours_time / ours["offered"])
            best_simpy = min(best_simpy, simpy_time / theirs["offered"])
        theory = erlang_c(args.agents, rate, aht, THRESHOLD)
        print(
            f"simulate-kpis: {args.agents} agents, {ours['offered']} calls, "
            f"SL {ours['service_level']:.3f} ASA {ours['asa']:.2f} s; "
            f"simpy {theirs['offered']} calls, SL {theirs['service_level']:.3f} "
            f"ASA {theirs['asa']:.2f} s; Erlang C SL {theory.service_level:.3f} "
            f"ASA {theory.asa:.2f} s"
        )
        if args.profile:
            print(f"simulate-profile: {profile(path)}")
    ours_rate, simpy_rate = 1 / best_ours, 1 / best_simpy
    print(
        f"simulate: {ours_rate:.0f} calls/s, simpy {simpy_rate:.0f} calls/s, "
        f"ratio {ours_rate / simpy_rate:.2f}"
    )
    return 0

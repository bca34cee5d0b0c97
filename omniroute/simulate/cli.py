"""`omniroute simulate CONFIG`: run a day through the real router and print the KPIs."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import msgspec

from ..cli import _error, _table, command, plugin_host

PLOT_EXTRA = "omniroute[plot]"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, metavar="CONFIG", help="the TOML file `serve` reads")
    parser.add_argument("--json", action="store_true", help="print the KPIs as one JSON object")
    parser.add_argument(
        "--compare",
        metavar="S1,S2,...",
        help="run the same traffic once per strategy (every queue uses it) and compare",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw service level and queue length"
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="EVENTS.jsonl",
        help="replay the contacts of an exported event log instead of synthetic traffic",
    )
    parser.add_argument("--seed", type=int, help="override [simulation] seed")
    parser.add_argument("--duration", type=float, help="override [simulation] duration (seconds)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


@command("simulate", "simulate a day through the real router and print the KPIs", _arguments)
def simulate(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load, validate_with_host
    from ..plugins import PluginError
    from .engine import SimulationError, run
    from .replay import ReplayError, read_arrivals
    from .scenario import Simulation

    source = str(args.config)
    try:
        config = load(args.config)
        host = plugin_host()
        validate_with_host(config, host)
    except ConfigError as exc:
        for line in exc.errors:
            print(line if line.startswith(f"{source}:") else f"{source}: {line}", file=sys.stderr)
        return 1
    except PluginError as exc:
        return _error(f"cannot load plugins: {exc}")
    if config.simulation is None and args.replay is None:
        return _error(f"{source} has no [simulation] section (see docs/simulate.md)")
    simulation = config.simulation or Simulation()
    changes: dict[str, Any] = {}
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.duration is not None:
        if args.duration <= simulation.warmup:
            return _error(f"--duration must be longer than the warm-up ({simulation.warmup:g} s)")
        changes["duration"] = args.duration
    if changes:
        config = msgspec.structs.replace(
            config, simulation=msgspec.structs.replace(simulation, **changes)
        )
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return _error(f"--plot needs matplotlib: pip install '{PLOT_EXTRA}'")
    strategies: list[str | None] = [None]
    if args.compare:
        strategies = [name.strip() for name in args.compare.split(",") if name.strip()]
        unknown = [name for name in strategies if name not in host.strategies()]
        if unknown:
            installed = ", ".join(sorted(host.strategies()))
            return _error(f"--compare: unknown strategy {unknown[0]!r}; installed: {installed}")
    arrivals = None
    if args.replay is not None:
        try:
            arrivals, _, _ = read_arrivals(
                args.replay,
                [q.name for q in config.queues],
                seed=(config.simulation or Simulation()).seed,
            )
        except ReplayError as exc:
            return _error(str(exc))
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    runs: dict[str, Any] = {}
    for strategy in strategies:
        label = strategy or "simulate"
        bar = ProgressBar(label, sys.stderr) if show else None
        try:
            runs[label] = run(
                config,
                host,
                arrivals=arrivals,
                strategy=strategy,
                timeline=args.plot is not None,
                progress=bar,
            )
        except (SimulationError, ConfigError) as exc:
            if bar is not None:
                bar.close()
            return _error(str(exc))
        if bar is not None:
            bar.close()
        if runs[label].unfinished:
            print(
                f"omniroute: warning: {label}: {runs[label].unfinished} contacts were still "
                "waiting at the end: no agent could take them",
                file=sys.stderr,
            )
    if args.json:
        out = (
            runs["simulate"].result
            if not args.compare
            else {name: r.result for name, r in runs.items()}
        )
        print(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())
    elif args.compare:
        print(compare_table({name: r.result for name, r in runs.items()}))
    else:
        print(kpi_table(runs["simulate"].result))
    if args.plot is not None:
        from .plot import plot

        plot({name: r.timeline for name, r in runs.items()}, args.plot)
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


# ------------------------------------------------------------------ text output


def kpi_table(result: Any) -> str:
    """One row per queue, then a line for the agents and one for the run."""
    rows = [
        (
            name,
            f"{q.offered:,}",
            f"{q.answered:,}",
            f"{q.abandoned:,}",
            _percent(q.service_level),
            _seconds(q.asa),
            _seconds(q.awt),
            _seconds(q.aht),
            _seconds(q.max_wait),
        )
        for name, q in result.queues.items()
    ]
    header = ("QUEUE", "OFFERED", "ANSWERED", "ABANDONED", "SL", "ASA", "AWT", "AHT", "MAX WAIT")
    a = result.agents
    agents = (
        f"agents: {a.count:,}, occupancy {_percent(a.occupancy)}, "
        f"answered {a.answered_min:,} to {a.answered_max:,} each "
        f"(Gini {_number(a.answered_gini)})"
    )
    run = f"{result.events:,} events in {result.wall_seconds:.1f} s"
    return "\n".join([_table(header, rows), "", agents, run])


_ROWS: Sequence[tuple[str, str]] = (
    ("offered", "count"),
    ("answered", "count"),
    ("abandoned", "count"),
    ("service_level", "percent"),
    ("asa", "seconds"),
    ("awt", "seconds"),
    ("aht", "seconds"),
    ("max_wait", "seconds"),
)


def compare_table(results: dict[str, Any]) -> str:
    """KPIs as rows, strategies as columns, so the same figure reads across."""
    names = list(results)
    first = next(iter(results.values()))
    rows: list[list[str]] = []
    for queue in first.queues:
        for key, kind in _ROWS:
            cells = [_format(getattr(r.queues[queue], key), kind) for r in results.values()]
            rows.append([f"{queue} {key}", *cells])
    agent_rows = (
        ("occupancy", "percent"),
        ("answered_min", "count"),
        ("answered_max", "count"),
        ("answered_gini", "number"),
    )
    for key, kind in agent_rows:
        rows.append(
            [f"agents {key}", *(_format(getattr(r.agents, key), kind) for r in results.values())]
        )
    return _table(["KPI", *names], rows)


def _format(value: Any, kind: str) -> str:
    if kind == "count":
        return f"{value:,}"
    if kind == "percent":
        return _percent(value)
    if kind == "seconds":
        return _seconds(value)
    return _number(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class ProgressBar:
    """`label [#####.....]  45%  12,345 contacts` (the share of the simulated time done)
    on one line of a terminal, redrawn at most ten times a second."""

    def __init__(self, label: str, stream: TextIO, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self.shown = 0.0

    def __call__(self, done: float, contacts: int) -> None:
        now = time.monotonic()
        if done < 1.0 and now - self.shown < 0.1:
            return
        self.shown = now
        filled = int(done * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done * 100:3.0f}%  {contacts:,} contacts")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()

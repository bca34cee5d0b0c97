"""`omniroute staff`: the agents a service level needs, by Erlang C and Erlang A."""

from __future__ import annotations

import argparse
import csv
import math
import re
from pathlib import Path
from typing import Any

import msgspec

from .cli import _error, _table, command

_ARRIVAL_COLUMNS = ("arrivals", "calls", "contacts", "volume", "offered")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, help="arrivals per interval (per hour by default)")
    parser.add_argument(
        "--forecast",
        type=Path,
        metavar="FILE.csv",
        help="a CSV with a column of arrivals per interval: print a plan per interval",
    )
    parser.add_argument("--aht", type=float, required=True, help="average handle time, seconds")
    parser.add_argument(
        "--sl", default="80/20", help="service level target as PERCENT/SECONDS (default 80/20)"
    )
    parser.add_argument(
        "--patience",
        type=float,
        help="mean seconds customers wait before hanging up: adds the Erlang A answer",
    )
    parser.add_argument(
        "--shrinkage",
        type=float,
        default=0.0,
        help="share of paid time away from the queue (breaks, training): 0.3 for 30%%",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=3600.0,
        help="seconds the rate (or each forecast row) counts arrivals over (default 3600)",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


@command("staff", "agents needed for a service level (Erlang C, Erlang A)", _arguments)
def staff(args: argparse.Namespace) -> int:
    from .staffing import required_agents

    target = _parse_sl(args.sl)
    if target is None:
        return _error(f"--sl: expected PERCENT/SECONDS such as 80/20, got {args.sl!r}")
    percent, threshold = target
    problems = _check(args)
    if problems:
        return _error(problems)
    if args.forecast is not None:
        return _forecast(args, percent / 100, threshold)
    rate = args.rate / args.interval
    try:
        c = required_agents(rate, args.aht, threshold, percent / 100, shrinkage=args.shrinkage)
        a = (
            required_agents(
                rate,
                args.aht,
                threshold,
                percent / 100,
                patience=args.patience,
                shrinkage=args.shrinkage,
            )
            if args.patience is not None
            else None
        )
    except ValueError as exc:
        return _error(str(exc))
    if args.json:
        out = _figures(a or c, args)
        if a is not None:
            out["erlang_c"] = _figures(c, args)
        print(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())
        return 0
    print(f"load: {rate * args.aht:.2f} Erlangs ({args.rate:g} arrivals per {args.interval:g} s)")
    print(_describe("Erlang C", c, args, threshold, abandons=False))
    if a is not None:
        model = f"Erlang A (patience {args.patience:g} s)"
        print(_describe(model, a, args, threshold, abandons=True))
    return 0


def _parse_sl(text: str) -> tuple[float, float] | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*/\s*(\d+(?:\.\d+)?)\s*", text)
    if m is None:
        return None
    percent, seconds = float(m[1]), float(m[2])
    if not 0 < percent < 100:
        return None
    return percent, seconds


def _check(args: argparse.Namespace) -> str:
    if (args.rate is None) == (args.forecast is None):
        return "give either --rate or --forecast"
    if args.rate is not None and args.rate < 0:
        return "--rate must be >= 0"
    if args.aht <= 0:
        return "--aht must be > 0"
    if args.patience is not None and args.patience <= 0:
        return "--patience must be > 0"
    if not 0 <= args.shrinkage < 1:
        return "--shrinkage must be a share from 0 to less than 1 (0.3 for 30%)"
    if args.interval <= 0:
        return "--interval must be > 0"
    return ""


def _figures(s: Any, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "agents": s.agents,
        "service_level": s.service_level,
        "asa": s.asa,
        "occupancy": s.occupancy,
        "wait_probability": s.wait_probability,
    }
    if args.shrinkage:
        out["scheduled"] = s.scheduled
    if args.patience is not None:
        out["abandon_rate"] = s.abandon_rate
    return out


def _describe(
    model: str, s: Any, args: argparse.Namespace, threshold: float, *, abandons: bool
) -> str:
    head = f"{model}: {s.agents} agents"
    if args.shrinkage:
        head += f" ({s.scheduled} scheduled with {args.shrinkage * 100:g}% shrinkage)"
    figures = (
        f"  service level {s.service_level * 100:.1f}% within {threshold:g} s, "
        f"ASA {s.asa:.1f} s, occupancy {s.occupancy * 100:.1f}%, "
        f"probability of waiting {s.wait_probability * 100:.1f}%"
    )
    if abandons:
        figures += f", abandoned {s.abandon_rate * 100:.1f}%"
    return f"{head}\n{figures}"


# ------------------------------------------------------------------ forecast


class ForecastError(ValueError):
    pass


def read_forecast(path: Path, interval: float) -> list[tuple[str, float, float | None]]:
    """(label, arrivals, aht or None) per row of a forecast CSV.

    A header names the columns: arrivals (or calls, contacts, volume, offered), an
    optional `aht`, and the first other column as the label. Without a header the last
    column is the arrivals and the first (if there are two) the label. Rows without a
    label are named by their start time from the first interval, HH:MM.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ForecastError(
            f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise ForecastError(f"{path}: no rows")
    header = [cell.strip().lower() for cell in rows[0]]
    has_header = any(not _is_number(cell) for cell in header) and not all(
        _is_number(cell) for cell in header[1:]
    )
    if has_header:
        found = [i for i, name in enumerate(header) if name in _ARRIVAL_COLUMNS]
        if not found:
            raise ForecastError(
                f"{path}: line 1: no arrivals column; name one of {', '.join(_ARRIVAL_COLUMNS)}"
            )
        column = found[0]
        aht_column = header.index("aht") if "aht" in header else None
        others = [i for i in range(len(header)) if i not in (column, aht_column)]
        label_column = others[0] if others else None
        body, first_line = rows[1:], 2
    else:
        column = len(rows[0]) - 1
        aht_column = None
        label_column = 0 if column > 0 else None
        body, first_line = rows, 1
    out: list[tuple[str, float, float | None]] = []
    for n, row in enumerate(body):
        line = first_line + n
        try:
            cell = row[column].strip()
        except IndexError:
            raise ForecastError(f"{path}: line {line}: missing the arrivals column") from None
        if not _is_number(cell) or float(cell) < 0:
            raise ForecastError(
                f"{path}: line {line}: arrivals: expected a number >= 0, got {cell!r}"
            )
        aht = None
        if aht_column is not None and aht_column < len(row) and row[aht_column].strip():
            value = row[aht_column].strip()
            if not _is_number(value) or float(value) <= 0:
                raise ForecastError(
                    f"{path}: line {line}: aht: expected a number > 0, got {value!r}"
                )
            aht = float(value)
        label = (
            row[label_column].strip()
            if label_column is not None and label_column < len(row)
            else ""
        )
        out.append((label or _clock(n * interval), float(cell), aht))
    return out


def _forecast(args: argparse.Namespace, target: float, threshold: float) -> int:
    from .staffing import required_agents

    try:
        rows = read_forecast(args.forecast, args.interval)
        plan = [
            required_agents(
                arrivals / args.interval,
                aht or args.aht,
                threshold,
                target,
                patience=args.patience,
                shrinkage=args.shrinkage,
            )
            for _, arrivals, aht in rows
        ]
    except ValueError as exc:
        return _error(str(exc))
    heads = [s.scheduled if args.shrinkage else s.agents for s in plan]
    agent_hours = sum(heads) * args.interval / 3600
    if args.json:
        intervals = [
            {"interval": label, "arrivals": arrivals, **_figures(s, args)}
            for (label, arrivals, _), s in zip(rows, plan, strict=True)
        ]
        out = {"intervals": intervals, "agent_hours": agent_hours}
        print(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())
        return 0
    header = ["INTERVAL", "ARRIVALS", "AGENTS"]
    if args.shrinkage:
        header.append("SCHEDULED")
    header += ["SL", "ASA", "OCCUPANCY", "P(WAIT)"]
    if args.patience is not None:
        header.append("ABANDONED")
    table = []
    for (label, arrivals, _), s in zip(rows, plan, strict=True):
        row = [label, f"{arrivals:g}", str(s.agents)]
        if args.shrinkage:
            row.append(str(s.scheduled))
        row += [
            f"{s.service_level * 100:.1f}%",
            f"{s.asa:.1f} s",
            f"{s.occupancy * 100:.1f}%",
            f"{s.wait_probability * 100:.1f}%",
        ]
        if args.patience is not None:
            row.append(f"{s.abandon_rate * 100:.1f}%")
        table.append(row)
    model = "Erlang A" if args.patience is not None else "Erlang C"
    print(_table(header, table))
    print()
    print(f"{model}, {threshold:g} s for {target * 100:g}%: {agent_hours:g} agent-hours in total")
    return 0


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value)


def _clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

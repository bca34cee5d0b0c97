"""Garbage-collector pauses of a benchmark's processes, timed from inside them.

A wall-clock percentile on a shared machine mixes the process's own pauses with the
scheduler's; `gc.callbacks` times each collection itself (CPU and wall-clock time), per
generation, with how many objects the collector tracks, so the evidence depends far
less on what else runs.

`python -m bench.gcprobe OUT ARGS...` runs `omniroute ARGS...` with the probe on and
writes its figures to the JSON file OUT when the command returns (the serve benchmark
starts its server this way); `install()` turns it on in the calling process. With
`BENCH_GC_TYPES=SECONDS` it also counts the heap's commonest types that long after the
start (what is the collector scanning?).
"""

from __future__ import annotations

import collections
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["Pause", "Probe", "install", "summary"]


class Pause(NamedTuple):
    generation: int
    cpu_ms: float  # the process's own CPU time: a busy machine stretches it far less
    wall_ms: float
    at: float  # time.monotonic() when it ended (one clock for every process here)
    collected: int
    tracked: int  # objects tracked after a full collection (not counted after others)


class Probe:
    """Times every collection of this process (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.pauses: list[Pause] = []
        self._start = 0.0
        self._cpu = 0.0
        self.types: list[tuple[str, int]] = []  # the heap's commonest types, if asked

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            self._cpu = time.process_time()
            return
        cpu = (time.process_time() - self._cpu) * 1000
        wall = (time.perf_counter() - self._start) * 1000
        generation = info["generation"]
        # Counting is itself O(heap): only after full collections, which are rare.
        tracked = len(gc.get_objects()) if generation == 2 else 0
        self.pauses.append(
            Pause(generation, cpu, wall, time.monotonic(), info["collected"], tracked)
        )

    def count_types(self) -> None:
        """Remember the heap's commonest types (diagnosing: what does it hold?)."""
        self.types = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
        ).most_common(40)

    def figures(self) -> dict[str, Any]:
        """Every pause, and the heap at the end: JSON for another process."""
        return {
            "pauses": self.pauses,
            "tracked_at_end": len(gc.get_objects()),
            "frozen": gc.get_freeze_count(),
            "types": self.types,
        }


def install() -> Probe:
    probe = Probe()
    gc.callbacks.append(probe)
    return probe


def summary(name: str, figures: dict[str, Any], begin: float, end: float) -> str:
    """One line: the collections between `begin` and `end` (monotonic) per generation,
    with their CPU time (p50, max) and longest wall-clock time."""
    pauses = [Pause(*p) for p in figures["pauses"]]
    window = [p for p in pauses if begin <= p.at <= end]
    parts = []
    for generation in (0, 1, 2):
        mine = [p for p in window if p.generation == generation]
        cpu = sorted(p.cpu_ms for p in mine)
        wall = max((p.wall_ms for p in mine), default=0.0)
        p50 = cpu[len(cpu) // 2] if cpu else 0.0
        top = cpu[-1] if cpu else 0.0
        parts.append(
            f"gen{generation} {len(mine)}x cpu p50 {p50:.2f} max {top:.1f} (wall max {wall:.1f}) ms"
        )
    full = [p.tracked for p in pauses if p.generation == 2]
    parts.append(f"{figures['tracked_at_end']} tracked at end ({figures['frozen']} frozen)")
    if full:
        parts.append(f"after each full collection of the run {full}")
    return f"{name} gc while chats arrived: " + ", ".join(parts)


def main(argv: list[str]) -> int:
    out, args = Path(argv[0]), argv[1:]
    probe = install()
    after = os.environ.get("BENCH_GC_TYPES")  # seconds: count the heap's types then
    if after:
        threading.Timer(float(after), probe.count_types).start()
    from omniroute.cli import main as omniroute

    try:
        return int(omniroute(args) or 0)
    finally:
        out.write_text(json.dumps(probe.figures()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

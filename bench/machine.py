"""What the whole machine's CPUs did while a benchmark measured (Linux's /proc/stat).

A latency figure on a 2-core machine depends on everything else that runs: a low-priority
job that starts during the run still takes a core from the server now and then, and
stretches its tail by tens of milliseconds. The split printed beside the figure (time in
other processes' niced work, the kernel, idle, iowait, the hypervisor's steal) shows
such a run for what it is.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CpuTimes", "cpu_times", "split"]

_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

CpuTimes = tuple[int, ...]


def cpu_times() -> CpuTimes | None:
    """The machine's CPU time counters now, or None where /proc/stat is missing."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    return tuple(int(x) for x in first[1 : 1 + len(_FIELDS)])


def split(before: CpuTimes | None, after: CpuTimes | None) -> str:
    """`user 45%, nice 0%, system 12%, idle 41%, iowait 1%, steal 0%` between the two
    readings (irq and softirq counted as system); empty if either is missing."""
    if before is None or after is None:
        return ""
    delta = dict(zip(_FIELDS, (b - a for a, b in zip(before, after, strict=False)), strict=False))
    total = sum(delta.values()) or 1
    delta["system"] += delta.pop("irq", 0) + delta.pop("softirq", 0)
    return ", ".join(f"{name} {100 * value / total:.0f}%" for name, value in delta.items())

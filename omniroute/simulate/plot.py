"""`--plot FILE.png`: service level and queue length over the simulated day.

matplotlib is an optional extra (`pip install 'omniroute[plot]'`); it is imported only
here, with the non-interactive Agg backend so no display is needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["plot"]


def plot(timelines: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Two panels sharing the time axis (hours from the start): the service level of
    each interval with each queue's target, and the contacts waiting. With several
    runs (a comparison), each run's lines carry its name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5))
    several = len(timelines) > 1
    targets: dict[str, float] = {}
    for label, timeline in timelines.items():
        hours = [t / 3600 for t in timeline.times]
        for queue, levels in timeline.service_level.items():
            name = f"{queue} ({label})" if several else queue
            top.plot(hours, [None if v is None else v * 100 for v in levels], label=name)
            bottom.step(hours, timeline.waiting[queue], where="post", label=name)
            targets[queue] = timeline.targets[queue]
    for target in sorted(set(targets.values())):
        top.axhline(target * 100, linestyle="--", linewidth=0.8, color="grey")
        top.annotate(f"target {target * 100:g}%", (0, target * 100 + 1), fontsize=7, color="grey")
    top.set_ylabel("service level (%)")
    top.set_ylim(0, 105)
    top.legend(loc="lower right", fontsize=8)
    top.set_title("Simulated service level and queue length")
    bottom.set_ylabel("contacts waiting")
    bottom.set_xlabel("hours from the start")
    bottom.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=100)
    plt.close(figure)

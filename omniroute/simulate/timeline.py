"""The day as a curve, for `--plot`: service level per interval and contacts waiting."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

import msgspec

__all__ = ["Timeline", "TimelineRecorder"]


class QueueLike(Protocol):
    """What the recorder reads of a queue: its name and how many contacts wait now."""

    name: str
    waiting: int


class Timeline(msgspec.Struct, kw_only=True):
    """Per-interval figures for the plot: `times` are the interval starts (seconds from
    the start), and per queue the service level of the contacts whose wait ended in the
    interval and the number waiting at the interval's start."""

    times: list[float]
    service_level: dict[str, list[float | None]]
    waiting: dict[str, list[int]]
    targets: dict[str, float]


class TimelineRecorder:
    """Samples the waiting count at each interval start and counts answers per interval."""

    def __init__(
        self,
        start: float,
        duration: float,
        queues: Mapping[str, QueueLike],
        targets: Mapping[str, float],
    ) -> None:
        self.start = start
        self.width = max(60.0, duration / 96)  # 96 points over the day: 5 min in 8 hours
        self.count = math.ceil(duration / self.width)
        self.queues = queues
        self.targets = dict(targets)
        self.next = start
        self.samples = 0
        self.waiting: dict[str, list[int]] = {name: [] for name in queues}
        self.within = {name: [0] * self.count for name in queues}
        self.ended_count = {name: [0] * self.count for name in queues}

    def sample(self, at: float) -> None:
        while at >= self.next and self.samples < self.count:
            for name, state in self.queues.items():
                self.waiting[name].append(state.waiting)
            self.samples += 1
            self.next = self.start + self.samples * self.width

    def ended(self, queue: QueueLike, at: float, within: bool) -> None:
        i = int((at - self.start) / self.width)
        if 0 <= i < self.count:
            self.ended_count[queue.name][i] += 1
            if within:
                self.within[queue.name][i] += 1

    def finish(self) -> Timeline:
        self.sample(math.inf)
        return Timeline(
            times=[i * self.width for i in range(self.count)],
            service_level={
                name: [
                    w / n if n else None for w, n in zip(ws, self.ended_count[name], strict=True)
                ]
                for name, ws in self.within.items()
            },
            waiting=self.waiting,
            targets=self.targets,
        )

"""The one source of time. The router reads `now()` and waits with `sleep_until()`, so
the same routing code runs live (RealClock), in tests and in the simulator (VirtualClock).
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

import anyio


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (may be virtual)."""
        ...

    async def sleep_until(self, deadline: float, wake: anyio.Event | None = None) -> None:
        """Return once `now() >= deadline`, or as soon as `wake` is set; cancellable
        like any anyio sleep. (Waking through an event, not by cancelling, leaves no
        exception behind: the app's timer loop is woken on every command.)"""
        ...


class RealClock:
    """Wall-clock time; sleeping is anyio's."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float, wake: anyio.Event | None = None) -> None:
        if wake is None:
            await anyio.sleep(max(0.0, deadline - time.time()))
            return
        with anyio.move_on_after(max(0.0, deadline - time.time())):
            await wake.wait()


class VirtualClock:
    """Time that moves only when told to: tests and the simulator drive it.

    `advance()`/`set()` move it forward and wake every sleeper whose deadline passed,
    in deadline order. It never moves backwards.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()
        self._gone: set[int] = set()  # sleepers cancelled before their deadline

    def now(self) -> float:
        return self._now

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError(f"a clock never goes back: now={self._now}, asked {when}")
        self._now = float(when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, seq, woken = heapq.heappop(self._sleepers)
            self._gone.discard(seq)
            woken.set()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"advance takes seconds >= 0, got {seconds}")
        self.set(self._now + seconds)

    def next_deadline(self) -> float | None:
        """The earliest deadline someone still sleeps until, for a driver that jumps ahead."""
        sleepers = self._sleepers
        while sleepers and sleepers[0][1] in self._gone:
            self._gone.discard(heapq.heappop(sleepers)[1])
        return sleepers[0][0] if sleepers else None

    async def sleep_until(self, deadline: float, wake: anyio.Event | None = None) -> None:
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        woken = wake if wake is not None else anyio.Event()
        seq = next(self._seq)
        heapq.heappush(self._sleepers, (deadline, seq, woken))
        try:
            await woken.wait()
        finally:
            if self._now < deadline:  # woken early or cancelled: forget this sleeper
                self._gone.add(seq)

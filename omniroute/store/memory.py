"""An event log in a Python list: for tests and the simulator, never for production
(a restart of the process loses it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio

from .. import events as ev
from .base import StoreError

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps events in memory; event `n` (1-based) is its sequence number.

    With `encode=True` each event is stored as the JSON the durable stores will write and
    decoded on every read, so a test proves that its events survive the round trip (and
    that nobody mutates a stored event through a shared reference).

    Closing it ends this use of it: appends and reads then raise StoreError.
    """

    def __init__(self, *, encode: bool = False) -> None:
        self.encode = encode
        self._items: list[ev.Event | bytes] = []
        self._closed = False
        self._snapshot: tuple[int, bytes] | None = None

    async def append(self, events: Sequence[ev.Event]) -> int:
        self._check_open()
        if self.encode:
            self._items.extend([ev.encode(e) for e in events])  # all or nothing
        else:
            self._items.extend(events)
        await anyio.lowlevel.checkpoint()  # a real store yields here: let tests see it
        return len(self._items)

    async def read(self, since: int = 0) -> AsyncIterator[tuple[int, ev.Event]]:
        """Events above `since` as they are now; later appends are not included."""
        self._check_open()
        end = len(self._items)
        for seq in range(max(since, 0) + 1, end + 1):
            item = self._items[seq - 1]
            yield seq, ev.decode(item) if isinstance(item, bytes) else item

    async def last_seq(self) -> int:
        self._check_open()
        return len(self._items)

    async def save_snapshot(self, seq: int, data: bytes) -> None:
        self._check_open()
        if not 0 <= seq <= len(self._items):
            raise StoreError(f"snapshot after event {seq}, but the log ends at {len(self._items)}")
        self._snapshot = (seq, bytes(data))

    async def load_snapshot(self) -> tuple[int, bytes] | None:
        self._check_open()
        return self._snapshot

    async def close(self) -> None:
        self._closed = True

    def __len__(self) -> int:
        return len(self._items)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")

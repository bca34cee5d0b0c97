"""A live consumer's stream of events that keeps up with a busy event loop.

An anyio memory stream gives up the event loop before every item it hands out, so a
consumer gets one event per loop turn. On a busy server a loop turn runs every socket
that has something to read (hundreds of agents' pages) and may take a millisecond or
more; events arriving faster than that pile up in the consumer's buffer, and each one
waits for the turns of all those before it (in `python -m bench serve`, offers reached
the agents' pages half a second late while the loop itself never lagged). A
`Subscription` hands out what is already buffered without a loop turn per item, and
gives up the loop only when it is empty, or after `FAIR_EVERY` items in a row so that a
long backlog cannot hold the loop for long.
"""

from __future__ import annotations

from types import TracebackType
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectStreamStatistics

__all__ = ["FAIR_EVERY", "Subscription"]

T = TypeVar("T")

#: Items handed out in a row, at most, before the loop runs the other tasks.
FAIR_EVERY = 100


class Subscription(Generic[T]):
    """The receiving end of a memory stream, iterated a backlog at a time.

    `async for item in subscription` ends when the sender closes; `receive`,
    `receive_nowait`, `close`, `aclose`, `clone`, `with` and `async with` work as on
    the stream.
    """

    __slots__ = ("_in_a_row", "_stream")

    def __init__(self, stream: MemoryObjectReceiveStream[T]) -> None:
        self._stream = stream
        self._in_a_row = 0

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def receive(self) -> T:
        """The next item; gives up the loop only when none is buffered, or after
        `FAIR_EVERY` items in a row."""
        if self._in_a_row < FAIR_EVERY:
            try:
                item = self._stream.receive_nowait()
            except anyio.WouldBlock:
                pass
            else:
                self._in_a_row += 1
                return item
        self._in_a_row = 0
        return await self._stream.receive()  # gives up the loop first

    def receive_nowait(self) -> T:
        return self._stream.receive_nowait()

    def statistics(self) -> MemoryObjectStreamStatistics:
        return self._stream.statistics()

    def close(self) -> None:
        self._stream.close()

    async def aclose(self) -> None:
        self._stream.close()

    def clone(self) -> Subscription[T]:
        """Another reader of the same stream (each item goes to one of them)."""
        return Subscription(self._stream.clone())

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stream.close()

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stream.close()

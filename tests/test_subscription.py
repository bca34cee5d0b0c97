"""A subscription hands out its backlog without a loop turn per event, yet stays fair."""

from __future__ import annotations

import anyio
import pytest
from anyio.lowlevel import checkpoint

from omniroute.subscription import FAIR_EVERY, Subscription

pytestmark = pytest.mark.anyio


async def _turns_to_read(count: int, wrap: bool) -> int:
    """How many turns another always-ready task got while `count` buffered items were
    read: each of its turns is one turn of the event loop."""
    send, receive = anyio.create_memory_object_stream[int](count)
    for n in range(count):
        send.send_nowait(n)
    send.close()
    stream = Subscription(receive) if wrap else receive
    turns = 0
    read: list[int] = []

    async def busy() -> None:
        nonlocal turns
        while True:
            await checkpoint()
            turns += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(busy)
        await checkpoint()  # let it start
        started = turns
        async for item in stream:
            read.append(item)
        tg.cancel_scope.cancel()
    assert read == list(range(count))  # all of them, in order, then the end
    return turns - started


async def test_a_backlog_is_read_without_a_loop_turn_per_event() -> None:
    assert await _turns_to_read(50, wrap=False) >= 50  # what a plain stream costs
    assert await _turns_to_read(50, wrap=True) <= 2


async def test_a_long_backlog_still_lets_other_tasks_run() -> None:
    turns = await _turns_to_read(FAIR_EVERY * 4, wrap=True)
    assert 3 <= turns <= 5  # one every FAIR_EVERY items, or so


async def test_it_waits_when_empty_and_works_as_a_context_manager() -> None:
    send, receive = anyio.create_memory_object_stream[str](10)
    with Subscription(receive) as events:
        async with anyio.create_task_group() as tg:

            async def later() -> None:
                await anyio.sleep(0.01)
                send.send_nowait("late")

            tg.start_soon(later)
            with anyio.fail_after(5):
                assert await events.receive() == "late"
        with pytest.raises(anyio.WouldBlock):
            events.receive_nowait()
    with pytest.raises(anyio.BrokenResourceError):  # closing it unsubscribed
        send.send_nowait("after")


async def test_async_with_closes_it_too() -> None:
    send, receive = anyio.create_memory_object_stream[str](10)
    send.send_nowait("first")
    async with Subscription(receive) as events:
        assert await events.receive() == "first"
    with pytest.raises(anyio.BrokenResourceError):
        send.send_nowait("after")

"""The App on a SQLite file: a restart resumes from it, and retention runs on the clock."""

from __future__ import annotations

import importlib.metadata
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from omniroute import events as ev
from omniroute.app import App
from omniroute.clock import VirtualClock
from omniroute.model import Interaction, InteractionState, Presence
from omniroute.store.sqlite import SqliteStore

if not importlib.metadata.entry_points(group="pytest11", name="omniroute"):
    pytest_plugins = ["omniroute.testing"]

DAY = 86400.0
CONFIG: dict[str, Any] = {
    "queues": [{"name": "support", "offer_timeout": 60, "wrap_up": 0}],
    "agents": [{"id": "a1", "capacity": {"email": 1}}],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def email(n: int) -> Interaction:
    return Interaction(
        id=f"e{n}", channel="email", queue="support", subject=f"help {n}", attributes={"b": n}
    )


@pytest.mark.anyio
async def test_a_restart_on_the_file_resumes_queues_and_assignments(
    app: Callable[..., App], tmp_path: Path
) -> None:
    db = tmp_path / "omniroute.db"
    store = SqliteStore(db)
    async with app(CONFIG, store=store).running() as first:
        await first.set_presence("a1", Presence.READY)
        for n in range(1, 4):
            await first.submit(email(n))
        offer = next(iter(first.router.offers))
        await first.accept(offer)
    await store.close()

    store = SqliteStore(db)
    async with app(CONFIG, store=store).running() as second:
        router = second.router
        assert router.interaction("e1").state is InteractionState.ASSIGNED
        assert router.interaction("e1").agent == "a1"
        assert [ix.id for ix in router.waiting("support")] == ["e2", "e3"]
    await store.close()


@pytest.mark.anyio
async def test_submit_returns_once_another_connection_sees_it_committed(
    app: Callable[..., App], tmp_path: Path
) -> None:
    db = tmp_path / "omniroute.db"
    store = SqliteStore(db)
    other = sqlite3.connect(db)
    query = "SELECT json_extract(data, '$.interaction.id') FROM events WHERE type = 'queued'"
    async with app(CONFIG, store=store).running() as running:
        for n in range(1, 4):
            await running.submit(email(n))
            assert other.execute(query).fetchall()[-1] == (f"e{n}",)
    other.close()
    await store.close()


@pytest.mark.anyio
async def test_retention_purges_at_start_and_then_daily(
    app: Callable[..., App], tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "omniroute.db")
    clock = VirtualClock(100 * DAY)
    config = {**CONFIG, "store": {"backend": "memory", "retention_days": 2}}

    async def subjects() -> list[str | None]:
        return [
            e.interaction.subject
            async for _, e in store.read()
            if isinstance(e, ev.InteractionQueued)
        ]

    async def purged(before: float) -> None:
        """Wait for the purge up to `before` to finish (the store works on a thread of
        its own, which anyio.wait_all_tasks_blocked does not wait for)."""
        with anyio.fail_after(10), sqlite3.connect(tmp_path / "omniroute.db") as conn:
            while True:
                row = conn.execute("SELECT value FROM meta WHERE key = 'purged_before'")
                if float((row.fetchone() or ("-inf",))[0]) == before:
                    return
                await anyio.sleep(0.01)

    async with app(config, store=store, clock=clock).running() as running:
        await running.submit(email(1))
        await purged(98 * DAY)  # at start
        clock.advance(DAY)
        await running.submit(email(2))
        await purged(99 * DAY)
        assert await subjects() == ["help 1", "help 2"]  # nothing is two days old yet
        clock.advance(DAY)  # the daily run: e1 is exactly two days old, not older
        await purged(100 * DAY)
        assert await subjects() == ["help 1", "help 2"]
        clock.advance(DAY)
        await purged(101 * DAY)
        assert await subjects() == ["[purged]", "help 2"]
        clock.advance(DAY)
        await purged(102 * DAY)
        assert await subjects() == ["[purged]", "[purged]"]
    await store.close()


class ReadRecorder(SqliteStore):
    """Remembers where each read started."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[int] = []

    def read(self, since: int = 0) -> Any:
        self.reads.append(since)
        return super().read(since)


def state(running: App) -> tuple[Any, ...]:
    router = running.router
    return (
        [ix.id for ix in router.waiting("support")],
        sorted((i, w.ix.state, w.ix.agent) for i, w in router.active.items()),
        router.queue_stats("support"),
    )


TWO_AGENTS: dict[str, Any] = {
    **CONFIG,
    "agents": [{"id": "a1", "capacity": {"email": 2}}, {"id": "a2", "capacity": {"email": 1}}],
    "store": {"backend": "memory", "snapshot_every": 5},
}


async def busy_day(running: App) -> None:
    await running.set_presence("a1", Presence.READY)
    await running.set_presence("a2", Presence.READY)
    for n in range(1, 12):
        await running.submit(email(n))
        running.clock.advance(7)  # type: ignore[attr-defined]
        for offer in list(running.router.offers)[:1]:
            await running.accept(offer)
        if n % 3 == 0:
            busy = [i for i, w in running.router.active.items() if w.ix.agent]
            await running.complete(busy[0])


@pytest.mark.anyio
async def test_snapshots_are_saved_and_a_restart_replays_only_what_follows(
    app: Callable[..., App], tmp_path: Path
) -> None:
    db = tmp_path / "omniroute.db"
    store = SqliteStore(db)
    clock = VirtualClock(1000.0)
    async with app(TWO_AGENTS, store=store, clock=clock).running() as first:
        await busy_day(first)
        await anyio.wait_all_tasks_blocked()
        before = state(first)
    snapshot = await store.load_snapshot()
    assert snapshot is not None and 5 <= snapshot[0] <= await store.last_seq()
    await store.close()

    recorder = ReadRecorder(db)
    async with app(TWO_AGENTS, store=recorder, clock=VirtualClock(clock.now())).running() as again:
        # Routing read only the events after the snapshot; the conversations (folded in
        # the background, while routing goes on) read the whole log.
        assert recorder.reads[0] == snapshot[0]
        after = state(again)
        await anyio.wait_all_tasks_blocked()
        assert recorder.reads == [snapshot[0], 0]
    await recorder.close()
    # The same as a full replay of the log, with snapshots off.
    full = ReadRecorder(db)
    no_snapshots = {**TWO_AGENTS, "store": {"backend": "memory", "snapshot_every": 0}}
    plain = SqliteStore(tmp_path / "copy.db")
    await plain.append([e async for _, e in full.read()])
    async with app(
        no_snapshots, store=plain, clock=VirtualClock(clock.now())
    ).running() as replayed:
        assert after == state(replayed)
    assert after[0] == before[0] and after[2] == before[2]
    await plain.close()
    await full.close()


@pytest.mark.anyio
async def test_a_snapshot_the_router_rejects_means_a_full_replay(
    app: Callable[..., App], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "omniroute.db"
    store = SqliteStore(db)
    clock = VirtualClock(1000.0)
    async with app(TWO_AGENTS, store=store, clock=clock).running() as first:
        await busy_day(first)
        before = state(first)
    seq, _ = await store.load_snapshot() or (0, b"")
    await store.save_snapshot(seq, b"damaged")
    await store.close()

    recorder = ReadRecorder(db)
    async with app(TWO_AGENTS, store=recorder, clock=VirtualClock(clock.now())).running() as again:
        assert recorder.reads == [seq, 0]
        assert state(again)[0] == before[0]
    assert f"the routing snapshot after event {seq} cannot be used" in caplog.text
    assert "replaying the whole log instead" in caplog.text
    await recorder.close()


@pytest.mark.anyio
async def test_conversations_are_whole_again_after_a_restart_from_a_snapshot(
    app: Callable[..., App], tmp_path: Path
) -> None:
    from omniroute.model import Message

    db = tmp_path / "omniroute.db"
    store = SqliteStore(db)
    async with app(TWO_AGENTS, store=store).running() as first:
        await first.submit(email(1))
        for n in range(8):  # enough events for a snapshot after the first messages
            await first.add_message(
                Message(id=f"m{n}", interaction_id="e1", sender="customer", text=f"line {n}")
            )
    snapshot = await store.load_snapshot()
    assert snapshot is not None and snapshot[0] >= 5
    await store.close()

    store = SqliteStore(db)
    async with app(TWO_AGENTS, store=store).running() as again:
        with anyio.fail_after(10):  # folded in the background, read on the store's thread
            while again.conversations.loading:
                await anyio.sleep(0.01)
        texts = [m.text for m in again.conversations.messages("e1")]
        assert texts == [f"line {n}" for n in range(8)]
        await again.add_message(Message(id="m8", interaction_id="e1", sender="customer", text="+"))
        assert again.conversations.messages("e1")[-1].text == "+"
    await store.close()

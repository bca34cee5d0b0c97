"""The PostgreSQL store against the real server: the Store contract, group commit,
schema versions, fencing, and an App that restarts on it."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from typing import Any

import anyio
import psycopg
import pytest
from pgkit import DSN, needs_postgres
from pgkit import schema as schema

from omniroute import Interaction
from omniroute import events as ev
from omniroute.app import App
from omniroute.model import Customer, InteractionState
from omniroute.store import SchemaError, Store, StoreError
from omniroute.store import postgres as pg
from omniroute.store.postgres import FencedError, PostgresStore

if not importlib.metadata.entry_points(group="pytest11", name="omniroute"):
    pytest_plugins = ["omniroute.testing"]

pytestmark = [needs_postgres, pytest.mark.anyio]

CONFIG: dict[str, Any] = {
    "queues": [{"name": "support", "offer_timeout": 30, "wrap_up": 0}],
    "agents": [{"id": "a1", "capacity": {"echo": 1}}, {"id": "a2", "capacity": {"echo": 1}}],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(dsn=DSN, schema=schema)
    yield s
    await s.close()


def note(i: int, **data: Any) -> ev.Note:
    return ev.Note(at=float(i), kind="test", data={"i": i, **data})


async def everything(store: Store, since: int = 0) -> list[tuple[int, ev.Event]]:
    return [item async for item in store.read(since)]


async def test_append_and_read_keep_order_and_numbers(store: PostgresStore) -> None:
    assert isinstance(store, Store)
    assert await store.last_seq() == 0
    assert await store.append([]) == 0
    assert await store.append([note(1), note(2)]) == 2
    assert await store.append([note(3)]) == 3
    assert await store.append([]) == 3
    items = await everything(store)
    assert [seq for seq, _ in items] == [1, 2, 3]
    assert [e.data["i"] for _, e in items] == [1, 2, 3]  # type: ignore[attr-defined]
    assert [seq for seq, _ in await everything(store, since=2)] == [3]
    assert store.migrated_from == 0


async def test_events_survive_the_round_trip_and_a_new_connection(
    store: PostgresStore, schema: str
) -> None:
    ix = Interaction(id="i1", channel="email", queue="support", subject="nul \u0000 and ü")
    events: list[ev.Event] = [
        ev.InteractionQueued(at=1.5, interaction=ix),
        ev.AgentStateChanged(at=0.1 + 0.2, agent_id="a1", presence="ready"),  # type: ignore[arg-type]
    ]
    await store.append(events)
    await store.close()
    again = PostgresStore(dsn=DSN, schema=schema)
    try:
        assert [e for _, e in await everything(again)] == events
    finally:
        await again.close()


async def test_concurrent_appends_are_group_committed_whole_and_in_order(
    store: PostgresStore,
) -> None:
    returned: dict[int, list[int]] = {}

    async def writer(w: int) -> None:
        returned[w] = [await store.append([note(w * 100 + k), note(w * 100 + k)]) for k in range(5)]

    async with anyio.create_task_group() as tg:
        for w in range(20):
            tg.start_soon(writer, w)
    items = await everything(store)
    assert [seq for seq, _ in items] == list(range(1, 201))
    by_seq = {seq: e.data["i"] for seq, e in items}  # type: ignore[attr-defined]
    for w, seqs in returned.items():
        assert seqs == sorted(seqs)
        # the two events of one append are adjacent and the append returned the last one
        assert [by_seq[s - 1] for s in seqs] == [by_seq[s] for s in seqs]
        assert [by_seq[s] for s in seqs] == [w * 100 + k for k in range(5)]


async def test_snapshots_keep_the_newest_and_refuse_one_past_the_log(
    store: PostgresStore,
) -> None:
    assert await store.load_snapshot() is None
    await store.append([note(1), note(2)])
    await store.save_snapshot(1, b"one")
    await store.save_snapshot(2, b"two")
    assert await store.load_snapshot() == (2, b"two")
    with pytest.raises(StoreError, match="log ends at 2"):
        await store.save_snapshot(3, b"three")
    assert await store.load_snapshot() == (2, b"two")


async def test_a_closed_store_refuses_everything(store: PostgresStore) -> None:
    await store.append([note(1)])
    await store.close()
    await store.close()
    for call in (store.last_seq(), store.append([note(2)]), store.load_snapshot()):
        with pytest.raises(StoreError, match="closed"):
            await call
    with pytest.raises(StoreError, match="closed"):
        await everything(store)


async def test_an_unreachable_server_is_a_store_error() -> None:
    store = PostgresStore(dsn="postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    with pytest.raises(StoreError, match="cannot connect"):
        await store.append([note(1)])


async def test_a_second_writer_fails_instead_of_interleaving(
    store: PostgresStore, schema: str
) -> None:
    other = PostgresStore(dsn=DSN, schema=schema)
    try:
        await store.append([note(1)])
        await other.append([note(2)])  # it reads the table: seq 2
        with pytest.raises(StoreError, match="another process writes"):
            await store.append([note(3)])  # still believes 1 is the last
        assert await store.append([note(3)]) == 3  # after a failure it re-reads the table
    finally:
        await other.close()


async def test_a_fenced_store_stops_writing_once_the_epoch_moves(
    store: PostgresStore, schema: str
) -> None:
    await store.connect()
    store.fence(0)
    assert await store.append([note(1)]) == 1
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f'UPDATE "{schema}".leader SET epoch = epoch + 1')
    with pytest.raises(FencedError, match="epoch 0 was superseded by epoch 1"):
        await store.append([note(2)])
    with pytest.raises(FencedError):
        await store.finish_commands([("c1", b"null")])
    assert [seq for seq, _ in await everything(store)] == [1]


async def test_schema_versions(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = PostgresStore(dsn=DSN, schema=schema)
    await first.append([note(1)])
    await first.close()

    # a newer omniroute adds a step: this schema is then older than the code
    step = ("CREATE TABLE {s}.extra (x int)",)
    monkeypatch.setattr(pg, "MIGRATIONS", (*pg.MIGRATIONS, step))
    monkeypatch.setattr(pg, "LATEST", pg.LATEST + 1)
    older = PostgresStore(dsn=DSN, schema=schema)
    with pytest.raises(SchemaError, match=r"version 1, older .* \(version 2\).*store migrate"):
        await older.last_seq()
    await older.close()
    assert await PostgresStore(dsn=DSN, schema=schema).migrate() == (1, 2)
    assert await PostgresStore(dsn=DSN, schema=schema).migrate() == (2, 2)

    # back to this code: the database is now newer than it knows
    monkeypatch.undo()
    newer = PostgresStore(dsn=DSN, schema=schema)
    with pytest.raises(SchemaError, match=r"version 2, newer than .* \(version 1\)"):
        await newer.last_seq()
    await newer.close()


async def test_a_schema_that_is_not_omniroutes_is_refused(schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'CREATE TABLE "{schema}".customers (id int)')
    store = PostgresStore(dsn=DSN, schema=schema)
    with pytest.raises(SchemaError, match="not omniroute's"):
        await store.last_seq()
    await store.close()


async def test_an_app_resumes_from_postgres_after_a_restart(
    app: Any, store: PostgresStore, schema: str
) -> None:
    async with app(CONFIG, store=store).running() as running:
        await running.submit(Interaction(id="i1", channel="echo", queue="support"))
        await running.submit(Interaction(id="i2", channel="echo", queue="support"))
        await running.set_presence("a1", "ready")
    again = PostgresStore(dsn=DSN, schema=schema)
    try:
        restarted: App = app(CONFIG, store=again)
        async with restarted.running():
            assert restarted.router.interaction("i1").state is InteractionState.OFFERED
            assert [ix.id for ix in restarted.router.waiting("support")] == ["i2"]
    finally:
        await again.close()


def test_names_fit_postgresql() -> None:
    long = PostgresStore(dsn=DSN, schema="s" * 63)
    channels = {long.channel(name) for name in ("events", "commands", "results")}
    assert len(channels) == 3 and all(len(c.encode()) <= 63 for c in channels)
    assert PostgresStore(dsn=DSN, schema="cc").channel("events") == "omniroute.cc.events"
    for bad in ("", "é" * 32):
        with pytest.raises(StoreError, match="1 to 63 bytes"):
            PostgresStore(dsn=DSN, schema=bad)


async def test_purge_replaces_bodies_before_the_cutoff_only(store: PostgresStore) -> None:
    retention = pytest.importorskip(
        "omniroute.store.retention", reason="retention comes with the SQLite store"
    )
    ix = Interaction(
        id="i1",
        channel="email",
        queue="support",
        subject="my card was charged twice",
        customer=Customer(id="c1", name="Ann", attributes={"crm": "gold"}),
    )
    original: list[ev.Event] = [
        ev.InteractionQueued(at=100.0, interaction=ix),
        ev.Note(at=110.0, kind="message", data={"text": "hello \u0000"}),
        ev.Note(at=120.0, kind="qa", data={"score": 90}),
        ev.Assigned(at=130.0, interaction_id="i1", agent_id="a1"),
        ev.Note(at=500.0, kind="message", data={"text": "recent"}),
    ]
    await store.append(original)
    assert await store.purge(200.0) == 2
    after = [e for _, e in await everything(store)]
    queued = after[0]
    assert isinstance(queued, ev.InteractionQueued)
    assert queued.interaction.subject == retention.PURGED
    assert queued.interaction.customer == Customer(
        id="c1", name=retention.PURGED, attributes={"purged": True}
    )
    assert (queued.interaction.id, queued.interaction.queue) == ("i1", "support")
    assert after[1] == ev.Note(at=110.0, kind="message", data={"purged": True})
    assert after[2:] == original[2:]
    assert await store.purge(200.0) == 0
    assert await store.purge(1000.0) == 1  # only the newer message: it remembered

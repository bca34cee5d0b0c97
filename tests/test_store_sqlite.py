"""The SQLite store: the Store contract on a real file, reopening, schema versions and
migrations, retention."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from test_store_memory import read_all, sample_events

from omniroute import events as ev
from omniroute.model import Customer, Identity, Interaction
from omniroute.store import Purging, SchemaError, Store, StoreError
from omniroute.store import schema as schema_mod
from omniroute.store.retention import PURGED
from omniroute.store.sqlite import SqliteStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sub" / "omniroute.db"


def test_sqlite_store_is_a_store(db: Path) -> None:
    store = SqliteStore(db)
    assert isinstance(store, Store) and isinstance(store, Purging)
    assert db.exists()  # the folder was created too


@pytest.mark.anyio
async def test_append_read_and_reopen(db: Path) -> None:
    store = SqliteStore(db)
    events = sample_events()
    assert await store.last_seq() == 0
    assert await store.append(events[:2]) == 2
    assert await store.append([]) == 2
    assert await store.append(events[2:]) == 5
    assert [seq for seq, _ in await read_all(store, since=3)] == [4, 5]
    await store.close()
    reopened = SqliteStore(db)
    assert await reopened.last_seq() == 5
    stored = await read_all(reopened)
    assert [seq for seq, _ in stored] == [1, 2, 3, 4, 5]
    assert [ev.encode(e) for _, e in stored] == [ev.encode(e) for e in events]
    assert await reopened.append(events[:1]) == 6
    await reopened.close()


@pytest.mark.anyio
async def test_reads_span_chunks_and_ignore_later_appends(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omniroute.store.sqlite.READ_CHUNK", 3)
    store = SqliteStore(db)
    await store.append([ev.Note(at=float(i), kind="n") for i in range(10)])
    seen = []
    async for seq, event in store.read(since=1):
        seen.append((seq, event.at))
        if seq == 2:
            await store.append([ev.Note(at=99.0, kind="later")])
    assert seen == [(i + 1, float(i)) for i in range(1, 10)]
    assert await store.last_seq() == 11
    await store.close()


@pytest.mark.anyio
async def test_a_failed_batch_stores_nothing(db: Path) -> None:
    store = SqliteStore(db)
    with pytest.raises(TypeError):
        await store.append(
            [ev.Note(at=0.0, kind="ok"), ev.Note(at=0, kind="x", data={"x": object()})]
        )
    assert await store.last_seq() == 0
    assert await store.append([ev.Note(at=0.0, kind="ok")]) == 1
    await store.close()


@pytest.mark.anyio
async def test_a_second_writer_is_refused_not_interleaved(db: Path) -> None:
    first, second = SqliteStore(db), SqliteStore(db)
    await first.append(sample_events()[:1])
    with pytest.raises(StoreError, match="another process writing"):
        await second.append(sample_events()[:1])
    assert [seq for seq, _ in await read_all(first)] == [1]
    await first.close()
    await second.close()


@pytest.mark.anyio
async def test_closed_store_refuses_work(db: Path) -> None:
    store = SqliteStore(db)
    await store.close()
    await store.close()
    for call in (store.append(sample_events()), store.last_seq(), store.load_snapshot()):
        with pytest.raises(StoreError, match="closed"):
            await call
    with pytest.raises(StoreError, match="closed"):
        await read_all(store)


@pytest.mark.anyio
async def test_snapshots_keep_the_newest(db: Path) -> None:
    store = SqliteStore(db)
    assert await store.load_snapshot() is None
    await store.append(sample_events())
    await store.save_snapshot(2, b"two")
    await store.save_snapshot(5, b"five")
    with pytest.raises(StoreError, match="log ends at 5"):
        await store.save_snapshot(6, b"six")
    await store.close()
    store = SqliteStore(db)
    assert await store.load_snapshot() == (5, b"five")
    await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (1,)


def test_durability_settings(db: Path) -> None:
    store = SqliteStore(db)
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)  # its own thread


# ---------------------------------------------------------------------- pipelining


@pytest.mark.anyio
async def test_overlapping_appends_commit_in_call_order_in_one_transaction(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(db)
    assert store.pipelined
    transactions: list[int] = []
    commit = SqliteStore._commit
    monkeypatch.setattr(
        SqliteStore,
        "_commit",
        lambda self, jobs, out: [transactions.append(len(jobs)), commit(self, jobs, out)],
    )
    batches = [[ev.Note(at=float(n), kind=f"b{n}")] * (n % 3 + 1) for n in range(50)]
    ends: dict[int, int] = {}
    entered, gate = threading.Event(), threading.Event()

    def hold(_: sqlite3.Connection) -> None:  # the writer thread, until all are queued
        entered.set()
        gate.wait(10)

    async def append(n: int) -> None:
        ends[n] = await store.append(batches[n])

    async with anyio.create_task_group() as tg:
        tg.start_soon(store._run, hold)
        await anyio.to_thread.run_sync(entered.wait, 10)
        for n in range(50):
            tg.start_soon(append, n)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert transactions == [50]
    sizes = [len(b) for b in batches]
    assert [ends[n] for n in range(50)] == [sum(sizes[: n + 1]) for n in range(50)]
    assert [e.kind for _, e in await read_all(store)] == [e.kind for b in batches for e in b]
    await store.close()


@pytest.mark.anyio
async def test_after_a_failed_append_the_appends_queued_behind_it_fail_too(db: Path) -> None:
    first, second = SqliteStore(db), SqliteStore(db)
    await first.append(sample_events()[:1])
    outcomes: list[object] = []

    async def append() -> None:
        try:
            outcomes.append(await second.append(sample_events()[:1]))
        except StoreError as exc:
            outcomes.append(str(exc))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(append)
    assert len(outcomes) == 3 and all("another process writing" in str(o) for o in outcomes)
    with pytest.raises(StoreError, match="an earlier append failed"):
        await second.append(sample_events()[:1])
    assert [seq for seq, _ in await read_all(first)] == [1]
    await first.close()
    await second.close()


@pytest.mark.anyio
async def test_the_log_file_starts_over_while_appends_go_on(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints run beside the appends; without the writer finishing them the log
    would only grow (about 4 KB a commit: 8 MB here)."""
    monkeypatch.setattr("omniroute.store.sqlite.CHECKPOINT_EVERY", 0.02)
    store = SqliteStore(db)
    wal = db.with_name(db.name + "-wal")
    for n in range(2000):  # back to back: the checkpoint thread never sees the log whole
        await store.append([ev.Note(at=float(n), kind="n", data={"pad": "x" * 200})])
    assert wal.stat().st_size < 2_000_000
    assert await store.last_seq() == 2000
    await store.close()
    assert not wal.exists()  # the last connection closed: the whole log is in the file


# ---------------------------------------------------------------------- schema


def test_a_file_that_is_not_omniroutes_is_refused(db: Path) -> None:
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id TEXT)")
    with pytest.raises(SchemaError, match="is not an omniroute database"):
        SqliteStore(db)


def test_a_file_that_is_not_sqlite_is_refused(db: Path) -> None:
    db.parent.mkdir()
    db.write_text("hello, I am a text file and not a database at all" * 100)
    with pytest.raises(StoreError, match="not a database"):
        SqliteStore(db)


def test_a_newer_database_names_both_versions(db: Path) -> None:
    SqliteStore(db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {schema_mod.LATEST + 1}")
    message = f"schema version {schema_mod.LATEST + 1}, newer than this omniroute knows "
    with pytest.raises(SchemaError, match=message + rf"\(version {schema_mod.LATEST}\)"):
        SqliteStore(db)
    with pytest.raises(SchemaError, match="newer"):
        SqliteStore(db, migrate=True)


@pytest.mark.anyio
async def test_an_older_database_asks_for_migrate_then_upgrades(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(db)
    await store.append(sample_events())
    await store.close()
    # A later release adds a step: version 2.
    steps = (*schema_mod.MIGRATIONS, ("CREATE INDEX events_at ON events (at)",))
    monkeypatch.setattr(schema_mod, "MIGRATIONS", steps)
    with pytest.raises(SchemaError, match=r"version 1, older .* \(version 2\).*store migrate"):
        SqliteStore(db)
    upgraded = SqliteStore(db, migrate=True)
    assert upgraded.migrated_from == 1
    assert len(await read_all(upgraded)) == 5
    await upgraded.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        assert conn.execute("SELECT type FROM sqlite_master WHERE name='events_at'").fetchall() == [
            ("index",)
        ]


def test_a_failing_migration_step_leaves_the_previous_version(db: Path) -> None:
    db.parent.mkdir()
    conn = sqlite3.connect(db, isolation_level=None)
    steps = (("CREATE TABLE a (x)",), ("CREATE TABLE b (x)", "CREATE TABLE a (x)"))
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        schema_mod.migrate(conn, str(db), steps)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("a",)]


# ---------------------------------------------------------------------- retention


def bodies() -> list[ev.Event]:
    customer = Customer(
        id="c1", name="Ann", identities=[Identity("email", "ann@x")], attributes={"vip": 1}
    )
    ix = Interaction(
        id="i1",
        channel="email",
        queue="support",
        subject="my invoice",
        attributes={"body": "card 4111"},
        customer=customer,
        skills={"billing": 2},
    )
    return [
        ev.InteractionQueued(at=100.0, interaction=ix),
        ev.Note(at=110.0, kind="message", data={"text": "hello"}),
        ev.Note(at=120.0, kind="qa", data={"score": 90}),
        ev.Assigned(at=130.0, interaction_id="i1", agent_id="a1"),
        ev.Note(at=500.0, kind="message", data={"text": "recent"}),
    ]


@pytest.mark.anyio
async def test_purge_replaces_bodies_before_the_cutoff_only(db: Path) -> None:
    store = SqliteStore(db)
    original = bodies()
    await store.append(original)
    assert await store.purge(200.0) == 2
    after = [e for _, e in await read_all(store)]
    queued = after[0]
    assert isinstance(queued, ev.InteractionQueued)
    ix = queued.interaction
    assert (ix.subject, ix.attributes) == (PURGED, {"purged": True})
    assert ix.customer is not None
    assert (ix.customer.name, ix.customer.attributes) == (PURGED, {"purged": True})
    # What routing and KPIs need is kept.
    assert (ix.id, ix.queue, ix.channel, ix.skills) == ("i1", "support", "email", {"billing": 2})
    assert ix.customer.identities == [Identity("email", "ann@x")]
    assert after[1] == ev.Note(at=110.0, kind="message", data={"purged": True})
    assert after[2:] == original[2:]  # QA notes, other events and recent messages stay
    assert await store.purge(200.0) == 0  # nothing left to do
    assert await store.purge(1000.0) == 1  # only the newer message
    await store.close()


@pytest.mark.anyio
async def test_reads_number_events_right_across_a_gap(db: Path) -> None:
    store = SqliteStore(db)
    await store.append([ev.Note(at=float(i), kind="n") for i in range(1, 6)])
    with sqlite3.connect(db) as conn:  # a gap that only a hand-edited file could have
        conn.execute("DELETE FROM events WHERE seq = 3")
    assert [(seq, e.at) for seq, e in await read_all(store)] == [
        (1, 1.0),
        (2, 2.0),
        (4, 4.0),
        (5, 5.0),
    ]
    await store.close()


@pytest.mark.anyio
async def test_a_huge_batch_is_several_statements_in_one_transaction(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omniroute.store.sqlite.APPEND_CHUNK", 2)
    store = SqliteStore(db)
    notes = [ev.Note(at=float(i), kind="n") for i in range(5)]
    assert await store.append(notes) == 5
    assert [e for _, e in await read_all(store)] == notes
    # All or nothing: the third statement fails, the first two are rolled back.
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events VALUES (10, 0, 'note', '{}')")
    with pytest.raises(StoreError, match="sequence numbers from 6 are taken"):
        await store.append(notes)
    await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT seq FROM events").fetchall() == [
            (i,) for i in (1, 2, 3, 4, 5, 10)
        ]


@pytest.mark.anyio
async def test_purge_empties_conversation_messages(db: Path) -> None:
    from omniroute.model import Message

    def said(at: float, text: str) -> ev.MessageAdded:
        message = Message(
            id=f"m{at:g}", interaction_id="i1", sender="customer", text=text, at=at,
            attachments=["invoice.pdf"], attributes={"html": f"<p>{text}</p>"},
        )  # fmt: skip
        return ev.MessageAdded(at=at, message=message)

    store = SqliteStore(db)
    await store.append([said(100.0, "my card is 4111"), said(500.0, "recent")])
    assert await store.purge(200.0) == 1
    old, recent = [e for _, e in await read_all(store)]
    assert isinstance(old, ev.MessageAdded) and isinstance(recent, ev.MessageAdded)
    assert (old.message.text, old.message.attachments, old.message.attributes) == (PURGED, [], {})
    assert (old.message.id, old.message.sender, old.message.at) == ("m100", "customer", 100.0)
    assert recent == said(500.0, "recent")
    await store.close()

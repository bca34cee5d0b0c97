"""The embedded default store: the event log in one SQLite file, for one machine.

Durability: the database runs in WAL mode with `synchronous=FULL`, so every commit
fsyncs the write-ahead log before `append` returns. A committed append therefore
survives `kill -9` of the process and a power loss or OS crash (as far as the disk
honours fsync, which is SQLite's own guarantee). `synchronous=NORMAL` would survive a
process crash only, and is not used.

Group commit: each `append` is one transaction, one fsync, however many events it holds
(one INSERT statement: the batch goes to SQLite as a JSON array).
The App batches every event staged while the previous append was on disk into the next
one, so under load a transaction carries many events and fsyncs stay few.

One writer: all work runs, one call at a time, on a worker thread (sqlite3 blocks),
never on the event loop. Sequence numbers are assigned here; a second process
appending to the same file makes the next append fail (its numbers are taken) rather
than interleave.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
import msgspec

from .. import events as ev
from . import schema
from .base import StoreError
from .retention import PURGEABLE_TAGS, purge_bodies

__all__ = ["SqliteStore"]

_CHUNK = (
    "SELECT count(*), min(seq), max(seq), '[' || group_concat(data, ',') || ']' FROM"
    " (SELECT seq, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?)"
)
_decode_array = msgspec.json.Decoder(list[ev.AnyEvent]).decode  # type: ignore[valid-type]
_INSERT = (
    "INSERT INTO events (seq, at, type, data) SELECT ? + key, json_extract(value, '$.at'),"
    " json_extract(value, '$.type'), value FROM json_each(?)"
)

T = TypeVar("T")

#: Events per INSERT statement when appending (a statement's text has a size limit).
APPEND_CHUNK = 50_000
#: Events decoded per trip to the worker thread when reading.
READ_CHUNK = 20_000
#: Events rewritten per transaction when purging (short, so appends wait little).
PURGE_CHUNK = 500


class SqliteStore:
    """The event log in the SQLite file at `path` (created, with its folder, if missing).

    A new, empty file gets the current schema. An existing database must already have
    it: an older one raises SchemaError asking for `omniroute store migrate` (pass
    `migrate=True` to upgrade on open, as that command does), a newer one raises
    SchemaError naming both versions.
    """

    def __init__(self, path: str | Path, *, migrate: bool = False) -> None:
        self.path = Path(path)
        self._where = str(self.path)
        self._limiter = anyio.CapacityLimiter(1)
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self._where}: cannot open: {exc}") from None
        try:
            self._setup(migrate)
        except BaseException:
            self._conn.close()
            raise

    def _setup(self, migrate: bool) -> None:
        conn = self._conn
        try:
            version = schema.version_of(conn, self._where)
            if version == 0 or migrate:
                self.migrated_from, _ = schema.migrate(conn, self._where)
            else:
                schema.check(conn, self._where)
                self.migrated_from = version
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self._where}: cannot use WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=FULL")
            self._last: int = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._where}: {exc}") from None

    # ------------------------------------------------------------------ plumbing

    async def _run(self, work: Callable[[], T]) -> T:
        """Run `work` on the worker thread, one call at a time; sqlite errors become
        StoreErrors naming the file."""
        self._check_open()
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"{self._where}: {exc}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the sqlite store {self._where} is closed")

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one write transaction, committed (and fsynced) before returning."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # ------------------------------------------------------------------ the log

    async def append(self, events: Sequence[ev.Event]) -> int:
        self._check_open()
        if not events:
            return self._last
        # A batch travels as JSON arrays, each inserted by one statement: one release of
        # the GIL per statement, not one per row. A usual batch is one statement, which
        # in autocommit mode is its own transaction: atomic, and fsynced before it
        # returns. A huge one (an import) is several statements in one transaction.
        encode = ev.encode
        payloads = [
            (b"[" + b",".join([encode(e) for e in events[i : i + APPEND_CHUNK]]) + b"]").decode()
            for i in range(0, len(events), APPEND_CHUNK)
        ]

        def insert(conn: sqlite3.Connection) -> int:
            first = self._last + 1
            count = 0
            try:
                for payload in payloads:
                    count += conn.execute(_INSERT, (first + count, payload)).rowcount
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"{self._where}: sequence numbers from {first} are taken; is another "
                    f"process writing to this store? ({exc})"
                ) from None
            return first + count - 1

        def write() -> int:
            if len(payloads) == 1:
                self._last = insert(self._conn)
            else:
                self._last = self._transaction(insert)
            return self._last

        return await self._run(write)

    async def read(self, since: int = 0) -> AsyncIterator[tuple[int, ev.Event]]:
        """Events above `since` as the log is now; later appends are not included."""
        self._check_open()
        end = self._last
        position = max(since, 0)
        while position < end:
            chunk = await self._run(partial(self._fetch, position, end))
            if not chunk:
                return
            for item in chunk:
                yield item
            position = chunk[-1][0]

    def _fetch(self, after: int, end: int) -> list[tuple[int, ev.Event]]:
        """Up to READ_CHUNK events numbered in (after, end], decoded.

        SQLite joins the chunk into one JSON array, decoded in one call: much cheaper
        than a row at a time, which matters when a restart replays a long log.
        """
        count, low, high, array = self._conn.execute(_CHUNK, (after, end, READ_CHUNK)).fetchone()
        if not count:
            return []
        events = _decode_array(array)
        if high - low + 1 == count:  # numbers without gaps: the usual case
            return list(zip(range(low, high + 1), events, strict=True))
        seqs = self._conn.execute(
            "SELECT seq FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after, end, READ_CHUNK),
        ).fetchall()
        return [(seq, event) for (seq,), event in zip(seqs, events, strict=True)]

    async def last_seq(self) -> int:
        self._check_open()
        return self._last

    # ------------------------------------------------------------------ snapshots

    async def save_snapshot(self, seq: int, data: bytes) -> None:
        self._check_open()
        if not 0 <= seq <= self._last:
            raise StoreError(f"snapshot after event {seq}, but the log ends at {self._last}")
        blob = bytes(data)

        def save(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO snapshots (seq, data) VALUES (?, ?)", (seq, blob))
            conn.execute("DELETE FROM snapshots WHERE seq < ?", (seq,))

        await self._run(lambda: self._transaction(save))

    async def load_snapshot(self) -> tuple[int, bytes] | None:
        def load() -> tuple[int, bytes] | None:
            row = self._conn.execute(
                "SELECT seq, data FROM snapshots ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]))

        return await self._run(load)

    # ------------------------------------------------------------------ retention

    async def purge(self, before: float) -> int:
        """Replace message bodies of events before `before` with markers (see
        omniroute.store.retention); return how many events changed.

        Works in short transactions so that appends are not held up for long, and
        remembers how far it got, so a daily purge only reads the new day's events.
        Safe to interrupt: a purged event is left as it is by the next run.
        """

        def candidates() -> list[int]:
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'purged_before'"
            ).fetchone()
            done = float(row[0]) if row else float("-inf")
            marks = ",".join("?" * len(PURGEABLE_TAGS))
            return [
                seq
                for (seq,) in self._conn.execute(
                    f"SELECT seq FROM events WHERE type IN ({marks}) AND at < ? AND at >= ?"
                    " ORDER BY seq",
                    (*PURGEABLE_TAGS, before, done),
                )
            ]

        def rewrite(seqs: list[int], conn: sqlite3.Connection) -> int:
            marks = ",".join("?" * len(seqs))
            rows = conn.execute(f"SELECT seq, data FROM events WHERE seq IN ({marks})", seqs)
            changed = []
            for seq, data in rows.fetchall():
                purged = purge_bodies(ev.decode(data))
                if purged is not None:
                    changed.append((ev.encode(purged).decode(), seq))
            conn.executemany("UPDATE events SET data = ? WHERE seq = ?", changed)
            return len(changed)

        def remember(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('purged_before', ?) ON CONFLICT (key)"
                " DO UPDATE SET value = max(CAST(value AS REAL), CAST(excluded.value AS REAL))",
                (repr(float(before)),),
            )

        seqs = await self._run(candidates)
        changed = 0
        for start in range(0, len(seqs), PURGE_CHUNK):
            chunk = seqs[start : start + PURGE_CHUNK]
            changed += await self._run(lambda c=chunk: self._transaction(partial(rewrite, c)))
        await self._run(lambda: self._transaction(remember))
        return changed

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        if self._closed:
            return
        async with self._limiter:  # wait for the call in flight
            self._closed = True
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self._where!r})"

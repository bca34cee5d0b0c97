"""The embedded default store: the event log in one SQLite file, for one machine.

Durability: the database runs in WAL mode with `synchronous=FULL`, so every commit
fsyncs the write-ahead log before `append` returns. A committed append therefore
survives `kill -9` of the process and a power loss or OS crash (as far as the disk
honours fsync, which is SQLite's own guarantee). `synchronous=NORMAL` would survive a
process crash only, and is not used.

One writer thread: the connection lives on a thread of its own, which does all the
store's work in the order it was asked (sqlite3 blocks; the event loop never does).
Sequence numbers are assigned there; a second process appending to the same file makes
the next append fail (its numbers are taken) rather than interleave.

Group commit, pipelined: `append` queues its batch and waits; it does not wait for the
append before it to return first (`pipelined`, omniroute.store.base). The thread takes
every batch queued while it was committing and writes them all in one transaction, one
INSERT statement, one fsync, and wakes their callers together. Under load the thread
commits back to back and the event loop only queues and wakes: the hop to a thread,
which on a busy server costs more than the commit (the thread waits for the GIL), is
paid once per transaction, not once per command. After a failed append the store
refuses appends: those queued behind it counted on it.

Checkpoints (copying the log back into the database file) run on a second thread and
connection, passively, every CHECKPOINT_EVERY seconds, never inside a commit that
someone waits for; the writer thread then copies the few frames committed meanwhile
when it has nothing else to do, so that the log file starts over rather than grows.
Checkpoints fsync the database file before the log is reused, as SQLite's automatic
checkpoints do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import msgspec

from .. import events as ev
from . import schema
from .base import StoreError
from .retention import PURGEABLE_TAGS, purge_bodies

__all__ = ["SqliteStore"]

logger = logging.getLogger("omniroute.store.sqlite")

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
#: Seconds between two passive checkpoints of the write-ahead log.
CHECKPOINT_EVERY = 1.0


class _Job:
    """Work for the writer thread and the future its caller awaits. An append carries
    its events already encoded (`events`); any other job a function of the connection."""

    __slots__ = ("events", "future", "last", "loop", "work")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        work: Callable[[sqlite3.Connection], Any] | None = None,
        events: list[bytes] | None = None,
        last: bool = False,
    ) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.work = work
        self.events = events
        self.last = last  # the thread ends after this one (closing)


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """On the event loop: hand the writer thread's results to their callers."""
    for future, result, error in outcomes:
        if future.done():  # the caller went away (its loop is stopping)
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class SqliteStore:
    """The event log in the SQLite file at `path` (created, with its folder, if missing).

    A new, empty file gets the current schema. An existing database must already have
    it: an older one raises SchemaError asking for `omniroute store migrate` (pass
    `migrate=True` to upgrade on open, as that command does), a newer one raises
    SchemaError naming both versions.
    """

    #: Appends may overlap: they commit in the order they were called (base.Store).
    pipelined = True

    def __init__(self, path: str | Path, *, migrate: bool = False) -> None:
        self.path = Path(path)
        self._where = str(self.path)
        self._closed = False
        self._broken: StoreError | None = None  # why appends are refused, after a failure
        #: Transactions that appended events, since opened (`python -m bench store`).
        self.commits = 0
        self._jobs: deque[_Job] = deque()
        self._wake = threading.Condition()
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
        self._stop_checkpoints = threading.Event()
        self._tidy = threading.Event()  # a checkpoint pass ended: the writer finishes it
        self._writer = threading.Thread(
            target=self._serve, name=f"omniroute sqlite writer {self._where}", daemon=True
        )
        self._checkpointer = threading.Thread(
            target=self._checkpoints,
            name=f"omniroute sqlite checkpoints {self._where}",
            daemon=True,
        )
        self._writer.start()
        self._checkpointer.start()

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
            # Checkpoints are the checkpoint thread's (`_checkpoints`), not a commit's.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._last: int = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._where}: {exc}") from None

    # ------------------------------------------------------------------ the threads

    def _queue(self, job: _Job) -> None:
        with self._wake:
            self._jobs.append(job)
            if len(self._jobs) == 1:
                self._wake.notify()

    async def _await(self, job: _Job) -> Any:
        """Queue `job` and wait for it. A cancelled caller stops waiting, but the job
        still runs: a cancelled append may be committed (the App never cancels one:
        its writes are shielded), and cancellation says nothing of what was done."""
        self._queue(job)
        try:
            return await job.future
        except sqlite3.Error as exc:
            raise StoreError(f"{self._where}: {exc}") from exc

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the writer thread, in turn; sqlite errors become StoreErrors
        naming the file."""
        self._check_open()
        result: T = await self._await(_Job(asyncio.get_running_loop(), work=work))
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the sqlite store {self._where} is closed")

    def _serve(self) -> None:
        """The writer thread: take every queued job, in order; appends next to each
        other are one transaction; results go back to each loop in one wake-up."""
        conn = self._conn
        last = False
        while not last:
            with self._wake:
                while not self._jobs:
                    self._wake.wait()
                jobs = list(self._jobs)
                self._jobs.clear()
            outcomes: dict[asyncio.AbstractEventLoop, list[Any]] = {}
            appends: list[_Job] = []
            for job in jobs:
                if job.events is not None:
                    appends.append(job)
                    continue
                if appends:
                    self._commit(appends, outcomes)
                    appends = []
                assert job.work is not None
                try:
                    result, error = job.work(conn), None
                except BaseException as exc:  # it goes to the caller
                    result, error = None, exc
                outcomes.setdefault(job.loop, []).append((job.future, result, error))
                last = last or job.last
            if appends:
                self._commit(appends, outcomes)
            for loop, settled in outcomes.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: no one waits
                    loop.call_soon_threadsafe(_settle, settled)
            if self._tidy.is_set() and not self._jobs and not last:
                self._finish_checkpoint()

    def _finish_checkpoint(self) -> None:
        """On the writer thread, when it has nothing to do: checkpoint what was committed
        since the checkpoint thread's pass (a few frames), so the log is then copied
        whole and the next commit starts it again from the beginning. The checkpoint
        thread alone would never see it whole while commits go on, and it would grow."""
        self._tidy.clear()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the next pass tries again
            logger.warning("%s: checkpoint failed: %s", self._where, exc)

    def _commit(
        self, jobs: list[_Job], outcomes: dict[asyncio.AbstractEventLoop, list[Any]]
    ) -> None:
        """Append the events of `jobs` in one transaction, numbered in order."""
        error: BaseException | None = self._broken
        first = self._last + 1
        ends: list[int] = []
        if error is None:
            events = [e for job in jobs for e in job.events or ()]
            count = 0
            for job in jobs:
                count += len(job.events or ())
                ends.append(first + count - 1)
            try:
                self._insert(events, first)
            except sqlite3.IntegrityError as exc:
                error = StoreError(
                    f"{self._where}: sequence numbers from {first} are taken; is another "
                    f"process writing to this store? ({exc})"
                )
            except BaseException as exc:  # it goes to the callers
                error = exc
            else:
                self._last = first + count - 1
                self.commits += 1
            if error is not None:
                self._broken = StoreError(
                    f"{self._where}: an earlier append failed ({error}); reopen the store"
                )
        for n, job in enumerate(jobs):
            result = None if error is not None else ends[n]
            outcomes.setdefault(job.loop, []).append((job.future, result, error))

    def _insert(self, events: list[bytes], first: int) -> None:
        """The events as JSON arrays, each inserted by one statement: one release of the
        GIL per statement, not one per row. A usual batch is one statement, which in
        autocommit mode is its own transaction: atomic, and fsynced before it returns.
        A huge one (an import) is several statements in one transaction."""
        conn = self._conn
        payloads = [
            (b"[" + b",".join(events[i : i + APPEND_CHUNK]) + b"]").decode()
            for i in range(0, len(events), APPEND_CHUNK)
        ]
        if len(payloads) == 1:
            conn.execute(_INSERT, (first, payloads[0]))
            return

        def insert(conn: sqlite3.Connection) -> None:
            count = 0
            for payload in payloads:
                count += conn.execute(_INSERT, (first + count, payload)).rowcount

        self._transaction(insert)(conn)

    def _checkpoints(self) -> None:
        """The checkpoint thread: every CHECKPOINT_EVERY s, a passive checkpoint on a
        connection of its own (it never blocks the writer, nor waits for it)."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=FULL")  # fsync the database before reusing the log
        except sqlite3.Error as exc:
            logger.warning("%s: no checkpoint thread (%s); the log file grows", self._where, exc)
            return
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_EVERY):
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy, or the disk: the next one tries again
                    logger.warning("%s: checkpoint failed: %s", self._where, exc)
                else:
                    if frames > 0:  # the writer finishes it (`_finish_checkpoint`)
                        self._tidy.set()
        finally:
            conn.close()

    @staticmethod
    def _transaction(work: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        """`work` in one write transaction, committed (and fsynced) before returning."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return run

    # ------------------------------------------------------------------ the log

    async def append(self, events: Sequence[ev.Event]) -> int:
        self._check_open()
        if not events:
            return self._last
        encode = ev.encode  # here, not on the writer thread: it holds the GIL meanwhile
        job = _Job(asyncio.get_running_loop(), events=[encode(e) for e in events])
        last: int = await self._await(job)
        return last

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

    def _fetch(self, after: int, end: int, conn: sqlite3.Connection) -> list[tuple[int, ev.Event]]:
        """Up to READ_CHUNK events numbered in (after, end], decoded.

        SQLite joins the chunk into one JSON array, decoded in one call: much cheaper
        than a row at a time, which matters when a restart replays a long log.
        """
        count, low, high, array = conn.execute(_CHUNK, (after, end, READ_CHUNK)).fetchone()
        if not count:
            return []
        events = _decode_array(array)
        if high - low + 1 == count:  # numbers without gaps: the usual case
            return list(zip(range(low, high + 1), events, strict=True))
        seqs = conn.execute(
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

        await self._run(self._transaction(save))

    async def load_snapshot(self) -> tuple[int, bytes] | None:
        def load(conn: sqlite3.Connection) -> tuple[int, bytes] | None:
            row = conn.execute(
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

        def candidates(conn: sqlite3.Connection) -> list[int]:
            row = conn.execute("SELECT value FROM meta WHERE key = 'purged_before'").fetchone()
            done = float(row[0]) if row else float("-inf")
            marks = ",".join("?" * len(PURGEABLE_TAGS))
            return [
                seq
                for (seq,) in conn.execute(
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
            changed += await self._run(self._transaction(partial(rewrite, chunk)))
        await self._run(self._transaction(remember))
        return changed

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        """Wait for the work queued before, then close (the last connection to close
        checkpoints the whole log into the database file)."""
        if self._closed:
            return
        self._closed = True
        self._stop_checkpoints.set()
        await anyio.to_thread.run_sync(self._checkpointer.join)
        await self._await(
            _Job(asyncio.get_running_loop(), work=lambda conn: conn.close(), last=True)
        )

    def __repr__(self) -> str:
        return f"SqliteStore({self._where!r})"

"""The event log in PostgreSQL: for several nodes that share one contact center.

Driver: psycopg 3 (async). It runs on anyio's asyncio backend, speaks libpq (so every
DSN option, service file, TLS mode and keepalive setting works as in psql), and gives
LISTEN/NOTIFY on an ordinary connection, which the cluster (omniroute.cluster) uses.

Durability: `append` returns after PostgreSQL committed the transaction that holds its
events (the server's `synchronous_commit` decides what "committed" means; keep it `on`).

Group commit: appends that arrive while one is being written wait and go together in
the next transaction, one statement and one round trip whatever its size; the first of
them writes it, so no append waits for more than the transaction before its own.

One writer: sequence numbers are assigned here, from the last one in the table; a second
writer appending to the same log makes the next append fail on the primary key rather
than interleave. In a cluster the store is also *fenced*: `fence(epoch)` makes every
append check, in its own transaction, that the leadership epoch is still that one, so
a deposed leader cannot write after another took over (see docs/cluster.md).

Schema: every table lives in one PostgreSQL schema (`schema=`, default "omniroute");
`schema_version` records the migrations applied, in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, LiteralString

import anyio
import psycopg
from psycopg import sql

from .. import events as ev
from .base import SchemaError, StoreError

__all__ = ["LATEST", "MIGRATIONS", "FencedError", "PostgresStore"]

#: Events fetched per query when reading.
READ_PAGE = 10_000

#: Step N (1-based) takes a schema from version N-1 to N, in one transaction. `{s}` is
#: the schema. A release that changes the schema appends a step, never edits one.
MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        # `data` is `json`, not `jsonb`: stored verbatim as omniroute.events.encode wrote
        # it (reads need no re-encoding, a "\u0000" in a message is accepted), while SQL
        # can still look inside (data->>'interaction_id'). `at` and `type` are copies
        # for export, retention and analysis.
        "CREATE TABLE {s}.events (seq bigint PRIMARY KEY, at double precision NOT NULL,"
        " type text NOT NULL, data json NOT NULL)",
        "CREATE INDEX events_at ON {s}.events USING brin (at)",
        "CREATE TABLE {s}.snapshots (seq bigint PRIMARY KEY, data bytea NOT NULL,"
        " saved_at timestamptz NOT NULL DEFAULT now())",
        # One row: the leadership epoch. A node that takes the advisory lock increments
        # it; appends of a fenced store check it (FOR SHARE, so a takeover waits for an
        # append in flight and the new leader then reads it).
        "CREATE TABLE {s}.leader (id int PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL,"
        " node text, since timestamptz)",
        "INSERT INTO {s}.leader VALUES (1, 0, NULL, NULL)",
        """CREATE FUNCTION {s}.check_epoch(expected bigint) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE current bigint;
        BEGIN
            SELECT epoch INTO current FROM {s}.leader WHERE id = 1 FOR SHARE;
            IF current IS DISTINCT FROM expected THEN
                RAISE EXCEPTION 'leadership epoch % was superseded by epoch %',
                    expected, current USING ERRCODE = 'OR001';
            END IF;
            RETURN current;
        END $$""",
        # Commands forwarded by nodes that do not route: the leader claims them (claimed
        # = its epoch), runs them, and records result, epoch and seq in the very
        # transaction that appends their events.
        "CREATE TABLE {s}.commands (id text PRIMARY KEY,"
        " n bigint GENERATED ALWAYS AS IDENTITY, node text NOT NULL, name text NOT NULL,"
        " args json NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
        " claimed bigint, done_at timestamptz, epoch bigint, seq bigint, result json)",
        "CREATE INDEX commands_pending ON {s}.commands (n) WHERE done_at IS NULL",
        # Small facts the store keeps about itself (how far retention got).
        "CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
    ),
)
LATEST = len(MIGRATIONS)

_FENCED = "OR001"
#: Marks commands done (with their results) in the statement that appends their events.
_FINISH: LiteralString = (
    "fin AS (UPDATE {s}.commands c SET done_at = now(), result = r.res::json,"
    " epoch = %(epoch)s, seq = %(last)s"
    " FROM unnest(%(ids)b::text[], %(results)b::text[]) AS r(id, res)"
    " WHERE c.id = r.id AND c.done_at IS NULL RETURNING c.id)"
)
#: Tells waiting nodes which commands are done: their ids, comma-separated, or "*"
#: (look at all of yours) when they would not fit in a NOTIFY payload.
_NOTIFY_FINISHED: LiteralString = (
    "(SELECT count(*) FROM fin), pg_notify(%(done)s, (SELECT CASE WHEN sum(length(id) + 1)"
    " < 7900 THEN string_agg(id, ',') ELSE '*' END FROM fin))"
)


class FencedError(StoreError):
    """Another node took routing leadership: this one must stop writing."""


class PostgresStore:
    """The event log in PostgreSQL at `dsn` (a libpq URI or key=value string).

    Options (keyword-only; `[store]` may give them):

    * `schema`: the PostgreSQL schema holding omniroute's tables (created if missing).
      Several contact centers, or test runs, can share a database with different schemas.
    * `migrate`: upgrade an older schema on first use, as `omniroute store migrate`
      does. Without it an older schema raises SchemaError; an empty one is always
      created; a newer one always raises SchemaError naming both versions.
    * `connect_timeout`: seconds to wait for the server before StoreError.

    Connections are opened on first use (the constructor does no I/O): one for writes,
    one for reads. Use `await store.connect()` to check the database early.
    """

    def __init__(
        self,
        *,
        dsn: str,
        schema: str = "omniroute",
        migrate: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        if not schema or len(schema.encode()) > 63:
            raise StoreError(
                f"store.schema: {schema!r} must have 1 to 63 bytes (a PostgreSQL name)"
            )
        self.dsn = dsn
        self.schema = schema
        self.migrate_on_open = migrate
        self.connect_timeout = connect_timeout
        #: The schema version found before this store migrated it (set by `connect`).
        self.migrated_from: int | None = None
        #: Transactions that appended events (group commits), for figures.
        self.commits = 0
        self._s = sql.Identifier(schema)
        self._writer: psycopg.AsyncConnection[Any] | None = None
        self._reader: psycopg.AsyncConnection[Any] | None = None
        self._connect_lock = anyio.Lock()
        self._write_lock = anyio.Lock()
        self._read_lock = anyio.Lock()
        self._closed = False
        self._queue: list[_Batch] = []
        self._writing = False  # an append is writing; later ones wait to ride along
        self._last: int | None = None  # last seq written, None: read it from the table
        self._epoch: int | None = None
        self._results: list[tuple[str, bytes, ev.Event]] = []

    # ------------------------------------------------------------------ names

    def table(self, name: str) -> sql.Composed:
        """`schema.name`, quoted, for SQL built elsewhere (the cluster's)."""
        return sql.SQL("{}.{}").format(self._s, sql.Identifier(name))

    def channel(self, name: str) -> str:
        """The NOTIFY channel `name` of this schema (its events, commands, results);
        a channel is a PostgreSQL name, so a long schema is named by its hash."""
        channel = f"omniroute.{self.schema}.{name}"
        if len(channel.encode()) <= 63:
            return channel
        return (
            f"omniroute.{hashlib.blake2b(self.schema.encode(), digest_size=12).hexdigest()}.{name}"
        )

    @property
    def lock_key(self) -> int:
        """The advisory lock key of routing leadership over this schema's log."""
        digest = hashlib.blake2b(f"omniroute:{self.schema}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def _sql(self, text: LiteralString, **names: sql.Composable) -> sql.Composed:
        return sql.SQL(text).format(s=self._s, **names)

    # ------------------------------------------------------------------ connections

    async def open_connection(self) -> psycopg.AsyncConnection[Any]:
        """A new autocommit connection to the store's database (the caller closes it)."""
        try:
            return await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
            )
        except psycopg.Error as exc:
            raise StoreError(f"store.dsn: cannot connect to PostgreSQL: {exc}") from None

    async def connect(self) -> None:
        """Open the connections and check (or create, or migrate) the schema."""
        self._check_open()
        if self._writer is not None and not self._writer.closed:
            return
        async with self._connect_lock:
            if self._writer is not None and not self._writer.closed:
                return
            conn = await self.open_connection()
            try:
                before, _ = await _migrate(conn, self.schema, self.migrate_on_open)
            except BaseException:
                await conn.close()
                raise
            self.migrated_from = before
            self._writer = conn
            self._last = None

    async def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema; (version before, version after)."""
        self._check_open()
        conn = await self.open_connection()
        try:
            return await _migrate(conn, self.schema, True)
        finally:
            await conn.close()

    async def _write_conn(self) -> psycopg.AsyncConnection[Any]:
        await self.connect()
        assert self._writer is not None
        return self._writer

    async def _read_conn(self) -> psycopg.AsyncConnection[Any]:
        await self.connect()
        if self._reader is None or self._reader.closed:
            self._reader = await self.open_connection()
        return self._reader

    # ------------------------------------------------------------------ fencing

    def fence(self, epoch: int | None) -> None:
        """From now on, every append checks in its transaction that the leadership epoch
        is still `epoch` (None: no check, a single node). Forgets the cached last seq
        (a new leader continues from the table) and results attached by an earlier
        leadership (their appends never came)."""
        self._epoch = epoch
        self._last = None
        self._results.clear()

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def attach_result(self, command_id: str, result: bytes, anchor: ev.Event) -> None:
        """Record that command `command_id` ended with `result` (JSON) in the append
        that stores `anchor`, the last event the command emitted, so that the command
        counts as done exactly when its events are durable."""
        self._results.append((command_id, result, anchor))

    # ------------------------------------------------------------------ the Store protocol

    async def append(self, events: Sequence[ev.Event]) -> int:
        self._check_open()
        if not events:
            return await self.last_seq()
        item = _Batch(
            [type(e).__struct_config__.tag for e in events],  # type: ignore[misc]
            [e.at for e in events],
            [ev.encode(e).decode() for e in events],
            {id(e) for e in events} if self._results else set(),
            events[-1],
        )
        self._queue.append(item)
        with anyio.CancelScope(shield=True):  # others' events may ride in our write
            if self._writing:
                await item.wake.wait()  # done, or handed the writer's role
            if not item.done:
                self._writing = True
                try:
                    async with self._write_lock:
                        batch, self._queue = self._queue, []
                        await self._write(batch)
                finally:
                    if self._queue:
                        self._queue[0].wake.set()  # the next writer: it writes what queued
                    else:
                        self._writing = False
        if item.error is not None:
            raise item.error
        return item.seq

    async def _write(self, batch: list[_Batch]) -> None:
        """Write every batch in one statement: events, commands they finish, notifies."""
        types: list[str] = []
        ats: list[float] = []
        datas: list[str] = []
        anchors: set[int] = set()
        for item in batch:
            types += item.types
            ats += item.ats
            datas += item.datas
            anchors |= item.ids
            anchors.add(id(item.last))
        done = [r for r in self._results if id(r[2]) in anchors]
        if done:
            self._results = [r for r in self._results if id(r[2]) not in anchors]
        try:
            conn = await self._write_conn()
            if self._last is None:
                self._last = await _scalar(conn, self._sql("SELECT max(seq) FROM {s}.events"))
            first = self._last + 1
            last = self._last + len(datas)
            await conn.execute(
                self._append_sql(bool(done)),
                {
                    "epoch": self._epoch,
                    "first": first,
                    "type": types,
                    "at": ats,
                    "data": datas,
                    "last": last,
                    "ids": [r[0] for r in done],
                    "results": [r[1].decode() for r in done],
                    "events": self.channel("events"),
                    "done": self.channel("results"),
                    "note": str(last),
                },
            )
        except Exception as exc:
            self._last = None
            error = self._error(exc, f"append of {len(datas)} events")
            for item in batch:
                item.error = error
                item.done = True
                item.wake.set()
            return
        self._last = last
        self.commits += 1
        seq = first - 1
        for item in batch:
            seq += len(item.datas)
            item.seq = seq
            item.done = True
            item.wake.set()

    def _append_sql(self, with_results: bool) -> sql.Composed:
        body: LiteralString = (
            "ins AS (INSERT INTO {s}.events (seq, at, type, data)"
            " SELECT %(first)s + n - 1, at, type, data::json FROM unnest(%(at)b::float8[],"
            " %(type)b::text[], %(data)b::text[]) WITH ORDINALITY AS x(at, type, data, n)"
            " RETURNING seq)"
        )
        outputs: LiteralString = "(SELECT count(*) FROM ins), pg_notify(%(events)s, %(note)s)"
        if with_results:
            body += ", " + _FINISH
            outputs += ", " + _NOTIFY_FINISHED
        return self._fenced(body, outputs)

    def _fenced(self, body: LiteralString, outputs: LiteralString) -> sql.Composed:
        """`WITH body SELECT outputs`, checking the leadership epoch first when fenced.

        One statement, so one round trip and its own transaction. The check's row lock
        (FOR SHARE) makes a takeover's epoch increment wait for this statement, and the
        new leader reads the log only after that increment committed.
        """
        if self._epoch is None:
            return self._sql("WITH " + body + " SELECT " + outputs)
        return self._sql(
            "WITH fence AS (SELECT {s}.check_epoch(%(epoch)s) AS e), "
            + body
            + " SELECT "
            + outputs
            + ", (SELECT e FROM fence)"
        )

    async def finish_commands(
        self, results: Sequence[tuple[str, bytes]], *, seq: int | None = None
    ) -> None:
        """Record results of commands that emitted no event (fenced like an append);
        `seq`, when given, is the log position a caller should wait for (what a
        channel action's own commands wrote)."""
        if not results:
            return
        self._check_open()
        async with self._write_lock:
            try:
                conn = await self._write_conn()
                await conn.execute(
                    self._fenced(_FINISH, _NOTIFY_FINISHED),
                    {
                        "epoch": self._epoch,
                        "last": seq,
                        "ids": [r[0] for r in results],
                        "results": [r[1].decode() for r in results],
                        "done": self.channel("results"),
                    },
                )
            except Exception as exc:
                raise self._error(exc, f"recording {len(results)} command results") from None

    async def read(self, since: int = 0) -> AsyncIterator[tuple[int, ev.Event]]:
        """Events above `since` up to the last one stored when the call began.

        Pages are ranges of sequence numbers (the writer numbers without gaps), not
        LIMITs: each query touches only its own rows, whatever the table statistics.
        """
        end = await self.last_seq()
        query = self._sql(
            "SELECT seq, data::text FROM {s}.events WHERE seq > %s AND seq <= %s ORDER BY seq"
        )
        after = max(since, 0)
        decode = ev.decode
        while after < end:
            upto = min(after + READ_PAGE, end)
            rows = await self._fetch(query, (after, upto), f"reading events after {after}")
            for seq, data in rows:
                yield seq, decode(data)
            after = upto

    async def last_seq(self) -> int:
        rows = await self._fetch(
            self._sql("SELECT max(seq) FROM {s}.events"), (), "reading the last sequence number"
        )
        return int(rows[0][0] or 0)

    async def save_snapshot(self, seq: int, data: bytes) -> None:
        self._check_open()
        async with self._write_lock:
            try:
                conn = await self._write_conn()
                async with conn.transaction():
                    last = await _scalar(conn, self._sql("SELECT max(seq) FROM {s}.events"))
                    if not 0 <= seq <= last:
                        raise StoreError(f"snapshot after event {seq}, but the log ends at {last}")
                    await conn.execute(
                        self._sql(
                            "INSERT INTO {s}.snapshots (seq, data) VALUES (%s, %s)"
                            " ON CONFLICT (seq) DO UPDATE SET data = excluded.data,"
                            " saved_at = now()"
                        ),
                        (seq, bytes(data)),
                    )
                    await conn.execute(
                        self._sql("DELETE FROM {s}.snapshots WHERE seq < %s"), (seq,)
                    )
            except StoreError:
                raise
            except Exception as exc:
                raise self._error(exc, f"saving a snapshot after event {seq}") from None

    async def load_snapshot(self) -> tuple[int, bytes] | None:
        rows = await self._fetch(
            self._sql("SELECT seq, data FROM {s}.snapshots ORDER BY seq DESC LIMIT 1"),
            (),
            "loading the snapshot",
        )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def purge(self, before: float) -> int:
        """Replace message bodies of events that happened before `before` with markers,
        as omniroute.store.retention says; return how many events changed.

        Pages of READ_PAGE events, each rewritten in its own short statement, so appends
        are not held up; remembers how far it got, so a daily purge reads only the new
        day's events. Safe to interrupt and to run on any node: purging is idempotent.
        """
        # Imported here: retention (shared by every store) comes with the SQLite store.
        from .retention import PURGEABLE_TAGS, purge_bodies

        self._check_open()
        done = await self._meta("purged_before")
        since = float(done) if done is not None else float("-inf")
        end = await self.last_seq()
        # Start just before the first event an earlier run did not cover.
        rows = await self._fetch(
            self._sql("SELECT min(seq) FROM {s}.events WHERE at >= %s"), (since,), "purging"
        )
        after = end if rows[0][0] is None else int(rows[0][0]) - 1
        select = self._sql(
            "SELECT seq, data::text FROM {s}.events WHERE seq > %s AND seq <= %s"
            " AND type = ANY(%s) AND at < %s AND at >= %s"
        )
        update = self._sql(
            "UPDATE {s}.events e SET data = u.data::json"
            " FROM unnest(%b::int8[], %b::text[]) AS u(seq, data) WHERE e.seq = u.seq"
        )
        changed = 0
        while after < end:
            upto = min(after + READ_PAGE, end)
            rows = await self._fetch(
                select, (after, upto, list(PURGEABLE_TAGS), before, since), "purging"
            )
            after = upto
            seqs: list[int] = []
            datas: list[str] = []
            for seq, data in rows:
                purged = purge_bodies(ev.decode(data))
                if purged is not None:
                    seqs.append(seq)
                    datas.append(ev.encode(purged).decode())
            if seqs:
                await self._execute(update, (seqs, datas), f"purging {len(seqs)} events")
                changed += len(seqs)
        if before > since:
            await self._execute(
                self._sql(
                    "INSERT INTO {s}.meta (key, value) VALUES ('purged_before', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (repr(float(before)),),
                "remembering how far retention got",
            )
        return changed

    async def _meta(self, key: str) -> str | None:
        rows = await self._fetch(
            self._sql("SELECT value FROM {s}.meta WHERE key = %s"), (key,), f"reading {key}"
        )
        return str(rows[0][0]) if rows else None

    async def _fetch(self, query: sql.Composed, params: Any, doing: str) -> list[Any]:
        """The rows of one query on the reader connection."""
        self._check_open()
        # Shielded: a query cancelled half-way would leave the connection unusable (a
        # follower's tail is cancelled when its node starts leading).
        with anyio.CancelScope(shield=True):
            async with self._read_lock:
                try:
                    conn = await self._read_conn()
                    cur = await conn.execute(query, params, prepare=True)
                    return await cur.fetchall()
                except Exception as exc:
                    raise self._error(exc, doing) from None

    async def _execute(self, query: sql.Composed, params: Any, doing: str) -> None:
        """One statement on the writer connection, between appends."""
        async with self._write_lock:
            try:
                conn = await self._write_conn()
                await conn.execute(query, params)
            except Exception as exc:
                raise self._error(exc, doing) from None

    async def close(self) -> None:
        self._closed = True
        for conn in (self._writer, self._reader):
            if conn is not None:
                with anyio.CancelScope(shield=True):
                    await conn.close()
        self._writer = self._reader = None

    # ------------------------------------------------------------------ errors

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the postgres store (schema {self.schema!r}) is closed")

    def _error(self, exc: Exception, doing: str) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, psycopg.Error) and exc.sqlstate == _FENCED:
            diag = exc.diag.message_primary or str(exc)
            return FencedError(f"{doing} refused: {diag}; another node routes now")
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return StoreError(
                f"{doing} failed: its sequence numbers are taken, so another process "
                f"writes to schema {self.schema!r} too (only one may: the routing leader)"
            )
        return StoreError(f"{doing} failed in PostgreSQL (schema {self.schema!r}): {exc}")


class _Batch:
    """One `append` call waiting for (or done by) a group commit."""

    __slots__ = ("ats", "datas", "done", "error", "ids", "last", "seq", "types", "wake")

    def __init__(
        self, types: list[str], ats: list[float], datas: list[str], ids: set[int], last: ev.Event
    ) -> None:
        self.types = types
        self.ats = ats
        self.datas = datas
        self.ids = ids
        self.last = last
        self.done = False
        self.wake = anyio.Event()
        self.seq = 0
        self.error: StoreError | None = None


async def _scalar(conn: psycopg.AsyncConnection[Any], query: sql.Composed) -> int:
    cur = await conn.execute(query)
    row = await cur.fetchone()
    return int(row[0] or 0) if row else 0


# ---------------------------------------------------------------------- schema versions


async def schema_version(conn: psycopg.AsyncConnection[Any], schema: str) -> int:
    """The schema version of omniroute's tables in `schema`; 0 when there are none.

    Raises SchemaError when the schema holds tables but not omniroute's.
    """
    cur = await conn.execute(
        "SELECT to_regclass(format('%%I.schema_version', %s::text)),"
        " (SELECT count(*) FROM pg_tables WHERE schemaname = %s)",
        (schema, schema),
    )
    row = await cur.fetchone()
    assert row is not None
    versions, tables = row
    if versions is None:
        if tables:
            raise SchemaError(
                f"PostgreSQL schema {schema!r} holds {tables} tables but no omniroute "
                "schema_version: it is not omniroute's; choose another [store] schema"
            )
        return 0
    cur = await conn.execute(
        sql.SQL("SELECT max(version) FROM {}.schema_version").format(sql.Identifier(schema))
    )
    row = await cur.fetchone()
    return int(row[0] or 0) if row else 0


async def _migrate(
    conn: psycopg.AsyncConnection[Any], schema: str, upgrade: bool
) -> tuple[int, int]:
    """Check the schema; create it when empty, upgrade it when `upgrade`.

    Nodes that start together serialise here on a transaction-scoped advisory lock.
    """
    s = sql.Identifier(schema)
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"omniroute-migrate:{schema}",),
        )
        before = await schema_version(conn, schema)
        where = f"PostgreSQL schema {schema!r}"
        if before > LATEST:
            raise SchemaError(
                f"{where} has omniroute schema version {before}, newer than this omniroute "
                f"knows (version {LATEST}): upgrade omniroute"
            )
        if 0 < before < LATEST and not upgrade:
            raise SchemaError(
                f"{where} has omniroute schema version {before}, older than this "
                f"omniroute's (version {LATEST}): run `omniroute store migrate`"
            )
        if before == 0:
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE {}.schema_version (version int PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(s)
            )
        for number in range(before + 1, LATEST + 1):
            for statement in MIGRATIONS[number - 1]:
                await conn.execute(sql.SQL(statement).format(s=s))
            await conn.execute(
                sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(s),
                (number,),
            )
    return before, max(before, LATEST)

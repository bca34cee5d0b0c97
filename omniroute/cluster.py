"""Several omniroute nodes on one PostgreSQL database: one routes, every one serves.

* Every node runs one `App` (channels, web API, live events) whose role is follower or
  leader. A follower's App keeps a read model from the committed log (`tail`) and sends
  its commands to the leader.
* Leadership: each node that may route campaigns for a PostgreSQL advisory lock, held by
  a session of its own (`pg_try_advisory_lock`). The holder increments the leadership
  epoch, fences its store to that epoch, promotes its App (`App.lead`: rebuilt from the
  snapshot and the log) and routes. When its session ends (the process died, the
  network went away) PostgreSQL releases the lock and another node takes it.
* Fencing: every append of the leader checks, in its own statement, that the epoch is
  still its own (see omniroute.store.postgres), so a deposed leader cannot write once a
  new one has taken over; the new leader reads the log only after its increment.
* Commands from any node: `Node` has the command methods of `App`. On the leader they
  run on its App; elsewhere they go into the `commands` table (NOTIFY wakes the
  leader), the leader runs them and records the result in the transaction that appends
  their events, and the caller wakes on a NOTIFY (or polls) and returns that result.
  A command counts as done exactly when its events are durable, so a command written
  before a failover runs exactly once: by the old leader if its append committed, else
  by the new one.
* Channel actions (`App.channel_call`, omniroute.actions) of a leader-only channel take
  the same way (`relay`), and run on the leader's channel; having no event of their
  own, they are at least once: a leader that dies mid-action leaves it to the next.

Timing here is about the network, not routing: it uses anyio's sleep, not the Clock.
docs/cluster.md explains the guarantees and their limits.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, get_type_hints

import anyio
import anyio.abc
import msgspec
import psycopg

from . import events as ev
from . import native
from .actions import PREFIX, decode_outcome
from .app import App
from .clock import Clock
from .config import Config, ConfigError, from_dict
from .plugins import PluginHost
from .router.core import Router, RouterError
from .store.base import StoreError
from .store.postgres import PostgresStore

__all__ = ["COMMANDS", "CommandError", "CommandTimeout", "Leadership", "Node"]

logger = logging.getLogger("omniroute.cluster")

#: The App commands a node forwards to the leader.
COMMANDS = (
    "submit",
    "start_outbound",
    "accept",
    "decline",
    "complete",
    "end_wrap_up",
    "abandon",
    "transfer",
    "hand_over",
    "requeue",
    "assign",
    "request_callback",
    "set_presence",
    "upsert_agent",
    "remove_agent",
    "upsert_queue",
    "remove_queue",
    "add_message",
    "add_note",
    "link_customer",
)

#: Errors a forwarded command may end with that the caller gets back as themselves.
_ERRORS: dict[str, type[Exception]] = {
    "RouterError": RouterError,
    "ValidationError": ValueError,
    "ValueError": ValueError,
    "TypeError": TypeError,
}


class CommandError(Exception):
    """The leader ran a forwarded command and it failed in an unexpected way."""


class CommandTimeout(StoreError):
    """No result for a forwarded command in time. `withdrawn` says whether it was taken
    back unexecuted (safe to retry) or was already taken by a leader (it will run)."""

    def __init__(self, message: str, *, withdrawn: bool) -> None:
        super().__init__(message)
        self.withdrawn = withdrawn


class Leadership(msgspec.Struct, frozen=True):
    """Who routes: the epoch (incremented at each takeover), the node, since when."""

    epoch: int
    node: str | None
    since: float | None


class Node:
    """One omniroute process of a cluster sharing the PostgreSQL store at `dsn`.

    Run it (`await tg.start(node.run)` or `async with node.running():`); then call the
    command methods (`submit`, `accept`... as on App) whether it leads or not. `app` is
    this node's App, running in either role (`is_leader` says which); serve it (web
    API, channels) on every node. `tail()` follows the event log from any node.

    `lead=False` makes a node that never routes (a web or channel front end).
    `election_interval` is how often a follower tries the lock and the leader checks its
    session; `command_timeout` bounds a forwarded command; `poll_interval` is the
    fallback when a NOTIFY is missed.
    """

    def __init__(
        self,
        config: Config,
        *,
        dsn: str,
        schema: str = "omniroute",
        name: str | None = None,
        lead: bool = True,
        election_interval: float = 0.5,
        command_timeout: float = 10.0,
        poll_interval: float = 1.0,
        migrate: bool = False,
        host: PluginHost | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.store = PostgresStore(dsn=dsn, schema=schema, migrate=migrate)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lead = lead
        self.election_interval = election_interval
        self.command_timeout = command_timeout
        self.poll_interval = poll_interval
        self.host = host
        self.clock = clock
        #: This node's App: a follower, or the leader while this node leads.
        self.app = App(config, store=self.store, host=host, clock=clock, cluster=self)
        #: Wall-clock time when this node last started routing (App running, commands
        #: taken), for takeover measurements.
        self.leading_since: float | None = None
        self._control: psycopg.AsyncConnection[Any] | None = None
        self._control_lock = anyio.Lock()
        self._waiters: dict[str, anyio.Event] = {}
        self._commands_ready = anyio.Event()
        self._events_ready = anyio.Event()
        self._on_lead: list[Callable[[Node], None]] = []
        # Transient events (typing) on their way to every node; dropped when too many wait.
        self._to_announce, self._announcing = anyio.create_memory_object_stream[bytes](100)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Node:
        return cls(from_dict(data), **kwargs)

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> Node:
        """A node on the database `[store]` names (`backend = "postgres"`, `dsn`, and
        optionally `schema`); `options` are the other Node options."""
        section = dict(config.store or {})
        if section.get("backend") != "postgres" or not section.get("dsn"):
            raise ConfigError(
                ['store: several nodes need backend = "postgres" and a dsn in [store]']
            )
        return cls(config, dsn=section["dsn"], schema=section.get("schema", "omniroute"), **options)

    def on_lead(self, callback: Callable[[Node], None]) -> None:
        """Call `callback(node)` each time this node starts routing."""
        self._on_lead.append(callback)

    # ------------------------------------------------------------------ lifecycle

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen for notifications, campaign for leadership (unless `lead=False`) and
        route while leading, until cancelled."""
        try:
            await self.store.connect()
            self._control = await self.store.open_connection()
            async with anyio.create_task_group() as tg:
                await tg.start(self._listen)
                tg.start_soon(self._announce)
                await tg.start(self.app.run)  # a follower until it leads
                if self.lead:
                    tg.start_soon(self._campaign)
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                if self._control is not None:
                    await self._control.close()
                await self.store.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        async with anyio.create_task_group() as tg:
            await tg.start(self.run)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    @property
    def is_leader(self) -> bool:
        return self.app.role == "leader"

    async def leadership(self) -> Leadership:
        """The leadership row: the current epoch and the node that took it."""
        row = await self._query(
            "SELECT epoch, node, extract(epoch FROM since) FROM {leader} WHERE id = 1", {}
        )
        epoch, node, since = row[0]
        return Leadership(int(epoch), node, None if since is None else float(since))

    # ------------------------------------------------------------------ leadership

    async def _campaign(self) -> None:
        """Try the lock every `election_interval`; lead while holding it; start over
        when leading ends (lost session, fenced store, failed restore)."""
        while True:
            try:
                conn = await self._lock_session()
            except StoreError as exc:
                logger.warning("node %s cannot reach PostgreSQL to campaign: %s", self.name, exc)
                await anyio.sleep(self.election_interval)
                continue
            try:
                while not await _scalar(
                    conn, "SELECT pg_try_advisory_lock(%s)", (self.store.lock_key,)
                ):
                    await anyio.sleep(self.election_interval)
                epoch = await _scalar(
                    conn,
                    psycopg.sql.SQL(
                        "UPDATE {} SET epoch = epoch + 1, node = %s, since = now()"
                        " WHERE id = 1 RETURNING epoch"
                    ).format(self.store.table("leader")),
                    (self.name,),
                )
                await self._lead(conn, epoch)
            except* (psycopg.Error, StoreError, _LostLeadership) as group:
                logger.warning("node %s stops leading or campaigning: %s", self.name, group)
            finally:
                with anyio.CancelScope(shield=True):
                    await conn.close()  # releases the lock if held
            await anyio.sleep(self.election_interval)

    async def _lock_session(self) -> psycopg.AsyncConnection[Any]:
        """The dedicated session that holds the advisory lock. The server's TCP
        keepalives are short so that PostgreSQL notices a vanished leader within ~5 s
        and releases its lock."""
        conn = await self.store.open_connection()
        try:
            for setting in (
                "SET application_name = 'omniroute leadership'",
                "SET tcp_keepalives_idle = 2",
                "SET tcp_keepalives_interval = 1",
                "SET tcp_keepalives_count = 2",
                "SET tcp_user_timeout = 4000",
            ):
                await conn.execute(setting)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            await conn.close()
            raise StoreError(f"cannot set up the leadership session: {exc}") from None
        return conn

    async def _lead(self, conn: psycopg.AsyncConnection[Any], epoch: int) -> None:
        """Route until the lock session fails or an append is fenced (the App follows
        again then)."""
        self.store.fence(epoch)
        logger.info("node %s leads (epoch %d): rebuilding routing from the log", self.name, epoch)
        async with anyio.create_task_group() as tg:
            await tg.start(self.app.lead)
            tg.start_soon(self._watch, conn)
            await tg.start(self._execute_commands, self.app, epoch)
            self.leading_since = time.time()
            for callback in self._on_lead:
                callback(self)

    async def _watch(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Check the lock session every `election_interval`; raise once it is gone."""
        while True:
            await anyio.sleep(self.election_interval)
            try:
                with anyio.fail_after(max(2.0, 4 * self.election_interval)):
                    await conn.execute("SELECT 1")
            except (psycopg.Error, TimeoutError) as exc:
                raise _LostLeadership(f"the leadership session failed: {exc!r}") from None

    # ------------------------------------------------------------------ executing

    async def _execute_commands(
        self,
        app: App,
        epoch: int,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Claim pending commands (those of a previous leader too) in their order and
        run each as its own task, so that concurrent ones share group commits."""
        claim = (
            "UPDATE {commands} SET claimed = %(epoch)s WHERE done_at IS NULL"
            " AND (claimed IS NULL OR claimed < %(epoch)s) RETURNING n, id, name, args::text"
        )
        async with anyio.create_task_group() as tg:
            started = False
            while True:
                self._commands_ready = anyio.Event()
                rows = await self._query(claim, {"epoch": epoch})
                for _, cid, name, args in sorted(rows):
                    tg.start_soon(self._execute, app, cid, name, args)
                if not started:
                    task_status.started()
                    started = True
                with anyio.move_on_after(self.poll_interval):
                    await self._commands_ready.wait()

    async def _execute(self, app: App, cid: str, name: str, args: str) -> None:
        if name.startswith(PREFIX):
            await self._execute_action(app, cid, args)
            return
        store = self.store
        outcome: list[bytes] = []

        def run() -> None:
            """The router call, and its result attached to its last event, in one step."""
            try:
                outcome.append(_ok(_bind(app.router, name, args)()))
            except Exception as exc:
                outcome.append(_error(exc))
            outbox = app.router.outbox
            if outbox:
                store.attach_result(cid, outcome[0], outbox[-1])
                outcome.append(b"attached")

        try:
            await app._here(run)  # durable when it returns, like App's own commands
        except (StoreError, RuntimeError) as exc:
            # The app stops (fenced, store down): the command stays pending unless its
            # append committed, and the next leader runs it then.
            logger.info("node %s could not finish command %s: %s", self.name, cid, exc)
            return
        if len(outcome) == 1:  # no event: nothing changed, record the result alone
            await store.finish_commands([(cid, outcome[0])])

    async def _execute_action(self, app: App, cid: str, args: str) -> None:
        """A channel action relayed from a node: run where the channel runs (this
        leader), then its outcome recorded. Not tied to an append: if this node stops
        leading before the outcome is recorded, the next leader runs it again."""
        outcome = await app.run_action(args)
        try:
            await self.store.finish_commands([(cid, outcome)], seq=app.seq or None)
        except StoreError as exc:
            logger.info("node %s could not record action %s: %s", self.name, cid, exc)

    # ------------------------------------------------------------------ commands

    async def command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run App command `name` on the leader (the App sends it there unless this node
        leads). Returns what App returns; raises what it raises."""
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
        return await getattr(self.app, name)(*args, **kwargs)

    async def forward(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        key: str | None = None,
    ) -> tuple[Any, int | None]:
        """Run router command `name` on the leader through the commands table; its result
        and the sequence number its events reached (None if it wrote none). Raises the
        command's error as itself, or CommandTimeout (a StoreError).

        `key` is the command's id: a command sent again with the same key (a retry after
        a failover, a lost answer) runs once, and every sending answers its result. The
        command id also makes this method's own retries (a connection lost while writing
        the command) harmless.
        """
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
        encoded = msgspec.json.encode({"args": args, "kwargs": kwargs}).decode()
        text, seq = await self._roundtrip(name, encoded, key)
        return _result(name, text), seq

    async def relay(
        self, name: str, args: bytes, *, key: str | None = None
    ) -> tuple[bytes, int | None]:
        """Run a channel action (`name` "channel:CHANNEL.ACTION", `args` its encoded
        call) on the leader through the commands table, as `forward` runs a command
        (keys, retries, CommandTimeout alike); its encoded outcome (omniroute.actions)
        and the log position to wait for. The leader hands `args` to `App.run_action`."""
        if not name.startswith(PREFIX):
            raise ValueError(f"not a channel action: {name!r}")
        text, seq = await self._roundtrip(name, args.decode(), key)
        return text.encode(), seq

    async def _roundtrip(self, name: str, encoded: str, key: str | None) -> tuple[str, int | None]:
        """Write command `name` (id `key`, or a new one), wake the leader, wait for its
        result; the result's JSON text and its sequence number."""
        cid = key if key is not None else uuid.uuid4().hex
        waiter = self._waiters[cid] = anyio.Event()
        deadline = anyio.current_time() + self.command_timeout
        try:
            sent = await self._retrying(deadline, self._send, cid, name, encoded)
            if sent is None or sent != (name, encoded):
                if sent is None:
                    raise await self._give_up(cid, name)
                raise RouterError(
                    f"{name}: the key {cid!r} was used for another command ({sent[0]});"
                    " use a new key for a new request"
                )
            while True:
                left = deadline - anyio.current_time()
                with anyio.move_on_after(min(self.poll_interval, max(left, 0))):
                    await waiter.wait()
                waiter = self._waiters[cid] = anyio.Event()
                rows = await self._retrying(
                    deadline,
                    self._query,
                    "SELECT result::text, seq FROM {commands}"
                    " WHERE id = %(id)s AND done_at IS NOT NULL",
                    {"id": cid},
                )
                if rows:
                    return rows[0][0], rows[0][1]
                if anyio.current_time() >= deadline:
                    raise await self._give_up(cid, name)
        finally:
            self._waiters.pop(cid, None)

    async def recall(self, key: str) -> tuple[Any] | None:
        """The result of the command done under id `key`, in a 1-tuple (raised if it
        was an error); None if there is none, or it is not done."""
        rows = await self._query(
            "SELECT name, result::text FROM {commands} WHERE id = %(id)s AND done_at IS NOT NULL",
            {"id": key},
        )
        if not rows:
            return None
        name, text = rows[0]
        return (decode_outcome(text, name) if name.startswith(PREFIX) else _result(name, text),)

    async def _send(self, cid: str, name: str, args: str) -> tuple[str, str]:
        """Write the command (unless a command of that id is there already) and wake the
        leader; answers the name and arguments of the command stored under `cid`."""
        rows = await self._query(
            "WITH c AS (INSERT INTO {commands} (id, node, name, args)"
            " VALUES (%(id)s, %(node)s, %(name)s, %(args)s)"
            " ON CONFLICT (id) DO NOTHING RETURNING id)"
            " SELECT pg_notify(%(channel)s, (SELECT id FROM c)),"
            " (SELECT id FROM c) IS NOT NULL",
            {
                "id": cid,
                "node": self.name,
                "name": name,
                "args": args,
                "channel": self.store.channel("commands"),
            },
        )
        if rows[0][1]:
            return name, args
        stored = await self._query(
            "SELECT name, args::text FROM {commands} WHERE id = %(id)s", {"id": cid}
        )
        return (stored[0][0], stored[0][1]) if stored else ("", "")

    async def _retrying(self, deadline: float, call: Callable[..., Any], *args: Any) -> Any:
        """`await call(*args)`, again after a StoreError (PostgreSQL unreachable for a
        moment) until `deadline`; None if it never succeeded."""
        while True:
            try:
                return await call(*args)
            except CommandTimeout:
                raise
            except StoreError as exc:
                if anyio.current_time() + self.poll_interval > deadline:
                    logger.warning("node %s: giving up on PostgreSQL: %s", self.name, exc)
                    return None
                await anyio.sleep(self.poll_interval)

    async def _give_up(self, cid: str, name: str) -> CommandTimeout:
        try:
            withdrawn = await self._query(
                "DELETE FROM {commands} WHERE id = %(id)s AND claimed IS NULL RETURNING id",
                {"id": cid},
            )
        except StoreError:
            withdrawn = []  # unknown: it may have been written, and may run
        if withdrawn:
            return CommandTimeout(
                f"{name}: no routing leader took the command within {self.command_timeout}s;"
                " it was withdrawn and not executed (safe to retry)",
                withdrawn=True,
            )
        return CommandTimeout(
            f"{name}: no result within {self.command_timeout}s; the command may run once,"
            " later (retry it only with the same key)",
            withdrawn=False,
        )

    # ------------------------------------------------------------------ reading

    async def tail(self, since: int = 0) -> AsyncIterator[tuple[int, ev.Event]]:
        """Every event above `since`, then each new one as it is committed, forever
        (from any node: a NOTIFY per append wakes it, polling covers a missed one)."""
        while True:
            ready = self._events_ready
            async for seq, event in self.store.read(since):
                yield seq, event
                since = seq
            with anyio.move_on_after(self.poll_interval):
                await ready.wait()

    # ------------------------------------------------------------------ notifications

    async def _listen(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """One session LISTENs to the schema's channels and wakes whoever waits; it
        reconnects after a failure (polling covers the gap)."""
        kinds = ("commands", "results", "events", "live")
        channels = {self.store.channel(name): name for name in kinds}
        started = False
        while True:
            try:
                conn = await self.store.open_connection()
            except StoreError as exc:
                logger.warning("node %s cannot listen: %s", self.name, exc)
                await anyio.sleep(self.poll_interval)
                continue
            try:
                for channel in channels:
                    await conn.execute(
                        psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel))
                    )
                if not started:
                    task_status.started()
                    started = True
                self._wake_waiters("*")
                async for note in conn.notifies():
                    kind = channels.get(note.channel)
                    if kind == "results":
                        self._wake_waiters(note.payload)
                    elif kind == "commands":
                        self._commands_ready.set()
                    elif kind == "events":
                        self._events_ready.set()
                        self._events_ready = anyio.Event()
                    elif kind == "live":
                        self._announced(note.payload)
            except psycopg.Error as exc:
                logger.warning("node %s: the listening session failed: %s", self.name, exc)
            finally:
                with anyio.CancelScope(shield=True):
                    await conn.close()
            await anyio.sleep(self.poll_interval)

    def announce(self, event: ev.Event) -> None:
        """Send a transient event (someone typing) to every node's live subscribers,
        through a NOTIFY: best effort, dropped when PostgreSQL is slow or away."""
        try:
            self._to_announce.send_nowait(ev.encode(event))
        except anyio.WouldBlock:
            logger.debug("node %s: dropping a transient event (too many waiting)", self.name)

    async def _announce(self) -> None:
        async for data in self._announcing:
            try:
                await self._query(
                    "SELECT pg_notify(%(channel)s, %(data)s)",
                    {"channel": self.store.channel("live"), "data": data.decode()},
                )
            except StoreError as exc:
                logger.debug("node %s: a transient event was lost: %s", self.name, exc)

    def _announced(self, payload: str) -> None:
        try:
            event = _transient.decode(payload)
        except msgspec.DecodeError:
            logger.warning("node %s: a transient event not understood: %.100s", self.name, payload)
            return
        self.app.announced(event)

    def _wake_waiters(self, payload: str) -> None:
        ids = self._waiters.keys() if payload == "*" else payload.split(",")
        for cid in list(ids):
            waiter = self._waiters.get(cid)
            if waiter is not None:
                waiter.set()

    async def _query(self, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run SQL on this node's control session; `{commands}`, `{leader}` name tables."""
        query = psycopg.sql.SQL(text).format(  # type: ignore[arg-type]
            commands=self.store.table("commands"), leader=self.store.table("leader")
        )
        async with self._control_lock:
            conn = self._control
            try:
                if conn is None or conn.closed:
                    conn = self._control = await self.store.open_connection()
                cur = await conn.execute(query, params)
                return await cur.fetchall() if cur.description else []
            except psycopg.Error as exc:
                if conn is not None:
                    await conn.close()
                raise StoreError(f"node {self.name}: PostgreSQL failed: {exc}") from None


#: Transient events are not stored, so not all in `events.AnyEvent`.
_transient = msgspec.json.Decoder(ev.AnyEvent | ev.Typing)


class _LostLeadership(Exception):
    pass


async def _scalar(conn: psycopg.AsyncConnection[Any], query: Any, params: Any) -> Any:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return None if row is None else row[0]


def _bind(router: Router, name: str, args: str) -> Callable[[], Any]:
    """The router call a forwarded command asks for, its arguments decoded to the types
    the Router method declares (an Interaction, a Presence...)."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}")
    method = getattr(router, name)
    hints = _hints(name)
    data = msgspec.json.decode(args)
    bound = inspect.signature(method).bind(*data.get("args", ()), **data.get("kwargs", {}))
    for key, value in bound.arguments.items():
        bound.arguments[key] = msgspec.convert(value, hints[key])
    return lambda: method(*bound.args, **bound.kwargs)


_HINTS: dict[str, dict[str, Any]] = {}


def _hints(name: str) -> dict[str, Any]:
    if name not in _HINTS:
        _HINTS[name] = get_type_hints(native.typed(Router, name))  # compiled: from source
    return _HINTS[name]


def _ok(value: Any) -> bytes:
    return msgspec.json.encode({"ok": value})


def _error(exc: Exception) -> bytes:
    return msgspec.json.encode({"error": type(exc).__name__, "message": str(exc)})


def _result(name: str, text: str) -> Any:
    data = msgspec.json.decode(text)
    if "error" in data:
        kind = _ERRORS.get(data["error"])
        if kind is None:
            raise CommandError(f"{name}: {data['error']}: {data['message']}")
        raise kind(data["message"])
    return msgspec.convert(data["ok"], _hints(name)["return"])

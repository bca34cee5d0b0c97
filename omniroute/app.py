"""The running contact center: the router, its store, its timers, channels and observers.

The router is synchronous and does no I/O; this is the asynchronous shell around it.
A command runs the router (atomic on the event loop, so commands never interleave),
makes the events it emitted durable in the store, and only then returns, publishes them
to observers and wakes the timer loop. Observers (plugins, live subscribers) run off
the hot path: a slow or failing one never delays routing.

Writes are group commits: events join a pending list in the router's order, and
whichever command holds the write lock appends everything pending in one batch, so
the log order is the router's order and a slow store sees fewer, larger appends. A
pipelined store (SQLite) takes the next batch while earlier ones are still being
committed, and groups what queued up into one transaction itself: a command then
waits for one commit, not for the one in flight and then its own.

If an append fails, the router already holds state the log lacks; the app stops
(fail-stop) and `run` raises StoreError, so a restart rebuilds from the log.

In a cluster (several nodes on PostgreSQL, omniroute.cluster) the same App has a role.
A follower keeps a read model (a replica router that only applies the committed log, the
conversations, the live subscribers) and sends every command to the leader; the leader
routes. `lead()` promotes a follower for as long as its node holds leadership, and a
leader whose append fails goes back to following instead of stopping.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import anyio
import anyio.abc
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import events as ev
from .actions import Action, UnknownAction, encode_outcome
from .clock import Clock, RealClock
from .config import Config, ConfigError, check_queue, from_dict, validate_with_plugins
from .conversations import Conversations
from .model import (
    TERMINAL_STATES,
    Agent,
    Customer,
    Direction,
    Identity,
    Interaction,
    Message,
    Presence,
    Queue,
)
from .plugins import PluginHost
from .router.core import Router, RouterError, SnapshotError
from .specs import Channel
from .store import Purging, Store, StoreError, open_store, store_config
from .subscription import Subscription

__all__ = ["HOOKS_BY_EVENT", "App", "Cluster", "DeliveryError", "RouterError"]

logger = logging.getLogger("omniroute.app")

P = ParamSpec("P")
T = TypeVar("T")

#: The specific notification hook for an event type (every event also goes to
#: `omniroute_event`, first).
HOOKS_BY_EVENT: dict[type[ev.Event], str] = {
    ev.InteractionQueued: "omniroute_interaction_queued",
    ev.Offered: "omniroute_interaction_offered",
    ev.Assigned: "omniroute_interaction_assigned",
    ev.OutboundStarted: "omniroute_interaction_outbound",
    ev.Transferred: "omniroute_interaction_transferred",
    ev.Abandoned: "omniroute_interaction_abandoned",
    ev.Completed: "omniroute_interaction_completed",
    ev.SlaAtRisk: "omniroute_sla_at_risk",
    ev.SlaBreached: "omniroute_sla_breached",
    ev.AgentStateChanged: "omniroute_agent_state_changed",
}


#: The idempotency key of the commands run in this context, and how many took it yet.
_command_key: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "omniroute_command_key", default=None
)


class DeliveryError(Exception):
    """A channel could not deliver a message (it is stored in the conversation anyway)."""


class Cluster(Protocol):
    """What an App that follows needs from its cluster (omniroute.cluster.Node is one)."""

    async def forward(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        key: str | None = None,
    ) -> tuple[Any, int | None]:
        """Run router command `name` on the leader; its result (or its error, raised)
        and the sequence number of its last event, once that is committed. A command
        with the `key` of an earlier one is not run again: it answers that one's result."""
        ...

    def tail(self, since: int) -> AsyncIterator[tuple[int, ev.Event]]:
        """The committed events after `since`, then each new one, forever."""
        ...

    def announce(self, event: ev.Event) -> None:
        """Hand a transient event to `App.announced` of every node, this one included."""
        ...

    async def recall(self, key: str) -> tuple[Any] | None:
        """The result of the command run under `key` (raised if it was an error), in a
        1-tuple; None if none ran (yet)."""
        ...

    async def relay(
        self, name: str, args: bytes, *, key: str | None = None
    ) -> tuple[bytes, int | None]:
        """Run a channel action (`name` is "channel:CHANNEL.ACTION", `args` its
        encoded call) on the leader, which hands `args` to `App.run_action`; its
        encoded outcome and the sequence number the log had reached when it ended."""
        ...


class App:
    """One contact center: what `omniroute serve` runs, and what tests and embedders build.

    Build it, then run it once, in a task group (`await tg.start(app.run)`) or with
    `async with app.running():`. Commands are allowed while it runs. To restart, build a
    new App on the same store: it resumes from the log.

    The store passed in belongs to the caller; a store the app opened from `[store]`
    is closed by the app when it stops.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        host: PluginHost | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock if clock is not None else RealClock()
        self.host = host if host is not None else PluginHost()
        self._strategies = self.host.strategies()
        self._selectors = self.host.queue_selectors()
        sections = {name: spec.type for name, spec in self.host.config_sections().items()}
        #: Decoded `[plugins.NAME]` sections, by name (only those present in the config).
        self.plugin_config: dict[str, Any] = validate_with_plugins(
            config,
            strategies=self._strategies,
            queue_selectors=self._selectors,
            config_sections=sections,
        )
        #: The routing state. On a follower, a replica that only applies the log.
        self.router = self._new_router()
        self._cluster = cluster
        self._leading = cluster is None
        #: Sequence number of the last event this app wrote or applied (its read model).
        self.seq = 0
        self._advanced = anyio.Event()  # set (and replaced) each time `seq` moves
        self._follow_scope: anyio.CancelScope | None = None
        self._replica_stale = False  # the router is a former leader's: rebuild it
        self._term_scope: anyio.CancelScope | None = None  # a cluster leader's routing
        self._discarded: list[tuple[int, int]] = []  # staged counts lost at a demotion
        #: The decoded `[store]` table (retention and snapshot settings apply to any store).
        self.store_config = store_config(config.store)
        self._owns_store = store is None
        # A relative `[store] path` is relative to the current folder here; `serve` opens
        # the store itself, relative to the config file's folder, and passes it in.
        self.store: Store = store if store is not None else open_store(config.store)
        #: Channels started by `run`, by name.
        self.channels: dict[str, Channel] = {}
        self._leader_only: dict[str, bool] = {}
        self._actions: dict[str, dict[str, Action]] = {}  # channel -> its actions
        #: Messages and contact history, folded from durable events. After a restart
        #: from a snapshot it fills in the background (`conversations.loading`).
        self.conversations = Conversations()
        self._conversations_backlog: list[ev.Event] | None = None
        self._conversations_upto = 0

        self._started = False
        self._running = False
        self._stopped = False
        self._failure: StoreError | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        # Group commit: events staged in router order, written by whoever holds the lock.
        self._pending: list[ev.Event] = []
        self._staged = 0  # events ever staged
        self._written = 0  # events ever written
        self._writing: anyio.Event | None = None  # set when the last append in flight is done
        #: Appends may overlap (the store commits them in call order; base.Store).
        self._pipelined = bool(getattr(self.store, "pipelined", False))
        self._since_snapshot = 0  # events written after the newest routing snapshot
        # The timer loop's sleep: an event set to wake it when an earlier deadline appears.
        self._sleep: tuple[anyio.Event, float | None] | None = None
        self._to_observers: MemoryObjectSendStream[ev.Event]
        self._for_observers: MemoryObjectReceiveStream[ev.Event]
        self._to_observers, self._for_observers = anyio.create_memory_object_stream[ev.Event](
            math.inf
        )
        self._subscribers: list[MemoryObjectSendStream[ev.Event]] = []
        # New interactions whose customer a CRM plugin may know (omniroute_customer_lookup).
        self._to_lookup: MemoryObjectSendStream[Interaction]
        self._for_lookup: MemoryObjectReceiveStream[Interaction]
        self._to_lookup, self._for_lookup = anyio.create_memory_object_stream[Interaction](10_000)
        self._looks_up = bool(self.host.pm.hook.omniroute_customer_lookup.get_hookimpls())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> App:
        """An app from an already parsed config document (tests build apps this way)."""
        return cls(from_dict(data), **kwargs)

    def _new_router(self) -> Router:
        config = self.config
        return Router(
            queues=config.queues,
            agents=config.agents,
            clock=self.clock,
            strategies=self._strategies,
            selector=self._selectors[config.routing.queue_selection].factory(),
            routing=config.routing,
            plugin_config=self.plugin_config,
        )

    @property
    def role(self) -> str:
        """ "leader" (routes: always so on one node) or "follower" (a cluster node that
        reads a replica and sends commands to the leader)."""
        return "leader" if self._leading else "follower"

    # ------------------------------------------------------------------ lifecycle

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Start up, resume from the store, run channels, timers and observers until
        cancelled; then shut down. Raises StoreError if the store failed meanwhile."""
        if self._started:
            raise RuntimeError("an App runs once; build a new one on the same store to restart")
        self._started = True
        try:
            await self.host.notify("omniroute_startup", app=self)
            if self._cluster is None:
                await self._restore()
            else:
                await self._restore_replica()
            self._build_channels()
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                self._running = True
                tg.start_soon(self._observe, name="omniroute observers")
                if self._looks_up:
                    tg.start_soon(self._look_up_customers, name="omniroute customer look-ups")
                if self._conversations_backlog is not None:
                    tg.start_soon(self._load_conversations, name="omniroute conversations")
                if self._cluster is None:
                    self._start_routing(tg)
                else:
                    tg.start_soon(self._follow, name="omniroute follower")
                self._start_channels(tg, leader_only=False)
                task_status.started()
        finally:
            self._running = False
            self._stopped = True
            with anyio.CancelScope(shield=True):
                await self._shutdown()
        if self._failure is not None:
            raise self._failure

    @asynccontextmanager
    async def running(self) -> AsyncIterator[App]:
        """Run the app in a task group for the duration of the block; cancel it after.

        A lone error (from the block or from `run`) is raised as itself, not wrapped in
        the task group's ExceptionGroup.
        """
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.run)
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    def _start_routing(self, tg: anyio.abc.TaskGroup) -> None:
        """The leader's own tasks: timers, retention (and, in a cluster, the channels
        that receive on the leader only)."""
        tg.start_soon(self._timer_loop, name="omniroute timers")
        retention = self.store_config.retention_days
        if retention is not None and isinstance(self.store, Purging):
            tg.start_soon(self._retention_loop, retention, name="omniroute retention")
        if self._cluster is not None:
            self._start_channels(tg, leader_only=True)

    def _start_channels(self, tg: anyio.abc.TaskGroup, *, leader_only: bool) -> None:
        """Run the channels: on one node all of them; in a cluster, every node runs
        those that receive anywhere, and the leader those that receive on the leader
        only (`ChannelSpec.leader_only`), for as long as it leads."""
        for name, channel in self.channels.items():
            if self._cluster is None or self._leader_only[name] == leader_only:
                tg.start_soon(self._run_channel, name, channel, name=f"channel {name}")

    def _build_channels(self) -> None:
        """The adapters of the channels the config enables (`[plugins.NAME]`), built
        before any runs, so that a channel's config error stops the start as itself."""
        for name, spec in self.host.channels().items():
            if name in self.config.plugins:
                self.channels[name] = spec.factory(self.plugin_config.get(name), self)
                self._leader_only[name] = spec.leader_only
                self._actions[name] = {
                    action: Action(name, action, function)
                    for action, function in spec.actions.items()
                }

    async def _restore(self) -> None:
        """Rebuild routing state from the newest snapshot and the events after it (the
        whole log when there is no usable snapshot), then write what resuming decided
        (offers to agents freed meanwhile, timers that fell due while the app was down)."""
        events, last = await self._load(self.router, follow=False, fold=True)
        self._advance(last)
        await self._flush(self._stage(self.router.drain()))
        _note_api_queues(self.config.queues, self.router)
        # Counted after resuming's own write, so that a long replay makes the first
        # write after start-up take a snapshot, not the start-up itself.
        self._since_snapshot += len(events)

    async def _restore_replica(self) -> None:
        """A follower's start: its replica and conversations from the log, nothing written."""
        _, last = await self._load(self.router, follow=True, fold=True)
        self._advance(last)

    async def _load(
        self, router: Router, *, follow: bool, fold: bool
    ) -> tuple[list[ev.Event], int]:
        """Bring `router` to the log's state from the newest snapshot and the events after
        it (the whole log without a usable snapshot), routing (`rebuild`) or as a replica
        (`follow`); with `fold`, the conversations too. Returns the events read and
        the sequence number of the last one (the log's end)."""
        replay = router.follow if follow else router.rebuild
        snapshot = await self.store.load_snapshot()
        since = 0
        if snapshot is not None:
            since, data = snapshot
            stored = [item async for item in self.store.read(since)]
            events = [event for _, event in stored]
            try:
                replay(events, snapshot=data)
            except SnapshotError as exc:  # raised before any event applied
                logger.warning(
                    "the routing snapshot after event %d cannot be used (%s); "
                    "replaying the whole log instead",
                    since,
                    exc,
                )
                snapshot = None
        if snapshot is None:
            since = 0
            stored = [item async for item in self.store.read()]
            events = [event for _, event in stored]
            try:
                replay(events)
            except Exception as exc:
                exc.add_note(
                    f"while rebuilding routing state from {len(events)} stored events; "
                    "does the config still name every queue and agent they refer to?"
                )
                raise
        if fold and snapshot is None:  # the whole log is at hand: fold the conversations now
            for event in events:
                self.conversations.apply(event)
        elif fold:  # fold them from the whole log in the background, routing meanwhile
            self._conversations_backlog = []
            self._conversations_upto = stored[-1][0] if stored else since
        return events, stored[-1][0] if stored else since

    async def _load_conversations(self) -> None:
        """Fold conversations from the whole log (a restart from a snapshot read only
        its tail), then the events published meanwhile, in order."""
        folded = Conversations()
        folded.loading = True
        self.conversations = folded
        upto = self._conversations_upto
        async for seq, event in self.store.read():
            if seq > upto:
                break
            folded.apply(event)
        backlog, self._conversations_backlog = self._conversations_backlog or [], None
        for event in backlog:
            folded.apply(event)
        folded.loading = False

    async def _shutdown(self) -> None:
        await self.host.notify("omniroute_shutdown", app=self)
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()
        self._to_lookup.close()
        self._for_lookup.close()
        if self._owns_store:
            await self.store.close()

    async def _run_channel(self, name: str, channel: Channel) -> None:
        """A channel that crashes is logged and stays down; routing and the other
        channels go on."""
        try:
            await channel.run(self)
        except Exception:
            logger.exception("channel %r stopped with an error; routing goes on without it", name)

    # ------------------------------------------------------------------ commands

    async def submit(
        self, interaction: Interaction, messages: Sequence[Message] = ()
    ) -> Interaction:
        """Queue a new interaction; durable when this returns (acknowledge the sender then).

        `messages` are its first messages (what the customer wrote), made durable in the
        same write: a channel acknowledges both at once, at the cost of one commit."""
        first = list(messages) or None
        return _snapshot(await self._command(self.router.submit, interaction, first))

    async def accept(self, offer_id: str, agent_id: str | None = None) -> Interaction:
        return _snapshot(await self._command(self.router.accept, offer_id, agent_id))

    async def decline(self, offer_id: str, agent_id: str | None = None) -> None:
        await self._command(self.router.decline, offer_id, agent_id)

    async def complete(
        self, interaction_id: str, agent_id: str | None = None, outcome: str | None = None
    ) -> None:
        """The contact is over: wrap-up starts. `outcome` says how it ended if known."""
        await self._command(self.router.complete, interaction_id, agent_id, outcome)

    async def start_outbound(
        self,
        agent_id: str,
        channel: str,
        address: str,
        *,
        customer_id: str | None = None,
        queue: str | None = None,
        subject: str | None = None,
    ) -> Interaction:
        """An agent contacts a customer at `address` on `channel` (click-to-call): an
        outbound interaction that is theirs at once (`Router.start_outbound` says when
        it is refused). The customer is `customer_id`, else the one known by that
        address, else a new one; `queue` defaults to the first queue (in config order)
        that takes the channel and that the agent serves. The channel is told by the
        `OutboundStarted` event (`omniroute_interaction_outbound`) and reaches the
        customer; durable when this returns."""
        identity = Identity(channel, address)
        known = self.conversations.customer_at(channel, address)
        if customer_id is not None:
            if self.conversations.customer(customer_id) is None:
                raise RouterError(f'no customer "{customer_id}"')
            customer_id = self.conversations.resolve(customer_id)
        else:
            customer_id = known or f"{channel}:{address}"
        profile = self.conversations.customer(customer_id)
        customer = Customer(
            id=customer_id, name=profile.name if profile else None, identities=[identity]
        )
        interaction = Interaction(
            id=f"{channel}-out-{secrets.token_hex(8)}",
            channel=channel,
            queue=queue or self._outbound_queue(agent_id, channel),
            direction=Direction.OUTBOUND,
            customer=customer,
            subject=subject,
            address=address,
        )
        return _snapshot(await self._command(self.router.start_outbound, interaction, agent_id))

    def _outbound_queue(self, agent_id: str, channel: str) -> str:
        """The first queue of the config order that takes `channel` and that the agent
        serves (every queue when their config names none)."""
        agent = self.router.agent(agent_id)  # RouterError if unknown
        serves = agent.config.queues
        for name, queue in self.router.queues.items():
            channels = queue.config.channels
            if (channels is None or channel in channels) and (serves is None or name in serves):
                return name
        raise RouterError(
            f'agent "{agent_id}" serves no queue that takes {channel}: name the queue'
        )

    async def end_wrap_up(self, interaction_id: str, agent_id: str | None = None) -> None:
        await self._command(self.router.end_wrap_up, interaction_id, agent_id)

    async def abandon(self, interaction_id: str) -> None:
        await self._command(self.router.abandon, interaction_id)

    async def transfer(
        self,
        interaction_id: str,
        *,
        to_agent: str | None = None,
        to_queue: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        await self._command(
            self.router.transfer,
            interaction_id,
            to_agent=to_agent,
            to_queue=to_queue,
            agent_id=agent_id,
        )

    async def hand_over(
        self, interaction_id: str, to_agent: str, agent_id: str | None = None
    ) -> Interaction:
        """Complete a consultative transfer (see `Router.hand_over`)."""
        return _snapshot(
            await self._command(self.router.hand_over, interaction_id, to_agent, agent_id)
        )

    async def requeue(self, interaction_id: str, reason: str = "requeued") -> None:
        await self._command(self.router.requeue, interaction_id, reason)

    async def assign(self, interaction_id: str, agent_id: str) -> Interaction:
        return _snapshot(await self._command(self.router.assign, interaction_id, agent_id))

    async def request_callback(self, interaction_id: str, number: str) -> None:
        await self._command(self.router.request_callback, interaction_id, number)

    async def set_presence(
        self, agent_id: str, presence: Presence | str, reason: str | None = None
    ) -> None:
        await self._command(self.router.set_presence, agent_id, Presence(presence), reason)

    async def upsert_agent(self, agent: Agent) -> None:
        """Add an agent or change one's skills, capacity or queues; applies at once, and
        the log keeps it across restarts."""
        await self._command(self.router.upsert_agent, agent)

    async def remove_agent(self, agent_id: str) -> None:
        """Remove an agent who is offline and holds no work."""
        await self._command(self.router.remove_agent, agent_id)

    async def upsert_queue(self, queue: Queue) -> None:
        """Add a queue or change one; applies at once, and the log keeps it across
        restarts (it wins over the config file's version). Raises ConfigError naming
        the field when the queue is invalid, RouterError when its interactions forbid it."""
        errors = check_queue(queue, self.router.queues, self.host.strategies())
        if errors:
            raise ConfigError(errors)
        await self._command(self.router.upsert_queue, queue)

    async def remove_queue(self, name: str) -> None:
        """Remove a queue with no live interaction that no other queue overflows to."""
        await self._command(self.router.remove_queue, name)

    # ------------------------------------------------------------------ messages

    async def add_message(self, message: Message) -> Message:
        """Record a message of a live interaction (a customer's, usually); durable when
        this returns, so a channel acknowledges its sender then."""
        return await self._command(self.router.add_message, message)

    async def add_note(self, kind: str, data: dict[str, Any]) -> ev.Note:
        """Make a plugin's own fact durable in the event log (an email sent, a bounce
        ignored): `kind` names it ("email.sent"), `data` is any JSON object. The router
        ignores notes; a plugin finds its own again by reading the store after a restart."""
        return await self._command(self.router.add_note, kind, data)

    async def send_message(
        self, interaction_id: str, sender: str, text: str, *, attachments: Sequence[str] = ()
    ) -> Message:
        """An agent's (or supervisor's) message to the customer: made durable, then handed
        to the interaction's channel. Raises DeliveryError if the channel fails; the
        message stays in the conversation either way."""
        ix = self._live(interaction_id)
        channel = self.channels.get(ix.channel)
        if channel is None:
            raise DeliveryError(f'no channel "{ix.channel}" is running to deliver to')
        message = Message(
            id=f"m-{secrets.token_hex(8)}",
            interaction_id=interaction_id,
            sender=sender,
            text=text,
            attachments=list(attachments),
        )
        message = await self._command(self.router.add_message, message)
        try:
            await channel.deliver(ix, message)
        except Exception as exc:
            logger.exception("channel %r failed to deliver message %s", ix.channel, message.id)
            raise DeliveryError(f"stored, but channel {ix.channel!r} failed: {exc}") from exc
        return message

    # ------------------------------------------------------------------ customers

    async def link_customer(self, customer_id: str, customer: Customer, by: str) -> None:
        """Join addresses (and a name, fields) to a known customer, durably: contacts from
        any of them share one history from now on; a customer already known by one of
        them merges into this one. `by` says who knew ("crm", "agent:ana")."""
        if self.conversations.customer(customer_id) is None:
            raise RouterError(f'no customer "{customer_id}"')
        customer_id = self.conversations.resolve(customer_id)
        await self._command(self.router.link_customer, customer_id, customer, by)

    async def _look_up_customers(self) -> None:
        """Ask CRM plugins about each new contact's addresses, one contact at a time, off
        the routing path, and record what they answer (the inbox's screen pop)."""
        async for ix in self._for_lookup:
            customer_id = self.conversations.customer_of(ix.id)
            if ix.customer is None or customer_id is None:
                continue
            for identity in ix.customer.identities:
                found = await self.host.first_result(
                    "omniroute_customer_lookup", identity=identity, interaction=ix
                )
                if isinstance(found, Customer):
                    try:
                        await self.link_customer(customer_id, found, "crm")
                    except (RouterError, RuntimeError, StoreError):
                        logger.warning("could not record the CRM's answer about %s", ix.id)
                    break

    def _live(self, interaction_id: str) -> Interaction:
        ix = self.router.interaction(interaction_id)  # RouterError if unknown
        if ix.state in TERMINAL_STATES:
            raise RouterError(f'interaction "{interaction_id}" has ended ({ix.state.value})')
        return ix

    @staticmethod
    @contextlib.contextmanager
    def idempotent(key: str) -> Iterator[None]:
        """Commands run in this block (by this task) carry `key`: in a cluster, a
        command sent again under the same key (a client retrying after a failover or a
        lost answer, on any node) runs once and answers its first result. Make keys
        unique to the request (the web API uses the caller, the endpoint and the
        client's `Idempotency-Key`). One node alone has no failover: keys change nothing.
        """
        token = _command_key.set([key, 0])
        try:
            yield
        finally:
            _command_key.reset(token)

    async def recall(self, key: str) -> tuple[Any] | None:
        """The answer of the command that ran under idempotency `key`, in a 1-tuple
        (raised, if it was an error); None if none ran yet (or on one node alone)."""
        if self._cluster is None:
            return None
        return await self._cluster.recall(key)

    async def _command(self, command: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a router command and return once its events are durable: here when this
        app leads, else on the leader (then once this app's replica has applied them,
        so that what the caller reads next includes them). A command with an
        idempotency key goes through the cluster's command table even on the leader,
        where the key is remembered."""
        keyed = _command_key.get() if self._cluster is not None else None
        if self._leading and keyed is None:
            return await self._here(command, *args, **kwargs)
        if not self._running:
            raise RuntimeError("the app is not running: `await tg.start(app.run)` first")
        assert self._cluster is not None
        key = _next_key(keyed)
        result, seq = await self._cluster.forward(command.__name__, args, kwargs, key=key)
        if seq is not None:
            await self.caught_up(seq)
        return cast(T, result)

    # ------------------------------------------------------------------ channel actions

    async def channel_call(
        self, channel: str, action: str, payload: Mapping[str, Any] | None = None
    ) -> Any:
        """Run `action` of `channel` (declared in its `ChannelSpec.actions`) with the
        `payload` fields, where the channel runs, and return its answer.

        On one node, and for a channel that runs on every node, it runs here. For a
        leader-only channel in a cluster it runs here while this app leads, else on the
        leader, sent through the commands table like a command: its answer, or its
        error as itself (ActionError with its status, RouterError...), comes back once
        this app's replica includes what it wrote; StoreError (CommandTimeout) when no
        leader answered within `command_timeout`. Under `App.idempotent(key)` it goes
        through the table even on the leader, so that a retry under the key, on any
        node, answers the first result without running it again.

        Raises UnknownAction (an ActionError, 404) naming an unknown channel or action,
        ActionError (422) naming a payload field that does not fit.
        """
        adapter = self.channels.get(channel)
        actions = self._actions.get(channel)
        if adapter is None or actions is None:
            running = ", ".join(sorted(self.channels)) or "none"
            raise UnknownAction(f'no channel "{channel}" runs (channels: {running})')
        found = actions.get(action)
        if found is None:
            known = ", ".join(sorted(actions)) or "none"
            raise UnknownAction(f'channel "{channel}" has no action "{action}" (actions: {known})')
        data = found.encode(payload)
        keyed = _command_key.get() if self._cluster is not None else None
        relayed = self._cluster is not None and self._leader_only[channel]
        if not relayed or (self._leading and keyed is None):
            return found.decode(await found.run(adapter, data))
        if not self._running:
            raise RuntimeError("the app is not running: `await tg.start(app.run)` first")
        assert self._cluster is not None
        call = msgspec.json.encode(
            {"channel": channel, "action": action, "payload": msgspec.Raw(data)}
        )
        outcome, seq = await self._cluster.relay(found.command, call, key=_next_key(keyed))
        if seq is not None:
            await self.caught_up(seq)
        return found.decode(outcome)

    async def run_action(self, call: bytes | str) -> bytes:
        """Run a channel action relayed from another node (`call` as `channel_call`
        encodes it) on this app, which leads; its encoded outcome (the answer, or the
        error). The cluster calls this."""
        try:
            sent = msgspec.json.decode(call, type=_RelayedCall)
        except msgspec.DecodeError as exc:  # never let a bad row stop the leader's commands
            return encode_outcome("a channel action", ValueError(f"not understood: {exc}"))
        found = self._actions.get(sent.channel, {}).get(sent.action)
        adapter = self.channels.get(sent.channel)
        where = f"{sent.channel}.{sent.action}"
        if found is None or adapter is None:  # nodes must run the same config and plugins
            return encode_outcome(where, UnknownAction(f"{where}: not on the leader"))
        return await found.run(adapter, bytes(sent.payload))

    async def _here(self, command: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a router command on this app's router, which must be routing.

        Events are drained even when the command raises: timers it fired first
        changed the state, so their events must reach the log before the error does.
        """
        if self._failure is not None:
            raise self._failure
        if not self._running:
            raise RuntimeError("the app is not running: `await tg.start(app.run)` first")
        if not self._leading:
            raise StoreError("this node stopped leading: the command was not run; retry it")
        owner = getattr(command, "__self__", None)
        if isinstance(owner, Router) and owner is not self.router:  # taken before a takeover
            command = getattr(self.router, command.__name__)
        try:
            return command(*args, **kwargs)
        finally:
            await self._flush(self._stage(self.router.drain()))

    # ------------------------------------------------------------------ writing

    def _stage(self, events: Sequence[ev.Event]) -> int:
        """Queue events for the log in the router's order; return the count to wait for.

        Synchronous, so it happens in the same step as the router call that emitted them.
        """
        if events:
            self._pending.extend(events)
            self._staged += len(events)
            self._wake_timers()
        return self._staged

    async def _flush(self, target: int) -> None:
        """Return once the first `target` staged events are durable and published.

        Group commit: one command at a time writes everything pending in one append;
        the others wait for that append (all woken together when it is done), then
        return if it held their events, or one of them writes the next batch. With a
        pipelined store a command appends what is pending at once, behind the appends
        in flight, and settles (counts, publishes) after the one before it.
        Shielded: the router already applied these events, so a cancelled caller must
        not leave them out of the log.
        """
        if self._written >= target:
            self._check_written(target)
            return
        with anyio.CancelScope(shield=True):
            while self._written < target:
                if self._failure is not None:
                    raise self._failure
                writing = self._writing
                if writing is not None and not (self._pending and self._pipelined):
                    await writing.wait()
                    continue
                # With a pipelined store this append may start while earlier ones are
                # in flight; each then waits for the one before it, so that the app
                # counts, publishes and snapshots batches in log order.
                self._writing = done = anyio.Event()
                batch, self._pending = self._pending, []
                snapshot = self._snapshot_due(len(batch))
                try:
                    seq = await self.store.append(batch)
                    # Results come back in order, so the previous batch is settled by
                    # now; `wait()` would yield even then (a loop turn per batch).
                    if writing is not None and not writing.is_set():
                        await writing.wait()
                    if self._failure is not None:  # an earlier batch failed
                        raise self._failure
                except Exception as exc:
                    if self._failure is None:
                        raise self._fail(exc, len(batch)) from exc
                    raise self._failure from None  # the app stopped already
                else:
                    self._written += len(batch)
                    self._advance(seq)
                    self._publish(batch)
                finally:
                    if self._writing is done:
                        self._writing = None
                    done.set()
                if snapshot is None:
                    continue
                if self._running and self._task_group is not None:  # off the write path
                    self._task_group.start_soon(self._save_snapshot, seq, snapshot)
                else:  # restoring, or stopping: no task group to run it
                    await self._save_snapshot(seq, snapshot)
        self._check_written(target)

    def _check_written(self, target: int) -> None:
        """Raise if staged event `target` was dropped when this node stopped leading."""
        if any(lo < target <= hi for lo, hi in self._discarded):
            raise StoreError("this node stopped leading before the command was written; retry it")

    def _snapshot_due(self, batch: int) -> bytes | None:
        """The router's state if a snapshot is due with this batch, else None.

        Called as the writer takes every staged event into the batch, with no await
        since the router last ran: the router's state is then exactly the log up to
        this batch's last event, which is what the snapshot is saved with.
        """
        self._since_snapshot += batch
        every = self.store_config.snapshot_every
        if not every or self._since_snapshot < every:
            return None
        self._since_snapshot = 0
        try:
            return self.router.snapshot()
        except Exception:  # a snapshot is an optimisation: never let it stop a write
            logger.exception("taking a routing snapshot failed; the next one is due later")
            return None

    async def _save_snapshot(self, seq: int, data: bytes) -> None:
        """Save a snapshot whose events are durable already. A failed save is logged:
        the next one comes `snapshot_every` events later, and a restart meanwhile starts
        from the previous snapshot."""
        try:
            await self.store.save_snapshot(seq, data)
        except StoreError:
            logger.exception("saving the routing snapshot after event %d failed", seq)
        else:
            logger.info("saved a routing snapshot after event %d (%d bytes)", seq, len(data))

    def _fail(self, exc: Exception, lost: int) -> StoreError:
        """Stop the app: the router holds state the log lacks, so only a restart is safe."""
        failure = StoreError(
            f"the store failed to append {lost} events ({exc!r}); the app stops so that "
            "a restart rebuilds routing from what the log holds"
        )
        failure.__cause__ = exc
        self._failure = failure
        if self._cluster is not None:  # a cluster leader: back to following (`lead`)
            logger.warning("%s", failure)
            if self._term_scope is not None:
                self._term_scope.cancel()
            return failure
        logger.critical("%s", failure)
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        return failure

    def _publish(self, events: Sequence[ev.Event]) -> None:
        """Hand durable events to the observer task and to live subscribers; never blocks."""
        backlog = self._conversations_backlog
        observe = self._leading  # plugins observe on the node that routes
        for event in events:
            if backlog is None:
                self.conversations.apply(event)
            else:
                backlog.append(event)
            if observe:
                self._to_observers.send_nowait(event)
                if self._looks_up and isinstance(event, ev.InteractionQueued) and self._running:
                    try:
                        self._to_lookup.send_nowait(event.interaction)
                    except anyio.WouldBlock:
                        logger.warning(
                            "customer look-ups are behind; %s is not looked up",
                            event.interaction.id,
                        )
        self._to_subscribers(events)

    def announce(self, event: ev.Event) -> None:
        """Hand a transient event (someone typing) to live subscribers only: it is not
        stored, not replayed, and plugins' observers do not see it. In a cluster it goes
        to every node's subscribers (best effort, through PostgreSQL)."""
        if not self._running:
            return
        if self._cluster is not None:
            self._cluster.announce(event)
        else:
            self._to_subscribers([event])

    def announced(self, event: ev.Event) -> None:
        """A transient event announced on any node of the cluster, for this node's live
        subscribers (the cluster calls this)."""
        if self._running:
            self._to_subscribers([event])

    def _to_subscribers(self, events: Sequence[ev.Event]) -> None:
        for subscriber in list(self._subscribers):
            try:
                for event in events:
                    subscriber.send_nowait(event)
            except anyio.WouldBlock:
                logger.warning(
                    "dropping a slow event subscriber (%d events unread); it must resubscribe",
                    subscriber.statistics().current_buffer_used,
                )
                subscriber.close()
                self._subscribers.remove(subscriber)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.remove(subscriber)  # the consumer went away

    # ------------------------------------------------------------------ cluster roles

    def _advance(self, seq: int) -> None:
        if seq > self.seq:
            self.seq = seq
            self._advanced.set()
            self._advanced = anyio.Event()

    async def caught_up(self, seq: int, timeout: float = 10.0) -> None:
        """Wait until this app's read model includes event `seq` (at most `timeout` s:
        a follower cut off from the log answers stale rather than never)."""
        with anyio.move_on_after(timeout):
            while self.seq < seq:
                await self._advanced.wait()

    def _apply_followed(self, seq: int, event: ev.Event) -> None:
        """One committed event into the read model, then to the live subscribers."""
        if not self._replica_stale:  # else the replica is rebuilt from the log anyway
            self.router.follow((event,))
        self._advance(seq)
        self._publish((event,))

    async def _follow(self) -> None:
        """A follower's read model follows the committed log, until it leads; after
        leading it is rebuilt from the log first. PostgreSQL unreachable for a while
        only delays it."""
        assert self._cluster is not None
        with anyio.CancelScope() as scope:
            self._follow_scope = scope
            while True:
                try:
                    if self._replica_stale:
                        await self._rebuild_replica()
                    async for seq, event in self._cluster.tail(self.seq):
                        self._apply_followed(seq, event)
                except StoreError as exc:
                    logger.warning("cannot follow the log (retrying in a second): %s", exc)
                    await anyio.sleep(1.0)
        if self._follow_scope is scope:
            self._follow_scope = None

    async def _rebuild_replica(self) -> None:
        """A replica from the log, for an App that stopped leading: its router may hold
        what was never written. Live subscribers get what a newer leader wrote."""
        replica = self._new_router()
        upto = self.seq
        _, last = await self._load(replica, follow=True, fold=False)
        async for seq, event in self.store.read(upto):
            if seq > last:
                break
            self._publish((event,))
        self.router, self._replica_stale = replica, False
        self._advance(last)

    async def lead(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Route (a cluster node that took leadership, its store fenced to its epoch),
        until cancelled; then, or when an append fails (a newer leader fenced it), follow
        again. Promotion reads the log to its end (the replica's lag), then rebuilds the
        router exactly from the newest snapshot and the log, as a restart does."""
        if self._cluster is None or not self._running or self._task_group is None:
            raise RuntimeError("lead() is for a running App of a cluster node")
        if self._follow_scope is not None:
            self._follow_scope.cancel()
            self._follow_scope = None
        try:
            async for seq, event in self.store.read(self.seq):
                self._apply_followed(seq, event)
            router = self._new_router()
            events, last = await self._load(router, follow=False, fold=False)
            self._advance(last)
            self.router, self._leading, self._replica_stale = router, True, False
            await self._flush(self._stage(router.drain()))
            self._since_snapshot = len(events)
            async with anyio.create_task_group() as tg:
                self._term_scope = tg.cancel_scope
                self._start_routing(tg)
                task_status.started()
        finally:
            self._term_scope = None
            with anyio.CancelScope(shield=True):
                failure = await self._follow_again()
        if failure is not None:
            raise failure

    async def _follow_again(self) -> StoreError | None:
        """Stop routing: let an append in flight end, drop what was not written (its
        callers get a StoreError), and follow the log again from a rebuilt replica.
        Returns the store failure that ended the term, if one did (and forgets it)."""
        self._leading = False
        while self._writing is not None:
            await self._writing.wait()
        failure, self._failure = self._failure, None
        if self._pending or self._written < self._staged:
            self._discarded.append((self._written, self._staged))
            self._staged += 1  # past the range: a later command with no event is not in it
        self._pending = []
        self._written = self._staged
        self._replica_stale = True
        if self._task_group is not None and self._running:
            with contextlib.suppress(RuntimeError):  # the app is stopping
                self._task_group.start_soon(self._follow, name="omniroute follower")
        return failure

    # ------------------------------------------------------------------ timers

    def _wake_timers(self) -> None:
        """Wake the timer loop if the router now has a deadline before the one it sleeps to."""
        sleep = self._sleep
        if sleep is None:
            return  # not asleep: it reads the next deadline before sleeping again
        wake, deadline = sleep
        due = self.router.next_deadline()
        if due is not None and (deadline is None or due < deadline):
            wake.set()

    async def _timer_loop(self) -> None:
        """Sleep on the Clock until the router's next deadline (or an earlier one appears),
        then fire what is due and write its events."""
        router = self.router
        while True:
            deadline = router.next_deadline()
            wake = anyio.Event()  # set to wake early: no cancellation, no exception left
            self._sleep = (wake, deadline)
            if deadline is None:
                await wake.wait()
            else:
                await self.clock.sleep_until(deadline, wake)
            self._sleep = None
            try:
                router.advance()
            finally:
                target = self._stage(router.drain())
            try:
                await self._flush(target)
            except StoreError:
                return  # the app is stopping; `run` raises it

    # ------------------------------------------------------------------ retention

    async def _retention_loop(self, days: float) -> None:
        """Purge message bodies older than `days` now, then once a day (on the Clock).

        A failed purge is logged and retried the next day: retention never stops routing.
        """
        assert isinstance(self.store, Purging)
        while True:
            started = self.clock.now()  # the next run is a day after this one started
            try:
                changed = await self.store.purge(started - days * 86400)
            except StoreError:
                logger.exception("purging message bodies failed; retrying in a day")
            else:
                logger.info("purged message bodies of %d events older than %g days", changed, days)
            await self.clock.sleep_until(started + 86400)

    # ------------------------------------------------------------------ observers

    async def _observe(self) -> None:
        """Deliver durable events to notification hooks, in order, one at a time.

        Delivery is at most once: events durable but not yet delivered when the process
        stops are not delivered after a restart (a plugin that needs every event reads
        the store).
        """
        notify = self.host.notify
        async for event in Subscription(self._for_observers):
            await notify("omniroute_event", event=event, app=self)
            hook = HOOKS_BY_EVENT.get(type(event))
            if hook is not None:
                await notify(hook, event=event, app=self)

    def subscribe(self, max_buffer: int = 1000) -> Subscription[ev.Event]:
        """A stream of every event made durable from now on, for live consumers (web UI).

        Iterating it takes the events already buffered without a loop turn each
        (`omniroute.subscription`), so a consumer keeps up with a busy server.

        A consumer more than `max_buffer` events behind is dropped (its stream ends, and
        a warning is logged) rather than slow routing; it should reload and resubscribe.
        Close the stream to unsubscribe. Streams end when the app stops.
        """
        send, receive = anyio.create_memory_object_stream[ev.Event](max_buffer)
        if self._stopped:
            send.close()  # nothing more will come
        else:
            self._subscribers.append(send)
        return Subscription(receive)


class _RelayedCall(msgspec.Struct, frozen=True):
    """A channel action on its way to the leader (the `args` of its command)."""

    channel: str
    action: str
    payload: msgspec.Raw


def _next_key(keyed: list[Any] | None) -> str | None:
    """The idempotency key of the next command of an `App.idempotent` block: the block's
    key, then `key#2`, `key#3`... for its later commands (None outside a block)."""
    if keyed is None:
        return None
    keyed[1] += 1
    return keyed[0] if keyed[1] == 1 else f"{keyed[0]}#{keyed[1]}"


def _note_api_queues(configured: Sequence[Queue], router: Router) -> None:
    """Say which queues run otherwise than the config file says: the admin API changed,
    added or removed them, and the log's version wins (docs/web.md)."""
    in_file = {q.name: q for q in configured}
    for name, queue in router.queues.items():
        if name not in in_file:
            logger.warning("queue %r runs as added through the admin API", name)
        elif queue.config != in_file[name]:
            logger.warning(
                "queue %r runs as changed through the admin API, not as the config file says", name
            )
    for name in in_file.keys() - router.queues.keys():
        logger.warning("queue %r of the config file was removed through the admin API", name)


def _snapshot(interaction: Interaction) -> Interaction:
    """A copy of the router's live record, so callers neither see later changes nor
    make them."""
    return msgspec.structs.replace(interaction)

"""The router: matches waiting interactions to available agents and keeps every service
level in view.

It is synchronous and does no I/O. Every change of state is an event: a command (submit,
accept, complete...) decides, emits events, and each event is applied to the state by one
`_on_*` method. Rebuilding after a restart is applying the stored events again. Emitted
events wait in `outbox` until the caller drains them into a store and to observers.

Time comes only from the Clock: each command first fires the timers that are due
(offer time-outs, wrap-up ends, escalation steps, SLA breaches, opening hours), so the
same code runs live, in tests and in the simulator.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import msgspec

from .. import events as ev
from ..clock import Clock
from ..kpi import QueueKpis
from ..model import (
    TERMINAL_STATES,
    Action,
    ActionKind,
    Agent,
    Candidate,
    Customer,
    Direction,
    Explanation,
    Interaction,
    InteractionState,
    Message,
    Presence,
    Queue,
    Routing,
)
from .hours import Calendar
from .snapshot import dump, load, paused_gc
from .state import (
    AgentStatus,
    Bucket,
    PendingOffer,
    Profile,
    QueueRuntime,
    Timer,
    Waiting,
    heap_make,
    heap_pop,
    heap_push,
    heap_sift,
    offer_hook,
    skill_key,
)
from .strategy import QueueSelector, Strategy, StrategySpec

S = InteractionState
# Enum members as module constants: on Python 3.11 reading `InteractionState.WAITING`
# costs about 0.2 us (the enum class's __getattr__ hook), a constant next to nothing,
# and a decision reads a dozen of them.
WAITING: Final = S.WAITING
OFFERED: Final = S.OFFERED
ASSIGNED: Final = S.ASSIGNED
WRAP_UP: Final = S.WRAP_UP
ABANDONED: Final = S.ABANDONED
CLOSED: Final = S.CLOSED
COMPLETED: Final = S.COMPLETED
READY: Final = Presence.READY
OFFLINE: Final = Presence.OFFLINE
NOT_READY: Final = Presence.NOT_READY
OUTBOUND: Final = Direction.OUTBOUND
#: Presences from which an agent may start an outbound contact: ready, and not ready
#: (agents often take a break from inbound work to make calls). Offline may not.
OUTBOUND_PRESENCES: Final = frozenset({READY, NOT_READY})
# The events every contact makes, as module constants too: from compiled code
# `ev.Offered` is an attribute lookup on the module on each use.
QUEUED_EVENT: Final = ev.InteractionQueued
OFFERED_EVENT: Final = ev.Offered
ASSIGNED_EVENT: Final = ev.Assigned
COMPLETED_EVENT: Final = ev.Completed
WRAP_UP_ENDED_EVENT: Final = ev.WrapUpEnded
BREACHED_EVENT: Final = ev.SlaBreached
_MAX_CANDIDATES = 5  # kept in a decision's explanation
_ENDED: list[Any] = []  # the buckets and requirements of one that ended: never changed


class RouterError(Exception):
    """A command the router cannot carry out: says which thing and why."""


class SnapshotError(RouterError):
    """A snapshot this router cannot start from (another format version, another config,
    damaged data): the message says why. Rebuild from the whole log instead."""


class Router:
    """Skill-based routing across every queue and channel.

    Commands: `submit`, `start_outbound`, `accept`, `decline`, `complete`,
    `end_wrap_up`, `abandon`, `transfer`, `requeue`, `assign`, `request_callback`,
    `set_presence`, `upsert_agent`, `remove_agent`, `upsert_queue`, `remove_queue`,
    `add_message`, `add_note`. Reads:
    `interaction`, `waiting`, `agent`, `stats`, `explain`, `position`. A replica
    (`follow`) applies a leader's events and only reads.
    """

    def __init__(
        self,
        *,
        queues: Sequence[Queue],
        agents: Sequence[Agent] = (),
        clock: Clock,
        strategies: Mapping[str, StrategySpec],
        selector: QueueSelector,
        routing: Routing | None = None,
        plugin_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._init_args: dict[str, Any] = {
            "queues": queues,
            "agents": agents,
            "clock": clock,
            "strategies": strategies,
            "selector": selector,
            "routing": routing,
            "plugin_config": plugin_config,
        }
        self._initial_state()

    def _initial_state(self) -> None:
        """The state of a router just built (again, after a snapshot failed to load)."""
        args = self._init_args
        queues: Sequence[Queue] = args["queues"]
        agents: Sequence[Agent] = args["agents"]
        clock: Clock = args["clock"]
        selector: QueueSelector = args["selector"]
        routing: Routing | None = args["routing"]
        self.clock = clock
        self.routing = routing or Routing()
        self.selector = selector
        self.now = clock.now()
        self.outbox: list[ev.Event] = []
        self.queues: dict[str, QueueRuntime] = {}
        self.agents: dict[str, AgentStatus] = {}
        self.profiles: dict[Any, Profile] = {}
        self.buckets: dict[Any, Bucket] = {}
        self.active: dict[str, Waiting] = {}  # every interaction not yet ended
        self.offers: dict[str, PendingOffer] = {}
        self.stats: dict[str, QueueKpis] = {}
        self.last_agent: dict[str, str] = {}  # customer id -> the agent who served them last
        self._profile_buckets: dict[int, dict[str, list[Bucket]]] = {}
        self._timers: list[Timer] = []  # a heap by (due, seq): `state.heap_push`...
        self._seq = 0  # timers ever armed: each one's arming order
        self._arrivals = 0  # interactions ever queued: each one's place in line
        self._offer_count = 0
        self._ordinals = 0  # agents ever configured: each one's place in the config order
        self._free: dict[str, int] = {}  # channel -> agents who can take one more now
        self._replaying = False
        self._passive = False  # a replica: applies events, arms no timer, decides nothing
        self._firing = False
        self._requeued: list[Waiting] = []  # back in line: match them before anything else
        self._released: list[AgentStatus] = []  # capacity freed: let them pull new work
        # Timer handlers bound once: a bound method made per timer would be one more
        # object per contact for the garbage collector to scan until the timer is due.
        self._sla_timer: Callable[[Any], None] = self._sla_due
        self._offer_timer: Callable[[Any], None] = self._offer_expired
        self._wrap_timer: Callable[[Any], None] = self._wrap_up_due
        self._ladder_timer: Callable[[Any], None] = self._ladder_due
        self._max_wait_timer: Callable[[Any], None] = self._max_wait_due
        self._preference_timer: Callable[[Any], None] = self._preference_due
        self._closed_timer: Callable[[Any], None] = self._closed_check
        self._appliers: dict[type, Callable[[Any], None]] = {
            ev.InteractionQueued: self._on_queued,
            ev.Offered: self._on_offered,
            ev.OfferDeclined: self._on_declined,
            ev.OfferMissed: self._on_missed,
            ev.OfferRevoked: self._on_revoked,
            ev.Assigned: self._on_assigned,
            ev.OutboundStarted: self._on_outbound,
            ev.Requeued: self._on_requeued,
            ev.Transferred: self._on_transferred,
            ev.Abandoned: self._on_abandoned,
            ev.Completed: self._on_completed,
            ev.WrapUpEnded: self._on_wrap_up_ended,
            ev.Closed: self._on_closed,
            ev.CallbackRequested: self._on_callback_requested,
            ev.EscalationApplied: self._on_escalated,
            ev.ActionApplied: self._on_action,
            ev.SlaBreached: self._on_breached,
            ev.AgentStateChanged: self._on_agent_state,
            ev.AgentConfigured: self._on_agent_configured,
            ev.AgentRemoved: self._on_agent_removed,
            ev.MessageAdded: self._on_message,
            ev.QueueConfigured: self._on_queue_configured,
            ev.QueueRemoved: self._on_queue_removed,
            # Events for observers only: nothing in the router changes.
            ev.CallbackOffered: _nothing,
            ev.SlaAtRisk: _nothing,
            ev.Note: _nothing,
            ev.CustomerLinked: _nothing,
        }
        for queue in queues:
            self._configure_queue(queue)
        for agent in agents:
            self._on_agent_configured(ev.AgentConfigured(at=self.now, agent=agent))

    # ================================================================== commands

    def submit(
        self, interaction: Interaction, messages: list[Message] | None = None
    ) -> Interaction:
        """Put a new interaction in its queue and offer it if an agent is free.

        `messages` are its first messages (what the customer wrote), logged right after it
        and before any offer, so that a channel makes both durable in one write."""
        self._tick()
        for message in messages or ():
            if message.interaction_id != interaction.id:
                raise RouterError(f'message "{message.id}" is not of "{interaction.id}"')
        queue = self._queue_of(interaction, f'interaction "{interaction.id}"')
        for skill, level in interaction.skills.items():
            if not (isinstance(level, int) and 1 <= level <= 5):
                raise RouterError(
                    f'interaction "{interaction.id}": skills.{skill} is {level!r}; '
                    "skill levels are integers from 1 to 5"
                )
        now = self.now
        ix = msgspec.structs.replace(  # a copy: callers cannot change the router's state
            interaction, state=WAITING, created_at=interaction.created_at or now, enqueued_at=now
        )
        if ix.preferred_agent is None and queue.preferred_agent_wait > 0 and ix.customer:
            ix.preferred_agent = self.last_agent.get(ix.customer.id)
        queued = QUEUED_EVENT(at=self.now, interaction=ix)
        self.outbox.append(queued)
        self._on_queued(queued)  # what `_emit` does, as a direct call: the hot path
        for message in messages or ():
            stamped = msgspec.structs.replace(message, at=message.at or self.now)
            self._emit(ev.MessageAdded(at=self.now, message=stamped))
        w = self.active[ix.id]
        if queue.calendar is not None and not queue.calendar.is_open(self.now):
            self._apply_action(w, queue.config.hours.closed, "closed")  # type: ignore[union-attr]
        if w.ix.state is WAITING:
            self._match(w, "arrival")
        self._settle()
        return w.ix

    def start_outbound(self, interaction: Interaction, agent_id: str) -> Interaction:
        """An agent starts a contact to a customer (click-to-call, a first email): it is
        theirs at once, never queued nor offered to anyone else.

        It takes one unit of the agent's capacity on its channel, under the same rules
        as routed work (an exclusive channel such as voice needs the agent free of all
        other work, offers included), and the agent must be ready or not ready (not
        offline). `interaction.queue` must take the channel: it gives the wrap-up time
        and the reports it counts in (as outbound, apart from the queue's waits)."""
        self._tick()
        where = f'outbound "{interaction.id}"'
        self._queue_of(interaction, where)
        agent = self._agent(agent_id)
        if agent.presence not in OUTBOUND_PRESENCES:
            raise RouterError(
                f'{where}: agent "{agent_id}" is {agent.presence.value}; be ready or not '
                "ready to start a contact"
            )
        why = _no_room(agent, interaction.channel)
        if why:
            raise RouterError(f'{where}: agent "{agent_id}" has no free capacity: {why}')
        ix = msgspec.structs.replace(interaction)  # a copy, as in submit
        ix.direction = OUTBOUND
        ix.state = ASSIGNED
        ix.created_at = ix.created_at or self.now
        ix.enqueued_at = ix.answered_at = self.now
        ix.agent = agent_id
        ix.preferred_agent = None
        self._emit(ev.OutboundStarted(at=self.now, interaction=ix, agent_id=agent_id))
        self._settle()
        return self.active[ix.id].ix

    def accept(self, offer_id: str, agent_id: str | None = None) -> Interaction:
        """The agent takes the offered interaction."""
        self._tick()
        offer = self._offer(offer_id, agent_id)
        w = offer.waiting
        assigned = ASSIGNED_EVENT(
            at=self.now, interaction_id=w.id, agent_id=offer.agent.id, offer_id=offer_id
        )
        self.outbox.append(assigned)
        self._assigned(assigned, w, offer.agent)  # `_emit`, direct, with what it would look up
        if w.offers:  # ring-all: the other agents' offers
            self._withdraw(w, f"answered by {offer.agent.id}")
        self._settle()
        return w.ix

    def decline(self, offer_id: str, agent_id: str | None = None) -> None:
        """The agent turns the offer down: the next agent gets it; this one won't again."""
        self._tick()
        offer = self._offer(offer_id, agent_id)
        w, agent = offer.waiting, offer.agent
        self._emit(
            ev.OfferDeclined(at=self.now, offer_id=offer_id, interaction_id=w.id, agent_id=agent.id)
        )
        if w.ix.state is WAITING:
            self._match(w, "declined")
        self._settle()

    def complete(
        self, interaction_id: str, agent_id: str | None = None, outcome: str | None = None
    ) -> None:
        """The contact is over; the agent wraps up for the queue's `wrap_up` seconds.
        `outcome` says how it ended, if the channel knows ("no-answer", "busy")."""
        self._tick()
        w = self._get(interaction_id, ASSIGNED)
        agent = self._agent_of(w, agent_id)
        until = self.now + w.queue.wrap_up
        completed = COMPLETED_EVENT(
            at=self.now,
            interaction_id=w.id,
            agent_id=agent.id,
            wrap_up_until=until,
            outcome=outcome,
        )
        self.outbox.append(completed)
        self._on_completed(completed)  # `_emit`, direct
        if until <= self.now:
            self._end_wrap_up(w, agent)
        self._settle()

    def end_wrap_up(self, interaction_id: str, agent_id: str | None = None) -> None:
        """The agent finished after-contact work early."""
        self._tick()
        w = self._get(interaction_id, WRAP_UP)
        self._end_wrap_up(w, self._agent_of(w, agent_id))
        self._settle()

    def abandon(self, interaction_id: str) -> None:
        """The customer left before an agent answered (hung up, closed the chat)."""
        self._tick()
        w = self._get(interaction_id, WAITING, OFFERED)
        self._withdraw(w, "abandoned")
        self._emit(ev.Abandoned(at=self.now, interaction_id=w.id))
        self._settle()

    def transfer(
        self,
        interaction_id: str,
        *,
        to_agent: str | None = None,
        to_queue: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        """Hand an assigned interaction to a colleague or a queue.

        To a colleague: it is offered to them first (skills aside); if they do not take
        it within the offer time-out it goes to its queue. To a queue: it waits there,
        still ahead of contacts that arrived after it.
        """
        self._tick()
        if (to_agent is None) == (to_queue is None):
            raise RouterError("transfer needs exactly one of to_agent or to_queue")
        w = self._get(interaction_id, ASSIGNED)
        agent = self._agent_of(w, agent_id)
        if to_agent is not None and to_agent not in self.agents:
            raise RouterError(f'transfer of "{w.id}": unknown agent "{to_agent}"')
        if to_agent == agent.id:
            raise RouterError(f'transfer of "{w.id}": "{to_agent}" already has it')
        if to_queue is not None:
            target = self.queues.get(to_queue)
            if target is None:
                raise RouterError(f'transfer of "{w.id}": unknown queue "{to_queue}"')
            allowed = target.config.channels
            if allowed is not None and w.ix.channel not in allowed:
                raise RouterError(
                    f'transfer of "{w.id}": queue "{to_queue}" does not take "{w.ix.channel}"'
                )
        self._emit(
            ev.Transferred(
                at=self.now,
                interaction_id=w.id,
                from_agent=agent.id,
                to_agent=to_agent,
                to_queue=to_queue,
            )
        )
        self._match(w, "transfer")
        self._settle()

    def hand_over(
        self, interaction_id: str, to_agent: str, agent_id: str | None = None
    ) -> Interaction:
        """Complete a consultative transfer: the colleague the agent consulted, already on
        the line, takes the interaction at once (no offer), if they have room for it now.

        One command, two events of a blind transfer and a direct assignment (Transferred,
        then Assigned), so the interaction is never held by both nor left unassigned."""
        self._tick()
        w = self._get(interaction_id, ASSIGNED)
        agent = self._agent_of(w, agent_id)
        target = self.agents.get(to_agent)
        if target is None:
            raise RouterError(f'hand-over of "{w.id}": unknown agent "{to_agent}"')
        if target is agent:
            raise RouterError(f'hand-over of "{w.id}": "{to_agent}" already has it')
        if not target.can_take(w.ix.channel):
            raise RouterError(
                f'hand-over of "{w.id}": agent "{to_agent}" cannot take a {w.ix.channel} '
                f"interaction now ({target.activity}, load {target.load})"
            )
        self._emit(
            ev.Transferred(
                at=self.now,
                interaction_id=w.id,
                from_agent=agent.id,
                to_agent=to_agent,
                to_queue=None,
            )
        )
        self._emit(ev.Assigned(at=self.now, interaction_id=w.id, agent_id=to_agent))
        self._settle()
        return w.ix

    def requeue(self, interaction_id: str, reason: str = "requeued") -> None:
        """Put an assigned interaction back in line at its original place."""
        self._tick()
        w = self._get(interaction_id, ASSIGNED)
        agent = self._agent_of(w, None)
        self._emit(ev.Requeued(at=self.now, interaction_id=w.id, agent_id=agent.id, reason=reason))
        self._match(w, "requeue")
        self._settle()

    def assign(self, interaction_id: str, agent_id: str) -> Interaction:
        """A supervisor moves a waiting interaction straight to a free agent."""
        self._tick()
        w = self._get(interaction_id, WAITING)
        agent = self._agent(agent_id)
        if not agent.can_take(w.ix.channel):
            raise RouterError(
                f'agent "{agent_id}" cannot take a {w.ix.channel} interaction now '
                f"({agent.activity}, load {agent.load})"
            )
        self._emit(ev.Assigned(at=self.now, interaction_id=w.id, agent_id=agent_id))
        self._settle()
        return w.ix

    def add_message(self, message: Message) -> Message:
        """Record a message of a live interaction. An agent's first one is the
        interaction's first response (what stops the SLA clock of a queue measured by
        `first_response`). A command, so that on several nodes the leader orders and
        checks every message wherever it was written."""
        self._tick()
        w = self.active.get(message.interaction_id)
        if w is None:
            raise RouterError(f'no active interaction "{message.interaction_id}"')
        if w.ix.state in TERMINAL_STATES:
            state = w.ix.state.value
            raise RouterError(f'interaction "{message.interaction_id}" has ended ({state})')
        stamped = msgspec.structs.replace(message, at=message.at or self.now)
        self._emit(ev.MessageAdded(at=self.now, message=stamped))
        return stamped

    def add_note(self, kind: str, data: dict[str, Any]) -> ev.Note:
        """Record a plugin's own fact (the router ignores notes): a command, so that on
        several nodes the leader writes it, in order, wherever it was made."""
        self._tick()
        note = ev.Note(at=self.now, kind=kind, data=data)
        self._emit(note)
        return note

    def link_customer(self, customer_id: str, customer: Customer, by: str) -> None:
        """Join addresses to a customer (the router ignores it; the conversations fold
        merges): a command, so that on several nodes the leader writes it, in order."""
        self._tick()
        self._emit(
            ev.CustomerLinked(at=self.now, customer_id=customer_id, customer=customer, by=by)
        )

    def request_callback(self, interaction_id: str, number: str) -> None:
        """The customer chose a callback: they hang up but keep their place in line."""
        self._tick()
        w = self._get(interaction_id, WAITING, OFFERED)
        self._emit(ev.CallbackRequested(at=self.now, interaction_id=w.id, number=number))
        self._settle()

    def set_presence(self, agent_id: str, presence: Presence, reason: str | None = None) -> None:
        """Ready, not ready (with a reason: break, lunch...) or offline.

        Leaving ready withdraws the agent's pending offers: those interactions go back
        to their original place in line. Work already assigned stays with the agent.
        """
        self._tick()
        agent = self._agent(agent_id)
        try:
            presence = Presence(presence)
        except ValueError:
            known = ", ".join(p.value for p in Presence)
            raise RouterError(f'unknown presence "{presence}"; one of: {known}') from None
        if presence is agent.presence and reason == agent.reason:
            return  # nothing changes: no event
        if presence is not READY:
            self._revoke_offers(agent, f"agent {presence.value}")
        self._emit(
            ev.AgentStateChanged(at=self.now, agent_id=agent_id, presence=presence, reason=reason)
        )
        if presence is READY:
            self._released.append(agent)
        self._settle()

    def upsert_agent(self, agent: Agent) -> None:
        """Add an agent, or change one's skills or capacity, while running."""
        self._tick()
        self._emit(ev.AgentConfigured(at=self.now, agent=agent))
        self._released.append(self.agents[agent.id])
        self._settle()

    def remove_agent(self, agent_id: str) -> None:
        """Remove an agent who is offline and holds no work."""
        self._tick()
        agent = self._agent(agent_id)
        if agent.presence is not OFFLINE or agent.work:
            raise RouterError(f'agent "{agent_id}" must be offline with no work to be removed')
        self._emit(ev.AgentRemoved(at=self.now, agent_id=agent_id))
        self._settle()

    def upsert_queue(self, queue: Queue) -> None:
        """Add a queue, or change one, while running (docs/web.md says what a change does
        to the interactions already in it)."""
        self._tick()
        self._strategy_spec(queue)
        current = self.queues.get(queue.name)
        if current is not None and queue.channels is not None:
            stranded = sorted(
                {w.ix.channel for w in current.waiting.values()} - set(queue.channels)
            )
            if stranded:
                raise RouterError(
                    f'queue "{queue.name}": interactions on {", ".join(stranded)} wait in it; '
                    "keep those channels until they are served"
                )
        self._emit(ev.QueueConfigured(at=self.now, queue=queue))
        runtime = self.queues[queue.name]
        hours = queue.hours
        if runtime.calendar is not None and hours and not runtime.calendar.is_open(self.now):
            for w in list(runtime.waiting.values()):  # closed by its new hours: as at closing
                if w.ix.state is S.WAITING:
                    self._apply_action(w, hours.closed, "closed")
        self._requeued.extend(w for w in runtime.waiting.values() if w.ix.state is S.WAITING)
        self._released.extend(self.agents.values())  # some may qualify now
        self._settle()

    def remove_queue(self, name: str) -> None:
        """Remove a queue that holds no live interaction and that no other queue sends
        interactions to (escalation, max wait or after-hours overflow)."""
        self._tick()
        queue = self.queues.get(name)
        if queue is None:
            raise RouterError(f'unknown queue "{name}"')
        active = sum(1 for w in self.active.values() if w.queue is queue or w.sla_queue is queue)
        if active:
            raise RouterError(
                f'queue "{name}" holds {active} live interaction(s); transfer them or let '
                "them finish first"
            )
        users = sorted(q.name for q in self.queues.values() if name in _references(q.config))
        if users:
            raise RouterError(
                f'queue "{name}" is an overflow target of {", ".join(users)}; change those first'
            )
        self._emit(ev.QueueRemoved(at=self.now, queue=name))
        self._settle()

    # ================================================================== time

    def next_deadline(self) -> float | None:
        """When the next timer is due, for the loop that sleeps on the Clock. Spent timers
        at the top are dropped first: no wake-up for nothing, and a router rebuilt from a
        snapshot (which leaves them out) answers the same as the live one."""
        timers = self._timers
        while timers:
            top = timers[0]
            if top.fn is None:  # a lane
                lane = top.arg
                if not self._spent_head(lane[0]):
                    return top.due
                lane.popleft()
                self._lane_moved(lane, top)
            elif self._spent(top):
                heap_pop(timers)
            else:
                return top.due
        return None

    def advance(self) -> None:
        """Fire every timer due by the Clock's now."""
        self._tick()

    def _tick(self) -> None:
        now = self.clock.now()
        timers = self._timers
        if timers and timers[0].due <= now and not self._firing:
            self._firing = True
            requeued, released = self._requeued, self._released
            try:
                while timers and timers[0].due <= now:
                    top = timers[0]
                    due = top.due
                    if due > self.now:
                        self.now = due
                    if top.fn is not None:
                        heap_pop(timers)
                        self._fire(top)
                    else:  # a lane: its head fires, the next takes its place
                        lane = top.arg
                        head = lane.popleft()
                        self._lane_moved(lane, top)
                        kind = type(head)
                        if kind is Waiting:  # the SLA lane holds the contacts themselves
                            self._sla_due(head)
                        elif kind is PendingOffer:  # the offer lane, the offers
                            self._offer_expired(head.id)
                        else:
                            self._fire(head)
                    if requeued or released:
                        self._settle()
            finally:
                self._firing = False
        if now > self.now:
            self.now = now

    def _fire(self, timer: Timer) -> None:
        fn = timer.fn
        arg = timer.arg
        if fn is self._ladder_timer:
            w: Waiting = arg
            if w.ladder_seq != timer.seq:
                return  # a rung armed before the contact moved on (_arm_ladder)
            w.ladder_seq = 0
            self._ladder_due(w)
        elif fn is self._wrap_timer:
            self._wrap_up_due(arg)
        else:
            fn(arg)

    def _at(
        self, due: float, fn: Callable[[Any], None], arg: Any, lane: deque[Any] | None = None
    ) -> int:
        """Run `fn(arg)` at `due`; returns the timer's arming order (0: never runs).

        Most timers come in lanes whose deadlines never decrease (every SLA breach of a
        queue is its arrival plus the same seconds), so a lane is a FIFO with one heap
        entry for its head: O(1) per timer instead of O(log n) in one big heap. Timers
        due at the same moment fire in the order they were armed, lane or not, so a
        router rebuilt from a snapshot fires them in the same order as a full replay.
        """
        if due == math.inf or self._passive:
            return 0
        self._seq += 1
        seq = self._seq
        timer = Timer(due, seq, fn, arg)
        if lane is not None:
            if not lane:
                heap_push(self._timers, Timer(due, seq, None, lane))  # None: a lane
                lane.append(timer)
                return seq
            last: Timer = lane[-1]
            if last.due <= due:
                lane.append(timer)
                return seq
        heap_push(self._timers, timer)
        return seq

    def _arm_record(
        self, due: float, record: Waiting | PendingOffer, lane: deque[Any], fn: Any, arg: Any
    ) -> int:
        """`_at` for the lanes whose entries are records, the timer of which they are
        (`Lanes`): a contact's SLA timer, an offer's time-out. Out of its lane's order, a
        `Timer(due, seq, fn, arg)` in the heap instead. Returns the arming order."""
        if due == math.inf or self._passive:
            return 0
        self._seq += 1
        seq = self._seq
        if not lane:
            heap_push(self._timers, Timer(due, seq, None, lane))
            lane.append(record)
        elif _record_due(lane[-1]) <= due:
            lane.append(record)
        else:
            heap_push(self._timers, Timer(due, seq, fn, arg))
        return seq

    def _lane_moved(self, lane: deque[Any], top: Timer) -> None:
        """A lane's head left it (`top`, the lane's heap entry, is the heap's first): skip
        the spent timers after it, which would do nothing (no heap entry, no call), and
        put the next in its place."""
        timers = self._timers
        while lane:
            head = lane[0]
            kind = type(head)
            if kind is Waiting:
                w: Waiting = head
                if w.answered or w.breached or w.buckets is _ENDED:
                    lane.popleft()
                    continue
                top.due = w.sla_deadline
                top.seq = w.sla_seq
            elif kind is PendingOffer:
                offer: PendingOffer = head
                if self.offers.get(offer.id) is not offer:
                    lane.popleft()
                    continue
                top.due = offer.expires_at
                top.seq = offer.seq
            else:
                timer: Timer = head
                if self._spent(timer):
                    lane.popleft()
                    continue
                top.due = timer.due
                top.seq = timer.seq
            heap_sift(timers, 0)
            return
        heap_pop(timers)

    def _spent_head(self, head: Any) -> bool:
        """`_spent` for a lane's entry (a record in the SLA and offer lanes)."""
        kind = type(head)
        if kind is Waiting:
            w: Waiting = head
            return w.answered or w.breached or w.buckets is _ENDED
        if kind is PendingOffer:
            return self.offers.get(head.id) is not head
        return self._spent(head)

    def _spent(self, timer: Timer) -> bool:
        """Whether a timer can only do nothing now and later: an offer's time-out once
        the offer was answered or withdrawn, an SLA timer once the contact was answered,
        breached or ended, an escalation rung the contact has moved on from. Such timers
        are skipped unfired, and snapshots leave them out."""
        fn = timer.fn
        if fn is self._offer_timer:
            return timer.arg not in self.offers
        if fn is self._sla_timer:
            w: Waiting = timer.arg
            return w.answered or w.breached or w.buckets is _ENDED
        if fn is self._ladder_timer:
            return timer.arg.ladder_seq != timer.seq
        return False

    def _lane_timers(self, lane: deque[Any]) -> list[tuple[float, int, Any, Any]]:
        """The live timers of a lane as (due, seq, fn, arg), records included (for
        snapshots)."""
        out: list[tuple[float, int, Any, Any]] = []
        for head in lane:
            if self._spent_head(head):
                continue
            kind = type(head)
            if kind is Waiting:
                out.append((head.sla_deadline, head.sla_seq, self._sla_timer, head))
            elif kind is PendingOffer:
                out.append((head.expires_at, head.seq, self._offer_timer, head.id))
            else:
                out.append((head.due, head.seq, head.fn, head.arg))
        return out

    # ================================================================== reads

    def interaction(self, interaction_id: str) -> Interaction:
        w = self.active.get(interaction_id)
        if w is None:
            raise RouterError(f'no active interaction "{interaction_id}"')
        return w.ix

    def agent(self, agent_id: str) -> AgentStatus:
        return self._agent(agent_id)

    def waiting(self, queue: str | None = None) -> list[Interaction]:
        """Interactions waiting (not offered): those of one queue in the order the queue
        serves them (as `position` counts), or all of them in the queue-selection order."""
        ws = [
            w
            for w in self.active.values()
            if w.ix.state is WAITING and (queue is None or w.queue.name == queue)
        ]
        if queue is not None:
            ws.sort(key=lambda w: (w.order_key, w.seq))
        else:
            ws.sort(key=lambda w: self.selector.key(w, self.now))
        return [w.ix for w in ws]

    def position(self, interaction_id: str) -> int:
        """1-based place in line among interactions of the same queue (0 once offered)."""
        w = self.active.get(interaction_id)
        if w is None or w.ix.state is not WAITING:
            return 0
        mine = w.order_key, w.seq
        return 1 + sum(
            1
            for o in w.queue.waiting.values()
            if o.ix.state is WAITING and (o.order_key, o.seq) < mine
        )

    def pick(
        self,
        queue: str,
        channel: str,
        skills: Mapping[str, int] | None = None,
        excluded: Collection[str] = (),
    ) -> str | None:
        """The agent the queue's strategy would offer a new contact to now (None if no
        one can take it): for a consultation, which is not itself routed. Agents are
        ranked as `_match` ranks them (skill group, then the strategy's key); a ring-all
        or scanning strategy takes the first free agent in configuration order."""
        runtime = self.queues.get(queue)
        if runtime is None:
            raise RouterError(f'unknown queue "{queue}"')
        requirement = {**runtime.config.skills, **(skills or {})}
        strategy = runtime.strategy
        best: tuple[Any, AgentStatus] | None = None
        for agent in self.agents.values():
            profile = agent.profile
            if agent.id in excluded or profile is None or not agent.can_take(channel):
                continue
            if not profile.qualifies(queue, requirement):
                continue
            if strategy.ring_all or strategy.scan:
                key: Any = agent.ordinal
            else:
                group = strategy.group_key(profile.skills, requirement)
                key = (group, strategy.agent_key(agent), agent.ordinal)
            if best is None or key < best[0]:
                best = (key, agent)
        return best[1].id if best is not None else None

    def queue_stats(self, queue: str) -> QueueKpis:
        """Today's KPIs of a queue (live service level, ASA, abandon rate...)."""
        if queue not in self.queues:
            raise RouterError(f'unknown queue "{queue}"')
        return self._stats(self.queues[queue], max(self.now, self.clock.now()))

    def explain(self, interaction_id: str) -> dict[str, Any]:
        """Why an interaction is where it is: who holds it or is offered it, who could
        take it, and why nobody has."""
        w = self.active.get(interaction_id)
        if w is None:
            raise RouterError(f'no active interaction "{interaction_id}"')
        state = w.ix.state
        out: dict[str, Any] = {
            "interaction": w.id,
            "state": state.value,
            "queue": w.queue.name,
            "position": self.position(w.id),
        }
        if w.ix.agent:
            out["agent"] = w.ix.agent
        if w.offers:
            out["offered_to"] = [
                {"agent": agent, "offer": oid, "expires_at": self.offers[oid].expires_at}
                for agent, oid in w.offers.items()
                if oid in self.offers
            ]
        if state is OFFERED:
            names = ", ".join(o["agent"] for o in out.get("offered_to", []))
            out["why"] = f"offered to {names}: waiting for an answer"
        elif state is ASSIGNED:
            out["why"] = f"assigned to {w.ix.agent}"
        elif state is WRAP_UP:
            out["why"] = f"{w.ix.agent} is wrapping up after the contact"
        requirements = []
        for bucket in w.buckets:
            agents = [a for p in bucket.profiles for a in p.agents.values()]
            by_activity: dict[str, int] = {}
            for a in agents:
                label = (
                    a.activity
                    if a.can_take(bucket.channel) or a.activity != "ready"
                    else ("no room on " + bucket.channel)
                )
                by_activity[label] = by_activity.get(label, 0) + 1
            free = [a.id for a in agents if a.can_take(bucket.channel)]
            declined = sorted(w.declined & set(free)) if w.declined else []
            full = by_activity.get("no room on " + bucket.channel, 0)
            if not agents:
                why = "no agent has these skills"
            elif not free and full:
                why = f"{full} ready matching agent(s) have no room left on {bucket.channel}"
            elif not free:
                why = "every matching agent is busy, not ready or offline"
            elif declined and len(declined) == len(free):
                why = "the only free matching agents declined or missed it"
            else:
                why = "an agent is free: it will be offered now"
            requirement = {
                "queue": bucket.queue.name,
                "channel": bucket.channel,
                "skills": bucket.requirement,
                "matching_agents": len(agents),
                "agents_by_state": by_activity,
            }
            if state is WAITING:
                requirement["why_waiting"] = why
            requirements.append(requirement)
        out["requirements"] = requirements
        if "why" not in out:
            reasons = [str(r.get("why_waiting", "")) for r in requirements]
            out["why"] = reasons[0] if len(set(reasons)) == 1 else "; ".join(reasons)
        if w.ix.preferred_agent and w.preferred_until > self.now:
            out["reserved_for"] = w.ix.preferred_agent
        return out

    def drain(self) -> list[ev.Event]:
        """Take the events emitted since the last drain (to store and publish them)."""
        out, self.outbox = self.outbox, []
        return out

    # ================================================================== rebuild

    def snapshot(self) -> bytes:
        """The router's whole derived state as bytes, to start a router from it later with
        `rebuild(events_after, snapshot=data)` instead of replaying the whole log.

        Take it between commands, once `drain()` took every event (else RouterError):
        it is the state right after the last event drained. It holds waiting interactions
        in their order, offers, agents and their counters, strategies' state, today's
        KPIs and every timer with its deadline, and names the format version and the
        config it fits (msgpack; see `omniroute.router.snapshot`).
        """
        return dump(self)

    def rebuild(self, events: Iterable[ev.Event], *, snapshot: bytes | None = None) -> None:
        """Bring a freshly built router to the state the stored events describe, then
        resume routing from there (what resuming decides waits in `outbox`).

        Without `snapshot`, `events` is the whole log. With `snapshot` (bytes from
        `snapshot()`, taken after event N), `events` is the log after event N only; the
        result is the same as replaying the whole log. A snapshot of another format
        version, taken with another config (queues, the config's agents, `[routing]`,
        queue selection) or damaged raises SnapshotError saying why, before any event
        is applied, and leaves this router as it was built: rebuild from the whole log.
        """
        if snapshot is not None:
            load(self, snapshot)
        self._replay(events)
        for queue in self.queues.values():
            self._note_closing(queue)
        self.outbox.clear()
        self._requeued.clear()
        self._released.clear()
        self._tick()
        self._requeued.extend(w for w in self.active.values() if w.ix.state is WAITING)
        self._released.extend(self.agents.values())
        self._settle()

    def follow(self, events: Iterable[ev.Event], *, snapshot: bytes | None = None) -> None:
        """Apply events another router decided (a cluster leader's, from the log): the
        state follows them exactly, but this router decides nothing of its own, emits
        nothing and arms no timer, so it serves reads only (a follower's read model).
        Once following, a router stays passive: to route, build a new one and `rebuild`.
        """
        if not self._passive:
            if snapshot is not None:
                load(self, snapshot)  # SnapshotError leaves the router as built
            self._passive = True
            self._timers.clear()
            for queue in self.queues.values():
                lanes = queue.lanes
                for lane in (lanes.sla, lanes.offer, lanes.wrap, lanes.preferred, lanes.max_wait):
                    lane.clear()
                for lane in lanes.ladder:
                    lane.clear()
        try:
            self._replay(events)
        finally:
            self.outbox.clear()
            self._requeued.clear()
            self._released.clear()

    def _replay(self, events: Iterable[ev.Event]) -> None:
        """Apply stored events to the state: appliers only, no decision."""
        self._replaying = True
        try:
            with paused_gc():
                appliers = self._appliers
                for event in events:
                    if event.at > self.now:
                        self.now = event.at
                    apply = appliers.get(type(event))
                    if apply is not None:
                        apply(event)
        finally:
            self._replaying = False

    # ================================================================== decisions

    def _emit(self, event: ev.Event) -> None:
        """Emit an event: queue it for the store and apply it. The events of every
        contact (queued, offered, assigned, completed, wrap-up ended) do the same inline
        with a direct call to their applier (a native call in the compiled router)."""
        self.outbox.append(event)
        self._appliers[type(event)](event)

    def _match(self, w: Waiting, trigger: str) -> None:
        """Offer a waiting interaction to the best available agent(s), if any."""
        if w.ix.state is not WAITING:
            return
        if w.preferred_until > self.now and w.ix.preferred_agent:
            agent = self.agents.get(w.ix.preferred_agent)
            if agent is not None and agent.can_take(w.ix.channel):
                note = f"preferred agent, reserved until {w.preferred_until:.0f}"
                self._make_offer(w, agent, self._single(w, agent, trigger, note))
            return
        channel = w.ix.channel
        if not self._free.get(channel):
            return  # nobody anywhere can take one more on this channel
        excluded = w.declined
        best: tuple[Any, AgentStatus, Bucket] | None = None
        considered: list[tuple[Any, AgentStatus]] = []
        pool: dict[str, AgentStatus] | None = None  # free agents, for ring-all and scanning
        pool_strategy: Strategy | None = None
        queue_name = None
        for bucket in w.buckets:
            if bucket.queue.name != queue_name:
                if best is not None or pool:
                    break  # the interaction's own queue first, overflow queues after
                queue_name = bucket.queue.name
            strategy = bucket.queue.strategy
            heap_key = (channel, strategy)
            for profile in bucket.profiles:
                if not profile.free.get(channel):
                    continue
                if profile.dirty:
                    self._flush(profile)
                heap = profile.heap_index.get(heap_key) or self._heap(profile, channel, strategy)
                if strategy.ring_all or strategy.scan:
                    if pool is None:
                        pool = {}
                    for agent in _live_agents(heap, excluded):
                        pool[agent.id] = agent
                    pool_strategy = strategy
                    continue
                entry = _top(heap, excluded)
                if entry is None:
                    continue
                key = (bucket.group_keys[profile.id], entry[0])
                considered.append((key, entry[3]))
                if best is None or key < best[0]:
                    best = (key, entry[3], bucket)
        if pool and pool_strategy is not None:
            agents = sorted(pool.values(), key=lambda a: a.ordinal)
            if pool_strategy.ring_all:
                for agent in agents:
                    note = f"ring-all: {len(agents)} agents"
                    self._make_offer(w, agent, self._single(w, agent, trigger, note))
            else:
                # The offer number makes the choice repeatable from the log.
                agent = pool_strategy.choose(agents, w.id, self._offer_count)
                note = f"chosen among {len(agents)} free agents"
                self._make_offer(w, agent, self._single(w, agent, trigger, note))
            return
        if best is None:
            return
        key, agent, bucket = best
        if len(considered) == 1:  # the usual case: one profile qualifies
            candidates = [Candidate(agent.id, key)]
        else:
            considered.sort(key=lambda c: c[0])
            seen: set[str] = set()
            candidates = []
            for k, a in considered:  # an agent may qualify through several buckets: once
                if a.id not in seen:
                    seen.add(a.id)
                    candidates.append(Candidate(a.id, k))
                    if len(candidates) == _MAX_CANDIDATES:
                        break
        explanation = Explanation(
            strategy=bucket.queue.strategy.name,
            requirement=bucket.requirement,
            candidates=candidates,
            excluded=sorted(excluded) if excluded else [],
            trigger=trigger,
            note="" if bucket.queue is w.queue else f"overflow to {bucket.queue.name}",
        )
        self._make_offer(w, agent, explanation)

    def _pull(self, agent: AgentStatus) -> None:
        """A freed agent takes the next interaction among all the queues they serve."""
        profile = agent.profile
        if profile is None:
            return
        by_channel = self._buckets_for(profile)
        key = self.selector.key
        agent_id = agent.id
        while agent.free:  # the channels the agent can take one more on (kept by _touch)
            if agent.reserved:
                chosen = self._reserved_for(agent)
                if chosen is not None:
                    note = "reserved for this agent (preferred or transferred)"
                    explanation = self._single(chosen, agent, "agent-free", note)
                    self._make_offer(chosen, agent, explanation)
                    continue
            best = best_key = best_bucket = None
            now = self.now
            for channel in agent.free:
                for bucket in by_channel.get(channel, ()):
                    tail = bucket.tail
                    w: Waiting | None
                    if tail and not bucket.heap:  # the usual case: all in arrival order
                        w = tail[0]
                        if w.version != bucket.tail_versions[0]:
                            w = bucket.head()
                    else:
                        w = bucket.head()
                    if w is None:
                        continue
                    if w.declined and agent_id in w.declined:
                        w = _head_excluding(bucket, agent_id)
                        if w is None:
                            continue
                    k = key(w, now)
                    if best_key is None or k < best_key:
                        best, best_key, best_bucket = w, k, bucket
            if best is None or best_bucket is None:
                return
            note = best_bucket.pull_note or f"the agent's next interaction by {self.selector.name}"
            best_bucket.pull_note = note
            explanation = Explanation(
                strategy=best_bucket.queue.strategy.name,
                requirement=best_bucket.requirement,
                candidates=[Candidate(agent_id, None)],
                trigger="agent-free",
                note=note,
            )
            self._make_offer(best, agent, explanation)

    def _reserved_for(self, agent: AgentStatus) -> Waiting | None:
        """The first in line of the interactions reserved for this agent that they can
        take now."""
        live = [
            w
            for w in agent.reserved
            if w.ix.state is WAITING
            and w.ix.preferred_agent == agent.id
            and w.preferred_until > self.now
        ]
        agent.reserved[:] = live
        takeable = [w for w in live if agent.can_take(w.ix.channel)]
        # The first in line, whatever the order they were reserved in.
        return min(takeable, key=lambda w: (w.order_key, w.seq)) if takeable else None

    def _single(self, w: Waiting, agent: AgentStatus, trigger: str, note: str) -> Explanation:
        return Explanation(
            strategy=w.queue.strategy.name,
            requirement=w.requirements[0][1] if w.requirements else {},
            candidates=[Candidate(agent.id, None)],
            trigger=trigger,
            note=note,
        )

    def _make_offer(self, w: Waiting, agent: AgentStatus, explanation: Explanation) -> None:
        self._offer_count += 1
        oid = f"o{self._offer_count}"
        expires = self.now + w.queue.offer_timeout
        offered = OFFERED_EVENT(
            at=self.now,
            offer_id=oid,
            interaction_id=w.id,
            agent_id=agent.id,
            expires_at=expires,
            explanation=explanation,
        )
        self.outbox.append(offered)
        self._offered(offered, w, agent)  # `_emit`, direct, with what it would look up

    def _end_wrap_up(self, w: Waiting, agent: AgentStatus) -> None:
        ended = WRAP_UP_ENDED_EVENT(at=self.now, interaction_id=w.id, agent_id=agent.id)
        self.outbox.append(ended)
        self._on_wrap_up_ended(ended)  # `_emit`, direct

    def _withdraw(self, w: Waiting, reason: str) -> None:
        """Withdraw every pending offer of `w` (ring-all losers, a customer who left)."""
        for agent_id, offer_id in list(w.offers.items()) if w.offers else ():
            self._emit(
                ev.OfferRevoked(
                    at=self.now,
                    offer_id=offer_id,
                    interaction_id=w.id,
                    agent_id=agent_id,
                    reason=reason,
                )
            )

    def _revoke_offers(self, agent: AgentStatus, reason: str) -> None:
        for offer in list(agent.offers.values()):
            w = offer.waiting
            self._emit(
                ev.OfferRevoked(
                    at=self.now,
                    offer_id=offer.id,
                    interaction_id=w.id,
                    agent_id=agent.id,
                    reason=reason,
                )
            )
            self._requeued.append(w)

    def _settle(self) -> None:
        """After a command or a timer: match what went back in line, then let every agent
        whose capacity was freed pull new work. This is what keeps the invariant that no
        ready agent idles while an interaction they could take is waiting."""
        requeued, released = self._requeued, self._released
        while requeued or released:
            while requeued:
                w = requeued.pop()
                if w.ix.state is WAITING:
                    self._match(w, "requeue")
            while released:
                self._pull(released.pop())
        if self._timers and self._timers[0].due <= self.now and not self._firing:
            self._tick()  # a timer re-armed in the past (a rung due while it rang) fires now

    def _apply_action(self, w: Waiting, action: Action, reason: str) -> None:
        if action.action is ActionKind.KEEP:
            return
        self._emit(
            ev.ActionApplied(
                at=self.now, interaction_id=w.id, queue=w.queue.name, reason=reason, action=action
            )
        )
        if action.action is ActionKind.CALLBACK:
            self._emit(ev.CallbackOffered(at=self.now, interaction_id=w.id))
        elif action.action in (ActionKind.CLOSE, ActionKind.VOICEMAIL):
            self._withdraw(w, "closed")
            self._emit(
                ev.Closed(
                    at=self.now,
                    interaction_id=w.id,
                    reason=reason if action.action is ActionKind.CLOSE else "voicemail",
                    message=action.message,
                )
            )
            self._settle()
        elif action.action is ActionKind.OVERFLOW:
            self._match(w, reason)

    # ================================================================== timers

    def _offer_expired(self, offer_id: str) -> None:
        offer = self.offers.get(offer_id)
        if offer is None:
            return
        w, agent = offer.waiting, offer.agent
        self._emit(
            ev.OfferMissed(at=self.now, offer_id=offer_id, interaction_id=w.id, agent_id=agent.id)
        )
        if agent.missed_in_row >= self.routing.max_missed_offers and (agent.presence is READY):
            self._revoke_offers(agent, "agent not ready")
            self._emit(
                ev.AgentStateChanged(
                    at=self.now,
                    agent_id=agent.id,
                    presence=NOT_READY,
                    reason=self.routing.missed_offers_reason,
                )
            )
        if w.ix.state is WAITING:
            self._match(w, "offer missed")

    def _wrap_up_due(self, w: Waiting) -> None:
        # One wrap-up per contact: a contact completes once, and its wrap-up timer is
        # due when it ends (`ix.ended_at`) unless the agent ended it early.
        ix = w.ix
        if ix.state is WRAP_UP and ix.agent:
            self._end_wrap_up(w, self.agents[ix.agent])

    def _ladder_due(self, w: Waiting) -> None:
        """The contact's next rung is due: it has not moved on since it was armed (another
        queue, a new segment, the rung applied), or `_fire` would not call this."""
        index = w.ladder_index
        if w.ix.state not in (WAITING, OFFERED):
            return  # assigned: re-armed if it comes back to the queue
        if index >= len(w.queue.ladder):
            return  # the queue's ladder was shortened since
        step = w.queue.ladder[index]
        self._emit(
            ev.EscalationApplied(
                at=self.now, interaction_id=w.id, queue=w.queue.name, index=index, step=step
            )
        )
        if step.callback:
            self._emit(ev.CallbackOffered(at=self.now, interaction_id=w.id))
        if step.notify:
            waited = self._wait(w, self.now)
            self._emit(
                ev.SlaAtRisk(at=self.now, interaction_id=w.id, queue=w.queue.name, waited=waited)
            )
        self._match(w, "escalation")

    def _sla_due(self, w: Waiting) -> None:
        state = w.ix.state
        if w.sla_queue.first_response:
            pending = state in (WAITING, OFFERED, ASSIGNED)  # no one wrote back yet
        else:
            pending = state in (WAITING, OFFERED)
        if pending and not w.answered and not w.breached:
            breached = BREACHED_EVENT(at=self.now, interaction_id=w.id, queue=w.sla_queue.name)
            self.outbox.append(breached)
            self._breached(w, self.now)  # `_emit`, direct, with the contact at hand

    def _max_wait_due(self, pair: tuple[Waiting, float]) -> None:
        w, segment = pair
        # Ringing or assigned at that moment: re-armed if it comes back to the queue.
        if w.ix.state is WAITING and w.segment_start == segment and not w.maxed:
            self._apply_action(w, w.queue.config.on_max_wait, "max_wait")

    def _preference_due(self, w: Waiting) -> None:
        if w.ix.state is WAITING and w.preferred_until and w.preferred_until <= self.now:
            self._enqueue(w)
            self._match(w, "preference expired")

    def _hours_changed(self, name: str) -> None:
        queue = self.queues.get(name)
        if queue is None or queue.calendar is None:
            return  # removed, or its hours were taken away since
        self._at(queue.calendar.next_change(self.now + 1e-6), self._hours_changed, name)
        if queue.calendar.is_open(self.now):
            return
        queue.closed_since = self.now
        for w in list(queue.waiting.values()):
            self._closed_check(w)

    def _note_closing(self, queue: QueueRuntime) -> None:
        """If the queue is closed now, when it closed: derived from its calendar, so a
        router rebuilt after a restart knows it as well as one that saw it close."""
        calendar = queue.calendar
        if calendar is not None and not calendar.is_open(self.now):
            queue.closed_since = calendar.last_close(self.now)

    def _closed_check(self, w: Waiting) -> None:
        """Apply the closed action to a waiting interaction once per closing (one that was
        ringing at closing time gets it when it comes back to the queue)."""
        queue = w.queue
        if (
            w.ix.state is WAITING
            and queue.calendar is not None
            and w.closed_handled < queue.closed_since
            and not queue.calendar.is_open(self.now)
        ):
            self._apply_action(w, queue.config.hours.closed, "closed")  # type: ignore[union-attr]

    # ================================================================== appliers
    # Each applies one event to the state. No decisions here: rebuild runs these alone.

    def _on_queued(self, e: ev.InteractionQueued) -> None:
        ix = e.interaction
        if ix.id in self.active:
            return
        ix = msgspec.structs.replace(ix)  # the event stays a snapshot
        at = e.at  # read once (see _offered)
        queue = self.queues[ix.queue]
        self._arrivals += 1
        w = Waiting(ix, queue, self._arrivals)
        iid = w.id
        self.active[iid] = w
        queue.waiting[iid] = w
        (queue.stats if at < queue.stats_until else self._stats(queue, at)).on_offered()
        self._set_requirements(w)
        w.sla_deadline = due = self._after(queue, w.enqueued_at, queue.sla_seconds)
        w.sla_seq = self._arm_record(due, w, queue.lanes.sla, self._sla_timer, w)
        self._arm_segment(w, at)
        if queue.preferred_agent_wait > 0 and ix.preferred_agent:
            w.preferred_until = at + queue.preferred_agent_wait
        self._enqueue(w)

    def _on_offered(self, e: ev.Offered) -> None:
        self._offered(e, self.active[e.interaction_id], self.agents[e.agent_id])

    def _offered(self, e: ev.Offered, w: Waiting, agent: AgentStatus) -> None:
        """`_on_offered` with the contact and the agent at hand: the router that made
        the offer has them, and with 50,000 contacts a lookup by id reaches memory that
        the cache no longer holds (docs/performance.md)."""
        # An event's fields read once each: from compiled code each read of a Struct's
        # field is a generic attribute lookup (docs/performance.md).
        oid, expires = e.offer_id, e.expires_at
        ix = w.ix
        if ix.state is WAITING:
            w.version += 1
            ix.state = OFFERED
        offer = PendingOffer(oid, w, agent, expires)
        self.offers[oid] = offer
        agent.offers[oid] = offer
        if w.offers is None:
            w.offers = {agent.id: oid}
        else:
            w.offers[agent.id] = oid
        self._load(agent, offer.channel, +1)
        on_offer = w.queue.on_offer
        if on_offer is not None:
            on_offer(agent)
        self._touch(agent)
        lane = w.queue.lanes.offer
        offer.seq = self._arm_record(expires, offer, lane, self._offer_timer, oid)
        if self._replaying:  # continue numbering after the offers in the log
            n = oid[1:]
            if n.isdigit() and int(n) > self._offer_count:
                self._offer_count = int(n)

    def _on_declined(self, e: ev.OfferDeclined) -> None:
        self.offers[e.offer_id].agent.missed_in_row = 0  # an answer, if a "no"
        self._drop_offer(e.offer_id, decliner=True)

    def _on_missed(self, e: ev.OfferMissed) -> None:
        agent = self.offers[e.offer_id].agent
        agent.missed_in_row += 1
        self._drop_offer(e.offer_id, decliner=True)

    def _on_revoked(self, e: ev.OfferRevoked) -> None:
        self._drop_offer(e.offer_id, decliner=False)

    def _on_assigned(self, e: ev.Assigned) -> None:
        self._assigned(e, self.active[e.interaction_id], self.agents[e.agent_id])

    def _assigned(self, e: ev.Assigned, w: Waiting, agent: AgentStatus) -> None:
        """`_on_assigned` with the contact and the agent at hand (see `_offered`)."""
        at, offer_id = e.at, e.offer_id  # read once each (see _offered)
        if offer_id is not None:
            del self.offers[offer_id]
            del agent.offers[offer_id]
            offers = w.offers
            assert offers is not None
            del offers[agent.id]
            if not offers:
                w.offers = None
        else:  # a supervisor's direct assignment: take the capacity now
            w.version += 1
            self._load(agent, w.ix.channel, +1)
        ix = w.ix
        ix.state = ASSIGNED
        ix.agent = agent.id
        w.declined = None
        w.preferred_until = 0.0
        w.assigned_at = at
        if ix.answered_at is None:
            ix.answered_at = at
            if not w.sla_queue.first_response:
                w.answered = True
                _today(w.sla_queue, at, self).on_answered(self._wait(w, at))
        agent.work.add(w.id)
        agent.answered += 1
        agent.missed_in_row = 0
        customer = ix.customer
        if customer is not None:
            self.last_agent[customer.id] = agent.id
        if offer_id is None:
            self._touch(agent)
        else:
            self._rekey(agent)  # the offer held the capacity already

    def _on_outbound(self, e: ev.OutboundStarted) -> None:
        """An agent's outbound contact: theirs at once, in its queue's list of live
        interactions (so a transfer or a queue's removal sees it) but never in line, with
        no SLA timer and no count in the queue's inbound figures."""
        ix = e.interaction
        if ix.id in self.active:
            return
        ix = msgspec.structs.replace(ix)  # the event stays a snapshot
        queue = self.queues[ix.queue]
        agent = self.agents[e.agent_id]
        self._arrivals += 1
        w = Waiting(ix, queue, self._arrivals)
        self.active[ix.id] = w
        queue.waiting[ix.id] = w
        self._set_requirements(w)  # for a transfer to a colleague or back to a queue
        w.answered = True
        w.assigned_at = e.at
        w.sla_deadline = e.at
        self._load(agent, ix.channel, +1)
        agent.work.add(ix.id)
        _today(queue, e.at, self).outbound += 1
        if ix.customer is not None:
            self.last_agent[ix.customer.id] = agent.id
        self._touch(agent)

    def _on_message(self, e: ev.MessageAdded) -> None:
        w = self.active.get(e.message.interaction_id)
        if w is None or w.ix.first_response_at is not None:
            return
        if not e.message.sender.startswith(("agent:", "supervisor:")):
            return
        w.ix.first_response_at = e.at
        sla_queue = w.sla_queue
        if sla_queue.first_response and not w.answered:
            w.answered = True
            _today(sla_queue, e.at, self).on_answered(self._wait(w, e.at))

    def _on_requeued(self, e: ev.Requeued) -> None:
        w = self.active[e.interaction_id]
        self._leave_agent(w, e.at)
        w.ix.state = WAITING
        self._enqueue(w)
        self._arm_waiting_timers(w)

    def _on_transferred(self, e: ev.Transferred) -> None:
        w = self.active[e.interaction_id]
        self._leave_agent(w, e.at)
        ix = w.ix
        if e.to_queue is not None:
            queue = self.queues[e.to_queue]
            del w.queue.waiting[ix.id]
            w.queue = queue
            queue.waiting[ix.id] = w
            ix.queue = queue.name
            w.relax = 0
            self._set_requirements(w)
            # The SLA stays the first queue's (its deadline, measure and service level),
            # as the place in line does: docs/routing.md, "Service levels".
            self._arm_segment(w, e.at)
        else:
            self._arm_waiting_timers(w)
        ix.state = WAITING
        w.declined = None
        if e.to_agent is not None:
            ix.preferred_agent = e.to_agent
            config = w.queue.config
            w.preferred_until = e.at + max(config.preferred_agent_wait, config.offer_timeout)
        self._enqueue(w)

    def _on_abandoned(self, e: ev.Abandoned) -> None:
        w = self.active[e.interaction_id]
        self._release_offers(w)
        if w.ix.direction is not OUTBOUND:  # an outbound one transferred to a queue
            _today(w.queue, e.at, self).on_abandoned(self._wait(w, e.at))
        self._end(w, ABANDONED, e.at)

    def _on_completed(self, e: ev.Completed) -> None:
        w = self.active[e.interaction_id]
        agent = self.agents[e.agent_id]
        w.ix.state = WRAP_UP
        w.ix.ended_at = e.wrap_up_until
        if e.outcome is not None:
            w.ix.outcome = e.outcome
        agent.talk_time += e.at - w.assigned_at
        self._rekey(agent)  # talk time is part of some strategies' keys
        self._at(e.wrap_up_until, self._wrap_timer, w, w.queue.lanes.wrap)

    def _on_wrap_up_ended(self, e: ev.WrapUpEnded) -> None:
        w = self.active[e.interaction_id]
        stats = _today(w.queue, e.at, self)
        if w.ix.direction is OUTBOUND:
            stats.on_outbound_completed(e.at - w.assigned_at, w.ix.outcome)
        else:
            stats.on_completed(e.at - w.assigned_at)
        self._leave_agent(w, e.at)
        self._end(w, COMPLETED, e.at)

    def _on_closed(self, e: ev.Closed) -> None:
        w = self.active[e.interaction_id]
        self._release_offers(w)
        if w.ix.direction is not OUTBOUND:
            _today(w.queue, e.at, self).closed += 1
        self._end(w, CLOSED, e.at)

    def _on_callback_requested(self, e: ev.CallbackRequested) -> None:
        self.active[e.interaction_id].ix.callback = e.number

    def _on_escalated(self, e: ev.EscalationApplied) -> None:
        w = self.active[e.interaction_id]
        step = e.step
        w.ladder_index = e.index + 1
        w.ladder_seq = 0  # the next rung, armed below
        w.declined = None  # a new rung is a new chance for agents who passed on it
        if step.relax:
            w.relax += step.relax
        if step.priority is not None and step.priority > w.ix.priority:
            w.ix.priority = step.priority
        extra: list[tuple[QueueRuntime, dict[str, int]]] = []
        if step.fallback:
            extra.append((w.queue, {**step.fallback, **w.ix.skills}))
        if step.overflow and step.overflow in self.queues:
            target = self.queues[step.overflow]
            extra.append((target, {**target.config.skills, **w.ix.skills}))
        self._set_requirements(w, extra)
        self._arm_ladder(w)
        if w.ix.state is WAITING:
            self._enqueue(w)

    def _on_action(self, e: ev.ActionApplied) -> None:
        w = self.active[e.interaction_id]
        if e.reason == "max_wait":
            w.maxed = True
        elif e.reason == "closed":
            w.closed_handled = e.at
        if e.action.action is ActionKind.OVERFLOW and e.action.queue in self.queues:
            target = self.queues[e.action.queue]
            self._set_requirements(w, [(target, {**target.config.skills, **w.ix.skills})])
            if w.ix.state is WAITING:
                self._enqueue(w)

    def _on_breached(self, e: ev.SlaBreached) -> None:
        self._breached(self.active[e.interaction_id], e.at)

    def _breached(self, w: Waiting, at: float) -> None:
        """`_on_breached` with the contact at hand: its SLA timer is the contact
        (see `_offered`)."""
        w.breached = True
        _today(w.sla_queue, at, self).breached += 1

    def _on_agent_state(self, e: ev.AgentStateChanged) -> None:
        agent = self.agents[e.agent_id]
        was = agent.presence
        agent.presence = e.presence
        agent.reason = e.reason
        agent.state_since = e.at
        if e.presence is READY:
            agent.missed_in_row = 0
            if was is not READY and agent.total_load == 0:
                agent.idle_since = e.at
        elif e.presence is OFFLINE and agent.reserved:
            # A preferred agent who left: their reserved interactions route normally.
            for w in agent.reserved:
                if w.ix.state is WAITING and w.ix.preferred_agent == agent.id:
                    w.preferred_until = 0.0
                    self._enqueue(w)
                    self._requeued.append(w)
            agent.reserved.clear()
        self._touch(agent)

    def _on_agent_configured(self, e: ev.AgentConfigured) -> None:
        config = e.agent
        agent = self.agents.get(config.id)
        if agent is None:
            agent = AgentStatus(config, self._ordinals, e.at)
            self._ordinals += 1
            self.agents[config.id] = agent
        else:
            self._leave_profile(agent)
            agent.config = config
            agent.exclusive = frozenset(config.exclusive)
            agent.exclusive_load = sum(n for c, n in agent.load.items() if c in agent.exclusive)
            agent.total_capacity = sum(config.capacity.values())
            for channel in config.capacity:
                agent.load.setdefault(channel, 0)
        queues = tuple(sorted(config.queues)) if config.queues is not None else None
        profile = self._profile(config.skills, queues)
        profile.agents[agent.id] = agent
        agent.profile = profile
        self._touch(agent)

    def _on_queue_configured(self, e: ev.QueueConfigured) -> None:
        self._configure_queue(e.queue)

    def _on_queue_removed(self, e: ev.QueueRemoved) -> None:
        queue = self.queues.pop(e.queue)
        self.stats.pop(e.queue, None)
        self._drop_queue_timers(queue)
        for key in [k for k, b in self.buckets.items() if b.queue is queue]:
            del self.buckets[key]
        self._profile_buckets.clear()
        self._forget_strategy(queue.strategy)
        for w in self.active.values():  # an overflow a rung had added to it ends here
            if any(q is queue for q, _ in w.requirements[1:]):
                extra = [r for r in w.requirements[1:] if r[0] is not queue]
                w.requirements = []
                self._set_requirements(w, extra)
                if w.ix.state is S.WAITING and not w.preferred_until:
                    self._enqueue(w)

    def _on_agent_removed(self, e: ev.AgentRemoved) -> None:
        agent = self.agents.pop(e.agent_id)
        self._leave_profile(agent)
        agent.version += 1

    # ================================================================== queues

    def _strategy_spec(self, queue: Queue) -> StrategySpec:
        strategies = self._init_args["strategies"]
        spec = strategies.get(queue.strategy)
        if spec is None:
            known = ", ".join(sorted(strategies))
            raise RouterError(
                f'queue "{queue.name}": unknown strategy "{queue.strategy}"; installed: {known}'
            )
        return spec

    def _make_strategy(self, queue: Queue) -> Strategy:
        spec = self._strategy_spec(queue)
        if spec.section is None:
            return spec.factory(queue, self.routing)
        # A strategy with settings: its [plugins.<section>] table, decoded.
        settings = (self._init_args["plugin_config"] or {}).get(spec.section)
        return spec.factory(queue, self.routing, settings)

    def _configure_queue(self, config: Queue) -> None:
        """Build a queue, or apply a new config to one in place: interactions in it keep
        their place in line and move to the requirement, order and escalation ladder of
        the new config; timers already armed (SLA breach, max wait) keep their deadlines."""
        strategy = self._make_strategy(config)
        calendar = Calendar(config.hours) if config.hours else None
        queue = self.queues.get(config.name)
        if queue is None:
            queue = self.queues[config.name] = QueueRuntime(config, strategy, calendar)
        else:
            old = queue.strategy
            if type(old) is type(strategy) and hasattr(strategy, "restore_state"):
                strategy.restore_state(old.snapshot_state())  # type: ignore[attr-defined]
            self._drop_queue_timers(queue, keep_lanes=True)
            queue.set_config(config)
            queue.strategy, queue.calendar = strategy, calendar
            queue.on_offer = offer_hook(strategy)
            queue.plain_buckets.clear()
            if queue.stats is not None:  # today's service level, against the new SLA
                queue.stats.threshold = config.sla.seconds
                queue.stats.target = config.sla.target
            for bucket in self.buckets.values():
                if bucket.queue is queue:
                    bucket.group_keys = {
                        p.id: strategy.group_key(p.skills, bucket.requirement)
                        for p in bucket.profiles
                    }
                    bucket.pull_note = None
            if old is not strategy:
                self._forget_strategy(old)
            self._rearm_ladders(queue)
        if calendar is not None:
            self._at(calendar.next_change(self.now), self._hours_changed, config.name)
            self._note_closing(queue)

    def _rearm_ladders(self, queue: QueueRuntime) -> None:
        """New ladder lanes, then each live interaction of the queue re-placed in line
        (new skills, priority, aging) with its next rung armed from the new ladder."""
        queue.lanes.ladder = [deque() for _ in queue.ladder]
        live = sorted(queue.waiting.values(), key=lambda w: w.seq)
        for w in live:
            extra = w.requirements[1:]
            w.requirements = []
            self._set_requirements(w, extra)
            w.ladder_seq = 0  # its rung went with the old lanes (_drop_queue_timers)
            self._arm_ladder(w)
            if w.ix.state is S.WAITING and not w.preferred_until:
                self._enqueue(w)

    def _drop_queue_timers(self, queue: QueueRuntime, *, keep_lanes: bool = False) -> None:
        """Take the queue's opening-hours and escalation timers out (and its other lanes
        unless `keep_lanes`): a new config arms its own."""
        lanes = {id(lane) for lane in queue.lanes.ladder}
        if not keep_lanes:
            lanes.update(id(lane) for lane in _queue_lanes(queue))
        name = queue.name
        hours, ladder = self._hours_changed, self._ladder_timer

        def stays(timer: Timer) -> bool:
            fn, arg = timer.fn, timer.arg
            if fn is None:
                return id(arg) not in lanes
            if fn == ladder:  # a rung armed out of its lane's order
                return arg.queue is not queue
            return not (fn == hours and arg == name)

        kept = [t for t in self._timers if stays(t)]
        if len(kept) != len(self._timers):
            heap_make(kept)
            self._timers[:] = kept

    def _forget_strategy(self, strategy: Strategy) -> None:
        """Drop agents' heaps kept for a strategy no queue uses any more."""
        if any(q.strategy is strategy for q in self.queues.values()):
            return
        for profile in self.profiles.values():
            for channel, heaps in profile.heaps.items():
                heaps[:] = [(s, h) for s, h in heaps if s is not strategy]
                profile.heap_index.pop((channel, strategy), None)

    # ================================================================== helpers

    def _get(self, interaction_id: str, *states: InteractionState) -> Waiting:
        w = self.active.get(interaction_id)
        if w is None:
            raise RouterError(f'no active interaction "{interaction_id}"')
        if w.ix.state not in states:
            wanted = " or ".join(s.value for s in states)
            raise RouterError(f'interaction "{interaction_id}" is {w.ix.state.value}, not {wanted}')
        return w

    def _queue_of(self, interaction: Interaction, where: str) -> QueueRuntime:
        """The queue a new interaction names, which must take its channel; and its id
        must be new."""
        queue = self.queues.get(interaction.queue)
        if queue is None:
            raise RouterError(
                f'{where}: unknown queue "{interaction.queue}"; '
                f"queues: {', '.join(sorted(self.queues))}"
            )
        allowed = queue.channels
        if allowed is not None and interaction.channel not in allowed:
            raise RouterError(
                f'{where}: queue "{queue.name}" does not take '
                f'channel "{interaction.channel}" (it takes {", ".join(allowed)})'
            )
        if interaction.id in self.active:
            raise RouterError(f'interaction "{interaction.id}" is already in the router')
        return queue

    def _agent(self, agent_id: str) -> AgentStatus:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise RouterError(f'unknown agent "{agent_id}"')
        return agent

    def _agent_of(self, w: Waiting, agent_id: str | None) -> AgentStatus:
        if agent_id is not None and w.ix.agent != agent_id:
            raise RouterError(f'interaction "{w.id}" is not assigned to agent "{agent_id}"')
        assert w.ix.agent is not None
        return self.agents[w.ix.agent]

    def _offer(self, offer_id: str, agent_id: str | None) -> PendingOffer:
        offer = self.offers.get(offer_id)
        if offer is None:
            raise RouterError(f'no pending offer "{offer_id}" (it expired or was withdrawn)')
        if agent_id is not None and offer.agent.id != agent_id:
            raise RouterError(f'offer "{offer_id}" is not for agent "{agent_id}"')
        return offer

    def _load(self, agent: AgentStatus, channel: str, delta: int) -> None:
        agent.load[channel] = agent.load.get(channel, 0) + delta
        agent.total_load += delta
        if channel in agent.exclusive:
            agent.exclusive_load += delta

    def _touch(self, agent: AgentStatus) -> None:
        """The agent changed: stale their heap entries, recount the channels they can take
        one more on, and push fresh entries there. (`AgentStatus.can_take`, inlined.)"""
        agent.version += 1
        profile = agent.profile
        if profile is None:
            return
        free, total = profile.free, self._free
        # The agent's own list, refilled in place: a new list per change would live
        # until the agent's next change, long enough with 10,000 agents for the garbage
        # collector to scan each (docs/performance.md).
        channels = agent.free
        for channel in channels:
            free[channel] -= 1
            total[channel] -= 1
        channels.clear()
        if agent.presence is not READY or agent.exclusive_load:
            return
        capacity = agent.config.capacity
        if agent.total_load == 0:
            for c, n in capacity.items():
                if n > 0:
                    channels.append(c)
        else:
            load, exclusive = agent.load, agent.exclusive
            for c, n in capacity.items():
                if load.get(c, 0) < n and c not in exclusive:
                    channels.append(c)
        for channel in channels:
            free[channel] = free.get(channel, 0) + 1
            total[channel] = total.get(channel, 0) + 1
        if channels and profile.heaps:
            self._push_later(profile, agent)

    def _rekey(self, agent: AgentStatus) -> None:
        """The agent's counters changed but not what they can take: `_touch` without
        recounting (stale their heap entries, push them again at the next match)."""
        agent.version += 1
        profile = agent.profile
        if agent.free and profile is not None and profile.heaps:
            self._push_later(profile, agent)

    def _push_later(self, profile: Profile, agent: AgentStatus) -> None:
        """Into the heaps when a match next reads them: an agent freed and busy again in
        the same command (the usual case with contacts waiting) costs no heap push."""
        dirty = profile.dirty
        dirty.append(agent)
        if len(dirty) > 2 * len(profile.agents) + 32:
            self._flush(profile)

    def _flush(self, profile: Profile) -> None:
        """Push the agents that changed since the last match into the profile's heaps,
        keyed as they are now, once each."""
        dirty, profile.dirty = profile.dirty, []
        heaps_by_channel = profile.heaps
        limit = 4 * len(profile.agents) + 32
        for agent in dirty:
            version = agent.version
            if agent.pushed == version or agent.profile is not profile:
                continue
            agent.pushed = version
            ordinal = agent.ordinal
            for channel in agent.free:
                for strategy, heap in heaps_by_channel.get(channel, ()):
                    heapq.heappush(heap, (strategy.agent_key(agent), ordinal, version, agent))
                    if len(heap) > limit:
                        live = [x for x in heap if x[3].version == x[2]]
                        heapq.heapify(live)
                        heap[:] = live

    def _leave_profile(self, agent: AgentStatus) -> None:
        profile = agent.profile
        if profile is not None:
            profile.agents.pop(agent.id, None)
            for channel in agent.free:
                profile.free[channel] -= 1
                self._free[channel] -= 1
        agent.free = []
        agent.profile = None

    def _heap(self, profile: Profile, channel: str, strategy: Strategy) -> list[Any]:
        heaps = profile.heaps.get(channel)
        if heaps is None:
            heaps = profile.heaps[channel] = []
        for s, heap in heaps:
            if s is strategy:
                return heap
        heap = [
            (strategy.agent_key(a), a.ordinal, a.version, a)
            for a in profile.agents.values()
            if a.can_take(channel)
        ]
        heapq.heapify(heap)
        heaps.append((strategy, heap))
        profile.heap_index[(channel, strategy)] = heap
        return heap

    def _profile(self, skills: Mapping[str, int], queues: tuple[str, ...] | None) -> Profile:
        key = (skill_key(skills), queues)
        profile = self.profiles.get(key)
        if profile is None:
            profile = Profile(len(self.profiles), skills, queues)
            self.profiles[key] = profile
            for bucket in self.buckets.values():
                if profile.qualifies(bucket.queue.name, bucket.requirement):
                    bucket.profiles.append(profile)
                    bucket.group_keys[profile.id] = bucket.queue.strategy.group_key(
                        profile.skills, bucket.requirement
                    )
            self._profile_buckets.clear()
        return profile

    def _bucket(self, queue: QueueRuntime, channel: str, requirement: dict[str, int]) -> Bucket:
        key = (queue.name, channel, skill_key(requirement))
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = Bucket(queue, channel, requirement)
            strategy = queue.strategy
            for profile in self.profiles.values():
                if profile.qualifies(queue.name, requirement):
                    bucket.profiles.append(profile)
                    bucket.group_keys[profile.id] = strategy.group_key(profile.skills, requirement)
            self.buckets[key] = bucket
            self._profile_buckets.clear()
        return bucket

    def _buckets_for(self, profile: Profile) -> dict[str, list[Bucket]]:
        """The buckets a profile's agents may serve, by channel (cached until a new one)."""
        buckets = self._profile_buckets.get(profile.id)
        if buckets is None:
            buckets = {}
            for bucket in self.buckets.values():
                if profile in bucket.profiles:
                    buckets.setdefault(bucket.channel, []).append(bucket)
            self._profile_buckets[profile.id] = buckets
        return buckets

    def _set_requirements(
        self, w: Waiting, extra: Sequence[tuple[QueueRuntime, dict[str, int]]] = ()
    ) -> None:
        """Which (queue, skills) combinations may serve `w`: its own queue's first."""
        own = w.queue
        channel = w.ix.channel
        plain = not extra and not w.relax and not w.ix.skills
        if plain and not w.requirements:  # the common case: the queue's own skills only
            bucket = own.plain_buckets.get(channel)
            if bucket is None:
                bucket = own.plain_buckets[channel] = self._bucket(own, channel, own.config.skills)
            # Lists shared by every plain interaction of the bucket: never changed in place.
            w.requirements = own.plain_requirements
            w.buckets = bucket.alone
            return
        if not w.requirements or w.requirements[0][0] is not own:
            w.requirements = [(own, {**own.config.skills, **w.ix.skills})]
        w.requirements = w.requirements + [r for r in extra if r not in w.requirements]
        buckets = []
        for queue, requirement in w.requirements:
            allowed = queue.channels
            if allowed is not None and channel not in allowed:
                continue
            if queue is own and w.relax:
                requirement = {s: max(1, lvl - w.relax) for s, lvl in requirement.items()}
            bucket = self._bucket(queue, channel, requirement)
            if bucket not in buckets:
                buckets.append(bucket)
        buckets.sort(key=lambda b: b.queue is not own)
        w.buckets = buckets

    def _enqueue(self, w: Waiting) -> None:
        """(Re)place a waiting interaction in its buckets, at its original place."""
        w.version += 1
        queue = w.queue
        w.aging = aging = queue.aging
        w.rank = priority = queue.priority + w.ix.priority
        w.order_key = (
            w.enqueued_at - priority * aging if aging > 0 else w.enqueued_at - priority * 1e12
        )
        if w.preferred_until > self.now and w.ix.preferred_agent in self.agents:
            agent = self.agents[w.ix.preferred_agent]  # type: ignore[index]
            if agent.presence is not OFFLINE:
                agent.reserved.append(w)
                self._at(w.preferred_until, self._preference_timer, w, w.queue.lanes.preferred)
                return
        w.preferred_until = 0.0
        version = w.version
        for bucket in w.buckets:
            bucket.push(w, version)

    def _arm_segment(self, w: Waiting, at: float) -> None:
        w.segment_start = at
        w.ladder_index = 0
        w.ladder_seq = 0
        w.maxed = False
        self._arm_waiting_timers(w)

    def _arm_waiting_timers(self, w: Waiting) -> None:
        """The next escalation rung and max wait of the current segment. Called again when
        an interaction comes back to the queue: a rung or max wait that fell due while it
        was ringing or assigned applies then (a timer in the past fires at once)."""
        self._arm_ladder(w)
        queue = w.queue
        if queue.calendar is not None and w.closed_handled < queue.closed_since:
            self._at(self.now, self._closed_timer, w)
        max_wait = queue.max_wait
        if max_wait and not w.maxed:
            due = w.segment_start + max_wait
            self._at(due, self._max_wait_timer, (w, w.segment_start), w.queue.lanes.max_wait)

    def _arm_ladder(self, w: Waiting) -> None:
        """Arm the contact's next rung, unless it is armed already: a contact back in
        line (declined, requeued) keeps the timer it had, due at the same moment. The
        timer is the contact's: `ladder_seq` names it, and a timer it no longer names
        (another queue, a new segment, the next rung) is spent."""
        queue = w.queue
        ladder = queue.ladder
        index = w.ladder_index
        if w.ladder_seq == 0 and index < len(ladder):
            due = self._after(queue, w.segment_start, ladder[index].after)
            w.ladder_seq = self._at(due, self._ladder_timer, w, queue.lanes.ladder[index])

    def _after(self, queue: QueueRuntime, start: float, seconds: float) -> float:
        if queue.calendar is None:
            return start + seconds
        return queue.calendar.after_open(start, seconds)

    def _wait(self, w: Waiting, now: float) -> float:
        """Seconds waited on the SLA clock (which pauses outside the opening hours of the
        queue whose SLA it is)."""
        calendar = w.sla_queue.calendar
        if calendar is None:
            return now - w.enqueued_at
        return calendar.open_seconds(w.enqueued_at, now)

    def _stats(self, queue: QueueRuntime, at: float) -> QueueKpis:
        """Today's KPIs of a queue; a new day (in the queue's time zone) starts afresh."""
        if at < queue.stats_until:
            return queue.stats
        day, until = _day_of(queue, at)
        sla = queue.config.sla
        stats = QueueKpis(queue=queue.name, period=day, threshold=sla.seconds, target=sla.target)
        self.stats[queue.name] = queue.stats = stats
        queue.stats_until = until
        return stats

    def _drop_offer(self, offer_id: str, *, decliner: bool) -> None:
        offer = self.offers.pop(offer_id)
        w, agent = offer.waiting, offer.agent
        self._release(offer)
        if w.offers is not None:
            w.offers.pop(agent.id, None)
            if not w.offers:
                w.offers = None
        if decliner:
            if w.declined is None:
                w.declined = set()
            w.declined.add(agent.id)
            if w.ix.preferred_agent == agent.id:
                w.preferred_until = 0.0  # they had their chance: route normally
        if not w.offers and w.ix.state is OFFERED:
            w.ix.state = WAITING
            self._enqueue(w)
            self._arm_waiting_timers(w)

    def _release(self, offer: PendingOffer) -> None:
        agent = offer.agent
        agent.offers.pop(offer.id, None)
        self._load(agent, offer.channel, -1)
        self._touch(agent)
        self._released.append(agent)

    def _release_offers(self, w: Waiting) -> None:
        if w.offers is not None:
            for oid in w.offers.values():
                self._release(self.offers.pop(oid))
            w.offers = None

    def _leave_agent(self, w: Waiting, at: float) -> None:
        """The agent holding `w` lets go of it: capacity back, talk time counted."""
        agent = self.agents[w.ix.agent]  # type: ignore[index]
        if w.ix.state is ASSIGNED:
            agent.talk_time += at - w.assigned_at
        agent.work.discard(w.id)
        self._load(agent, w.ix.channel, -1)
        if agent.total_load == 0:
            agent.idle_since = at
        w.ix.agent = None
        self._touch(agent)
        self._released.append(agent)

    def _end(self, w: Waiting, state: InteractionState, at: float) -> None:
        w.version += 1
        w.ladder_seq = 0  # its rung, if armed, is spent
        w.ix.state = state
        w.ix.ended_at = at
        del self.active[w.id]
        w.queue.waiting.pop(w.id, None)
        # Its timers keep it until they are due (SLA, max wait): without the lists it
        # no longer needs, it costs the garbage collector one object, not four.
        w.buckets = w.requirements = _ENDED


# ====================================================================== module helpers


def _nothing(event: ev.Event) -> None:
    return None


def _record_due(record: Waiting | PendingOffer) -> float:
    """When the timer a record stands for is due (`Lanes`)."""
    if type(record) is Waiting:
        return record.sla_deadline
    return record.expires_at  # type: ignore[union-attr]


def _no_room(agent: AgentStatus, channel: str) -> str:
    """Why the agent cannot hold one more interaction on `channel` whatever their
    presence (`AgentStatus.can_take` without the presence), or "" if they can."""
    capacity = agent.config.capacity.get(channel, 0)
    if capacity == 0:
        return f"they do not take {channel}"
    load = agent.load.get(channel, 0)
    if load >= capacity:
        return f"{load} of {capacity} {channel} already (offers included)"
    if channel in agent.exclusive and agent.total_load:
        busy = ", ".join(f"{c} {n}" for c, n in sorted(agent.load.items()) if n)
        return f"{channel} takes them whole and they hold other work or offers ({busy})"
    if agent.exclusive_load:
        return "they are on an exclusive channel (a call)"
    return ""


def _references(queue: Queue) -> set[str]:
    """The other queues a queue's config sends interactions to."""
    names = {step.overflow for step in queue.escalation if step.overflow}
    if queue.on_max_wait.queue:
        names.add(queue.on_max_wait.queue)
    if queue.hours is not None and queue.hours.closed.queue:
        names.add(queue.hours.closed.queue)
    return names


def _queue_lanes(queue: QueueRuntime) -> list[deque[Any]]:
    lanes = queue.lanes
    return [lanes.sla, lanes.offer, lanes.wrap, lanes.preferred, lanes.max_wait, *lanes.ladder]


def _top(heap: list[Any], excluded: set[str] | None) -> Any:
    """The best live entry of an agent heap, skipping excluded agents (left in place)."""
    while heap:
        entry = heap[0]
        if entry[3].version != entry[2]:
            heapq.heappop(heap)
            continue
        if excluded and entry[3].id in excluded:
            return _top_slow(heap, excluded)
        return entry
    return None


def _top_slow(heap: list[Any], excluded: set[str]) -> Any:
    held = []
    found = None
    while heap:
        entry = heapq.heappop(heap)
        if entry[3].version != entry[2]:
            continue
        held.append(entry)
        if entry[3].id not in excluded:
            found = entry
            break
    for entry in held:
        heapq.heappush(heap, entry)
    return found


def _live_agents(heap: list[Any], excluded: set[str] | None) -> Iterator[AgentStatus]:
    for entry in heap:
        agent = entry[3]
        if agent.version == entry[2] and not (excluded and agent.id in excluded):
            yield agent


def _head_excluding(bucket: Bucket, agent_id: str) -> Waiting | None:
    """The first live interaction of a bucket that `agent_id` has not declined."""
    held = []
    found = None
    while (entry := bucket.pop()) is not None:
        w, version = entry
        if w.version != version:
            continue
        held.append(w)
        if not (w.declined and agent_id in w.declined):
            found = w
            break
    for w in held:
        bucket.push(w, w.version)
    return found


def _today(queue: QueueRuntime, at: float, router: Router) -> QueueKpis:
    """`router._stats(queue, at)`, without the call while the day lasts (hot path)."""
    return queue.stats if at < queue.stats_until else router._stats(queue, at)


def _day_of(queue: QueueRuntime, at: float) -> tuple[str, float]:
    """The local date of `at` for the queue, and when that day ends."""
    import datetime as dt

    zone = queue.calendar.zone if queue.calendar else dt.UTC
    local = dt.datetime.fromtimestamp(at, zone)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return local.date().isoformat(), midnight.timestamp()

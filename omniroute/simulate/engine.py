"""The run loop: contacts arrive, agents accept, talk and complete, all through the real
Router on a VirtualClock, and KPIs are folded from the events it emits.

The loop is a discrete-event simulation with one agenda (a heap of accepts, completions,
abandons and wake-ups) plus the arrivals, which come pre-sorted from the traffic. The
router's own timers (SLA breaches, offer time-outs, wrap-ups, escalation...) fire either
at their deadline (exact mode) or, when no queue has a timer that can change who gets
what (no escalation, `max_wait` or `hours`), during the next command, with their own
times (fast mode): a breach timer changes no decision, and the two timers that do (a
wrap-up that ends, an offer that rings out) are known from the events and woken for
explicitly. Should a lazily fired timer ever make an offer, the run starts over in
exact mode, so fast mode is an optimisation that cannot change a result.

Randomness: every purpose (arrivals, handle times, patience of each traffic stream,
accept delays of each agent group) has its own stream seeded from `seed`, so traffic
does not depend on routing decisions and `--compare` runs identical traffic.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from heapq import heappush
from typing import Any, Final

import msgspec

from .. import events as ev
from ..clock import VirtualClock
from ..config import Config, validate_with_host
from ..kpi import QueueKpis
from ..model import Agent, Interaction, Presence, Queue
from ..router.core import Router
from ..router.hours import Calendar
from .result import AgentsResult, QueueResult, Result, Run, gini
from .scenario import Simulation
from .timeline import TimelineRecorder
from .traffic import Arrival, Kind, sampler, synthetic

__all__ = ["AgentsResult", "QueueResult", "Result", "Run", "SimulationError", "run"]

#: How far past the last arrival the run may go to let the contacts still in the
#: system finish (only reached when no agent can ever take some of them).
DRAIN_LIMIT = 7 * 86400.0
_PROGRESS_EVERY = 4096  # loop turns between progress reports

_ACCEPT, _COMPLETE, _ABANDON, _WAKE = 0, 1, 2, 3
# The event classes `_react` tells apart, as module constants: from compiled code
# `ev.Offered` is an attribute lookup on the module each time (about 200 instructions),
# and it tells every event apart by several of them.
_QUEUED: Final = ev.InteractionQueued
_OFFERED: Final = ev.Offered
_ASSIGNED: Final = ev.Assigned
_WRAP_UP_ENDED: Final = ev.WrapUpEnded
_COMPLETED: Final = ev.Completed
_OFFER_ENDED: Final = (ev.OfferRevoked, ev.OfferMissed, ev.OfferDeclined)
_ABANDONED: Final = ev.Abandoned
_CLOSED: Final = ev.Closed


class SimulationError(ValueError):
    """The scenario cannot run (no traffic, an unknown strategy...); the message says why."""


Progress = Callable[[float, int], None]  # (share of the virtual time done, contacts so far)


def run(
    config: Config,
    host: Any,
    *,
    arrivals: Iterable[Arrival] | None = None,
    strategy: str | None = None,
    timeline: bool = False,
    progress: Progress | None = None,
) -> Run:
    """Simulate `config` (its `[simulation]` section) with the plugins of `host`.

    `arrivals` replaces the synthetic traffic (a replay: the run then starts at the
    first arrival and lasts until the last); `strategy` replaces every queue's
    strategy (for a comparison).
    """
    simulation = config.simulation or Simulation()
    if arrivals is not None:
        arrivals = list(arrivals)
        if arrivals:
            first = math.floor(arrivals[0][0])
            span = arrivals[-1][0] - first
            simulation = msgspec.structs.replace(
                simulation,
                start=dt.datetime.fromtimestamp(first, dt.UTC),
                duration=span + 1.0,
                warmup=min(simulation.warmup, span),
            )
    if not config.agents and not simulation.agents:
        raise SimulationError("no agents: add [[simulation.agents]] (or [[agents]]) to the config")
    if strategy is not None:
        config = msgspec.structs.replace(
            config,
            queues=[msgspec.structs.replace(q, strategy=strategy) for q in config.queues],
        )
    plugin_config = validate_with_host(config, host)
    if arrivals is None:
        if not simulation.traffic:
            raise SimulationError(
                "no traffic: add [[simulation.traffic]] to the config, or replay a log"
            )
        arrivals = synthetic(simulation)
    replayable = list(arrivals) if not isinstance(arrivals, list) else arrivals
    # Fast mode may start over, so it is not for runs whose events plugins observe.
    hooks = _observer_hooks(host)  # asks every plugin: once per run
    fast = not hooks and all(_timers_change_nothing(q) for q in config.queues)
    if fast:
        try:
            engine = _Engine(
                config, host, simulation, fast=True, plugin_config=plugin_config, hooks=hooks
            )
            return engine.run(replayable, timeline, progress)
        except _LateOffer:
            pass  # a timer made an offer we did not expect: do it the exact way
    engine = _Engine(config, host, simulation, fast=False, plugin_config=plugin_config, hooks=hooks)
    return engine.run(replayable, timeline, progress)


def _timers_change_nothing(queue: Queue) -> bool:
    """True when the queue's only timers are SLA breaches, offer time-outs and wrap-ups."""
    return (
        not queue.escalation
        and queue.max_wait is None
        and queue.hours is None
        and queue.preferred_agent_wait == 0
    )


class _LateOffer(Exception):
    """Fast mode met an offer made by a timer it did not wake for."""


class _Tally:
    """A queue's counters during the run: `QueueKpis`'s folds on a compiled class, whose
    fields the compiled loop reads and writes directly (a msgspec Struct's are reached
    through the generic attribute protocol, and its methods are Python calls); turned
    into the `QueueKpis` of the result at the end."""

    __slots__ = (
        "abandoned",
        "abandoned_within",
        "answered",
        "answered_within",
        "closed",
        "completed",
        "handle_time",
        "max_wait",
        "offered",
        "threshold",
        "wait_abandoned",
        "wait_answered",
    )

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.offered = self.answered = self.answered_within = 0
        self.abandoned = self.abandoned_within = self.closed = self.completed = 0
        self.wait_answered = self.wait_abandoned = self.handle_time = self.max_wait = 0.0

    def on_answered(self, wait: float) -> None:
        self.answered += 1
        self.wait_answered += wait
        if wait < self.threshold:
            self.answered_within += 1
        if wait > self.max_wait:
            self.max_wait = wait

    def on_abandoned(self, wait: float) -> None:
        self.abandoned += 1
        self.wait_abandoned += wait
        if wait < self.threshold:
            self.abandoned_within += 1
        if wait > self.max_wait:
            self.max_wait = wait

    def kpis(self, queue: Queue) -> QueueKpis:
        return QueueKpis(
            queue=queue.name,
            threshold=queue.sla.seconds,
            target=queue.sla.target,
            offered=self.offered,
            answered=self.answered,
            answered_within=self.answered_within,
            abandoned=self.abandoned,
            abandoned_within=self.abandoned_within,
            closed=self.closed,
            completed=self.completed,
            wait_answered=self.wait_answered,
            wait_abandoned=self.wait_abandoned,
            handle_time=self.handle_time,
            max_wait=self.max_wait,
        )


class _Contact:
    """What the loop keeps about one contact while it is in the system."""

    __slots__ = ("agent", "assigned_at", "enqueued_at", "handle", "kpi", "queue", "waiting")

    def __init__(
        self, queue: _QueueState, kpi: _Tally | None, handle: float, enqueued_at: float
    ) -> None:
        self.queue = queue
        self.kpi = kpi  # None for contacts of the warm-up
        self.handle = handle
        self.enqueued_at = enqueued_at
        self.assigned_at = 0.0
        self.agent = -1
        self.waiting = True


class _QueueState:
    """A queue as the loop sees it: KPIs, SLA clock, and the waiting count for the plot."""

    __slots__ = ("calendar", "config", "kpi", "name", "threshold", "waiting")

    def __init__(self, queue: Queue) -> None:
        self.name = queue.name
        self.config = queue
        self.threshold = float(queue.sla.seconds)
        self.kpi = _Tally(self.threshold)
        self.calendar = Calendar(queue.hours) if queue.hours is not None else None
        self.waiting = 0


class _Engine:
    """One run. Not reusable: build one per run."""

    def __init__(
        self,
        config: Config,
        host: Any,
        simulation: Simulation,
        *,
        fast: bool,
        plugin_config: dict[str, Any] | None = None,
        hooks: frozenset[str] | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.simulation = simulation
        self.simulated = True  # for plugins that receive this object as `app`
        self.fast = fast
        self.start = simulation.start_epoch
        self.now = self.start  # the clock's time, as the loop last set it
        self.clock = VirtualClock(self.start)
        strategies = host.strategies()
        selectors = host.queue_selectors()
        agents = [*config.agents, *_group_agents(simulation)]
        self.router = Router(
            queues=config.queues,
            agents=agents,
            clock=self.clock,
            strategies=strategies,
            selector=selectors[config.routing.queue_selection].factory(),
            routing=config.routing,
            plugin_config=plugin_config,
        )
        self.queues = {q.name: _QueueState(q) for q in config.queues}
        self.agent_index = {a.id: i for i, a in enumerate(agents)}
        n = len(agents)
        self.busy = [0.0] * n
        self.load = [0] * n
        self.busy_since = [0.0] * n
        self.answered = [0] * n
        self.delays: dict[str, Callable[[], float]] = {}
        for i, (group, name) in enumerate(
            zip(simulation.agents, simulation.group_names(), strict=True)
        ):
            if group.accept_delay is not None:
                draw = sampler(group.accept_delay, f"{simulation.seed}:accept:{i}")
                for k in range(1, group.count + 1):
                    self.delays[f"{name}-{k}"] = draw
        self.contacts: dict[str, _Contact] = {}
        self.pending: set[str] = set()  # offers not yet answered
        self.accepts: list[str] = []  # offers to accept at once, in order
        self.agenda: list[tuple[float, int, int, Any]] = []
        self.next_seq = itertools.count(1).__next__  # ties in the agenda: first in, first out
        self.events = 0
        self.window = (self.start + simulation.warmup, self.start + simulation.duration)
        self.observer_hooks = _observer_hooks(host) if hooks is None else hooks
        self.portal: Any = None
        self.timeline: TimelineRecorder | None = None

    # ------------------------------------------------------------------ the loop

    def run(self, arrivals: Sequence[Arrival], timeline: bool, progress: Progress | None) -> Run:
        started = time.perf_counter()
        if timeline:
            targets = {name: state.config.sla.target for name, state in self.queues.items()}
            self.timeline = TimelineRecorder(
                self.start, self.simulation.duration, self.queues, targets
            )
        with self._observers():
            router = self.router
            for agent_id in self.agent_index:
                router.set_presence(agent_id, Presence.READY)
            self._settle(router.drain())
            self._loop(arrivals, progress)
        return self._result(time.perf_counter() - started)

    def _loop(self, arrivals: Sequence[Arrival], progress: Progress | None) -> None:
        router, clock, agenda = self.router, self.clock, self.agenda
        contacts, pending = self.contacts, self.pending
        settle, drain, pop, push = self._settle, router.drain, heapq.heappop, heapq.heappush
        next_seq = self.next_seq
        window_start = self.window[0]
        end = self.start + self.simulation.duration
        horizon = end + DRAIN_LIMIT
        exact = not self.fast
        recorder = self.timeline
        templates: dict[Kind, tuple[Interaction, _QueueState]] = {}
        total = len(arrivals)
        index = 0
        next_arrival = arrivals[0][0] if total else math.inf
        turns = 0
        count = 0
        while True:
            turns += 1
            if progress is not None and turns % _PROGRESS_EVERY == 0:
                progress(min(1.0, (clock.now() - self.start) / (end - self.start)), index)
            soonest = agenda[0][0] if agenda else math.inf
            if exact and contacts:
                due = router.next_deadline()
                if due is not None and due < soonest and due < next_arrival and due <= horizon:
                    clock.set(due)
                    self.now = due
                    if recorder is not None:
                        recorder.sample(due)
                    router.advance()
                    settle(drain())
                    continue
            if next_arrival <= soonest:
                if index == total:
                    break
                at, kind, handle, patience = arrivals[index]
                index += 1
                next_arrival = arrivals[index][0] if index < total else math.inf
                clock.set(at)
                self.now = at
                if recorder is not None:
                    recorder.sample(at)
                template = templates.get(kind)
                if template is None:
                    template = templates[kind] = self._template(kind)
                ix, queue = template
                count += 1
                cid = f"c{count}"
                kpi = queue.kpi if at >= window_start else None
                contacts[cid] = _Contact(queue, kpi, handle, at)
                queue.waiting += 1
                if kpi is not None:
                    kpi.offered += 1
                router.submit(msgspec.structs.replace(ix, id=cid))
                if patience is not None:
                    push(agenda, (at + patience, next_seq(), _ABANDON, cid))
            else:
                at, _, what, x = pop(agenda)
                clock.set(at)
                self.now = at
                if recorder is not None:
                    recorder.sample(at)
                if what == _COMPLETE:
                    router.complete(x)
                elif what == _ACCEPT:
                    if x not in pending:
                        continue  # withdrawn meanwhile (the customer left, ring-all lost)
                    router.accept(x)
                elif what == _ABANDON:
                    contact = contacts.get(x)
                    if contact is None or not contact.waiting:
                        continue  # answered (or closed) before their patience ran out
                    router.abandon(x)
                else:
                    router.advance()
            settle(drain())
        if progress is not None:
            progress(1.0, index)

    def _template(self, kind: Kind) -> tuple[Interaction, _QueueState]:
        queue, channel, skills, priority = kind
        ix = Interaction(
            id="", channel=channel, queue=queue, skills=dict(skills), priority=priority
        )
        return ix, self.queues[queue]

    def _push(self, at: float, what: int, x: Any) -> None:
        heapq.heappush(self.agenda, (at, self.next_seq(), what, x))

    # ------------------------------------------------------------------ reactions

    def _settle(self, events: list[ev.Event]) -> None:
        """React to what the router did; accept offers that are taken at once, one at a
        time (an accept may withdraw another offer, as in ring-all)."""
        react, accepts = self._react, self.accepts
        react(events)
        if not accepts:
            return
        router, pending = self.router, self.pending
        done = 0
        while done < len(accepts):
            offer_id = accepts[done]
            done += 1
            if offer_id in pending:
                router.accept(offer_id)
                react(router.drain())
        accepts.clear()

    def _react(self, events: list[ev.Event]) -> None:
        """Fold events into the KPIs and schedule what the customers and agents do next;
        offers accepted at once go to `self.accepts`."""
        self.events += len(events)
        if self.portal is not None:
            self._notify(events)
        contacts, pending, delays = self.contacts, self.pending, self.delays
        load, agenda, fast, accepts = self.load, self.agenda, self.fast, self.accepts
        next_seq = self.next_seq
        e: Any  # one of the event types, told apart by the exact type (cheapest test)
        for e in events:
            tp = type(e)
            if tp is _QUEUED:
                continue  # counted when submitted
            if tp is _OFFERED:
                if fast and e.at < self.now:
                    raise _LateOffer
                offer_id = e.offer_id
                pending.add(offer_id)
                draw = delays.get(e.agent_id)
                if draw is None:
                    accepts.append(offer_id)
                else:
                    accept_at = e.at + draw()
                    if accept_at < e.expires_at:
                        self._push(accept_at, _ACCEPT, offer_id)
                    elif fast:
                        self._push(e.expires_at, _WAKE, None)  # it rings out
            elif tp is _ASSIGNED:
                pending.discard(e.offer_id)
                interaction_id = e.interaction_id
                contact = contacts[interaction_id]
                contact.waiting = False
                contact.assigned_at = at = e.at
                contact.queue.waiting -= 1
                agent = contact.agent = self.agent_index[e.agent_id]
                if not load[agent]:
                    self.busy_since[agent] = at
                load[agent] += 1
                if contact.kpi is not None:
                    self._answered(contact, agent, at)
                heappush(agenda, (at + contact.handle, next_seq(), _COMPLETE, interaction_id))
            elif tp is _WRAP_UP_ENDED:
                contact = contacts.pop(e.interaction_id)
                kpi = contact.kpi
                if kpi is not None:
                    kpi.completed += 1
                    kpi.handle_time += e.at - contact.assigned_at
                agent = contact.agent
                load[agent] -= 1
                if not load[agent]:
                    self._busy(agent, self.busy_since[agent], e.at)
            elif tp is _COMPLETED:
                if fast and e.wrap_up_until > e.at:
                    self._push(e.wrap_up_until, _WAKE, None)
            elif tp in _OFFER_ENDED:
                pending.discard(e.offer_id)
            elif tp is _ABANDONED:
                contact = contacts.pop(e.interaction_id)
                contact.waiting = False
                contact.queue.waiting -= 1
                if contact.kpi is not None:
                    contact.kpi.on_abandoned(self._wait(contact, e.at))
                    if self.timeline is not None:
                        self.timeline.ended(contact.queue, e.at, False)
            elif tp is _CLOSED:
                contact = contacts.pop(e.interaction_id)
                if contact.waiting:
                    contact.waiting = False
                    contact.queue.waiting -= 1
                if contact.kpi is not None:
                    contact.kpi.closed += 1

    def _answered(self, contact: _Contact, agent: int, at: float) -> None:
        kpi = contact.kpi
        assert kpi is not None
        wait = self._wait(contact, at)
        kpi.on_answered(wait)
        self.answered[agent] += 1
        if self.timeline is not None:
            self.timeline.ended(contact.queue, at, wait < contact.queue.threshold)

    def _wait(self, contact: _Contact, at: float) -> float:
        """Seconds waited on the queue's SLA clock (it pauses outside opening hours)."""
        calendar = contact.queue.calendar
        if calendar is None:
            return at - contact.enqueued_at
        return calendar.open_seconds(contact.enqueued_at, at)

    def _busy(self, agent: int, since: float, until: float) -> None:
        low, high = self.window
        busy = min(until, high) - max(since, low)
        if busy > 0:
            self.busy[agent] += busy

    # ------------------------------------------------------------------ observers

    @contextmanager
    def _observers(self) -> Iterator[None]:
        """Deliver events to plugins' notification hooks, only if some plugin has one.

        Hooks may be async, so they run on an event loop in a helper thread while the
        simulation waits: in order, one event at a time, as the app delivers them.
        """
        if not self.observer_hooks:
            yield
            return
        from anyio.from_thread import start_blocking_portal

        with start_blocking_portal() as portal:
            self.portal = portal
            portal.call(lambda: self.host.notify("omniroute_startup", app=self))
            try:
                yield
            finally:
                portal.call(lambda: self.host.notify("omniroute_shutdown", app=self))
                self.portal = None

    def _notify(self, events: list[ev.Event]) -> None:
        """One hop to the event loop per batch of events, not per hook call."""
        self.portal.call(self._deliver, events)

    async def _deliver(self, events: list[ev.Event]) -> None:
        from ..app import HOOKS_BY_EVENT

        hooks, notify = self.observer_hooks, self.host.notify
        for event in events:
            if "omniroute_event" in hooks:
                await notify("omniroute_event", event=event, app=self)
            specific = HOOKS_BY_EVENT.get(type(event))
            if specific in hooks:
                await notify(specific, event=event, app=self)

    # ------------------------------------------------------------------ results

    def _result(self, wall: float) -> Run:
        queues = {}
        for name, state in self.queues.items():
            k = state.kpi.kpis(state.config)
            queues[name] = QueueResult(
                offered=k.offered,
                answered=k.answered,
                abandoned=k.abandoned,
                service_level=k.service_level,
                asa=k.asa,
                awt=k.awt,
                aht=k.aht,
                max_wait=k.max_wait,
            )
        low, high = self.window
        n = len(self.busy)
        answered = self.answered
        agents = AgentsResult(
            count=n,
            occupancy=sum(self.busy) / (n * (high - low)) if n else None,
            answered_min=min(answered, default=0),
            answered_max=max(answered, default=0),
            answered_gini=gini(answered),
        )
        result = Result(queues=queues, agents=agents, events=self.events, wall_seconds=wall)
        timeline = self.timeline.finish() if self.timeline is not None else None
        return Run(
            result=result, unfinished=len(self.contacts), exact=not self.fast, timeline=timeline
        )


def _group_agents(simulation: Simulation) -> Iterator[Agent]:
    for group, name in zip(simulation.agents, simulation.group_names(), strict=True):
        for k in range(1, group.count + 1):
            yield Agent(
                id=f"{name}-{k}",
                skills=dict(group.skills),
                capacity=dict(group.capacity),
                exclusive=list(group.exclusive),
                queues=list(group.queues) if group.queues is not None else None,
                team=group.team,
            )


def _observer_hooks(host: Any) -> frozenset[str]:
    """The notification hooks some plugin implements (nothing to deliver otherwise)."""
    from ..app import HOOKS_BY_EVENT

    wanted = {"omniroute_event", *HOOKS_BY_EVENT.values()}
    describe = getattr(host, "describe", None)
    if describe is None:
        return frozenset()
    return frozenset(h for info in describe() for h in info.hooks if h in wanted)

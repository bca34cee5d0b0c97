"""Router snapshots: the whole derived state as bytes, so a restart replays only the
events stored after it instead of the whole log.

A snapshot holds what the events built: interactions in their queues (with their place
in line, requirements, escalation progress), offers, agents (presence, load, work and
the counters strategies read), strategies' own state (round-robin turns), today's KPIs
and every pending timer with its deadline. Indexes (profiles' heaps, free counts) are
derived again on load; that is exact because every heap key is a function of the state
at the moment it is read (the router re-keys an agent whenever that state changes).

The bytes are msgpack: a header with the format version and a fingerprint of the config
the state depends on, then the body. A snapshot of another format or another config is
refused with SnapshotError before anything changes, so the caller replays the whole log.
"""

from __future__ import annotations

import gc
import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from ..kpi import QueueKpis
from ..model import Agent, Interaction, InteractionState, Presence, Queue, Routing
from .state import AgentStatus, PendingOffer, QueueRuntime, Timer, Waiting, heap_make

if TYPE_CHECKING:
    from .core import Router

#: Bumped whenever the layout below changes: an older snapshot is then refused.
#: 2: each queue's config, as the admin API may have changed it since start-up.
#: 3: spent timers (answered offers' time-outs, answered contacts' SLA) left out.
#: 4: outbound counters in each queue's KPIs; interactions' `address` and `outcome`.
#: 5: each interaction names the queue whose SLA it is measured by (`sla_queue`).
FORMAT = 5

# ---------------------------------------------------------------------- layout


class Fingerprint(msgspec.Struct, array_like=True, frozen=True):
    """Digests of the config a snapshot depends on (queues one by one, to name them)."""

    queues: dict[str, str]
    agents: str
    agent_ids: list[str]
    routing: str
    selector: str


class Header(msgspec.Struct, array_like=True):
    format: int
    fingerprint: Fingerprint
    body: msgspec.Raw


class TimerRec(msgspec.Struct, array_like=True):
    """One timer: when, in which order it was armed, which handler, and what it is about
    (by id)."""

    due: float
    seq: int
    kind: str
    ref: str = ""  # interaction or offer id; queue name for lanes and opening hours
    at: float = 0.0  # wrap-up end or segment start
    index: int = 0  # ladder rung, or lane number
    queue: str = ""  # the queue a ladder rung belongs to


class AgentRec(msgspec.Struct, array_like=True):
    config: Agent
    ordinal: int
    presence: Presence
    reason: str | None
    state_since: float
    load: dict[str, int]
    idle_since: float
    answered: int
    talk_time: float
    missed_in_row: int
    work: list[str]
    reserved: list[str]


class WaitingRec(msgspec.Struct, array_like=True):
    ix: Interaction
    queue: str
    sla_queue: str
    seq: int
    enqueued_at: float
    segment_start: float
    order_key: float
    sla_deadline: float
    requirements: list[tuple[str, dict[str, int]]]
    relax: int
    ladder_index: int
    breached: bool
    answered: bool
    declined: list[str] | None
    preferred_until: float
    assigned_at: float
    maxed: bool
    closed_handled: float
    rank: int
    aging: float


class OfferRec(msgspec.Struct, array_like=True):
    id: str
    interaction: str
    agent: str
    expires_at: float


class QueueRec(msgspec.Struct, array_like=True):
    name: str
    waiting: list[str]  # every active interaction of the queue, in its dict order
    stats: QueueKpis | None
    stats_until: float
    closed_since: float
    strategy: Any  # the strategy's own state (`snapshot_state()`), None when stateless
    lanes: list[list[TimerRec]]  # sla, offer, wrap, preferred, max_wait, ladder rungs...
    config: Queue  # the queue as it runs: the config file's, or as the API changed it


class Body(msgspec.Struct, array_like=True):
    now: float
    offer_count: int
    arrivals: int
    ordinals: int
    profiles: list[tuple[dict[str, int], list[str] | None]]
    buckets: list[tuple[str, str, dict[str, int]]]
    agents: list[AgentRec]
    active: list[WaitingRec]
    offers: list[OfferRec]
    queues: list[QueueRec]
    last_agent: dict[str, str]
    timers: list[TimerRec]  # timers outside lanes, in firing order


#: Fields of the records kept as they are in the router's objects.
_AGENT_AS_IS = (
    "ordinal",
    "presence",
    "reason",
    "state_since",
    "idle_since",
    "answered",
    "talk_time",
    "missed_in_row",
)
_WAITING_AS_IS = tuple(
    f
    for f in WaitingRec.__struct_fields__
    if f not in ("ix", "queue", "sla_queue", "seq", "requirements", "declined")
)

_encoder = msgspec.msgpack.Encoder()
_header = msgspec.msgpack.Decoder(Header)
_body = msgspec.msgpack.Decoder(Body)

#: Timer handlers whose argument is the interaction itself.
_BY_WAITING = ("_sla_due", "_preference_due", "_closed_check")
_NOOP = "noop"  # a timer about an interaction that has ended: it would do nothing


# ---------------------------------------------------------------------- fingerprint


def _digest(obj: Any) -> str:
    return hashlib.blake2b(_encoder.encode(obj), digest_size=12).hexdigest()


def fingerprint(
    queues: Sequence[Queue], agents: Sequence[Agent], routing: Routing | None, selector: str
) -> Fingerprint:
    """What a router's state depends on in its config. Queue texts for agents (`script`,
    `canned`) are left out: changing them changes nothing derived."""
    return Fingerprint(
        queues={
            q.name: _digest(msgspec.structs.replace(q, script=None, canned=[])) for q in queues
        },
        agents=_digest(list(agents)),
        agent_ids=[a.id for a in agents],
        routing=_digest(routing or Routing()),
        selector=selector,
    )


def _mismatch(saved: Fingerprint, now: Fingerprint) -> str | None:
    """Why a snapshot taken with `saved` does not fit a router built with `now`."""
    if saved.queues != now.queues:
        added = sorted(set(now.queues) - set(saved.queues))
        removed = sorted(set(saved.queues) - set(now.queues))
        changed = sorted(
            n for n in now.queues if saved.queues.get(n, now.queues[n]) != now.queues[n]
        )
        parts = []
        if added:
            parts.append(f"queues added: {', '.join(added)}")
        if removed:
            parts.append(f"queues removed: {', '.join(removed)}")
        if changed:
            parts.append(f"queues changed: {', '.join(changed)}")
        return "; ".join(parts) or "the queues are in another order"
    if saved.agents != now.agents:
        added = sorted(set(now.agent_ids) - set(saved.agent_ids))
        removed = sorted(set(saved.agent_ids) - set(now.agent_ids))
        if added or removed:
            names = [f"added: {', '.join(added)}" if added else "", ""]
            names[1] = f"removed: {', '.join(removed)}" if removed else ""
            return "agents in the config " + "; ".join(n for n in names if n)
        return "the config changes the settings or order of some agents"
    if saved.routing != now.routing:
        return "the [routing] section changed"
    if saved.selector != now.selector:
        return f'queue selection changed from "{saved.selector}" to "{now.selector}"'
    return None


def router_fingerprint(router: Router) -> Fingerprint:
    args = router._init_args
    selector = getattr(router.selector, "name", type(router.selector).__name__)
    return fingerprint(args["queues"], args["agents"], args["routing"], selector)


# ---------------------------------------------------------------------- dump


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hundreds of thousands of objects made at once would set off full collections of
    a heap that holds nothing collectable: pause the collector meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def dump(router: Router) -> bytes:
    """`Router.snapshot()`: see there."""
    with paused_gc():
        return _dump(router)


def _dump(router: Router) -> bytes:
    from .core import RouterError

    if router.outbox:
        raise RouterError("snapshot: drain() the router's events first")
    if router._firing or router._requeued or router._released:
        raise RouterError("snapshot: take it between commands, not during one")
    active = router.active
    # Timers go by the order they were armed in: ranks, so equal states save equal bytes.
    # Opening hours are left out: a router built from the config arms its own.
    # Spent timers (an answered offer's time-out, an answered contact's SLA timer) are
    # left out: a live router skips some of them unfired, a replay arms them all.
    spent = router._spent
    loose = [
        (t.due, t.seq, t.fn, t.arg)
        for t in router._timers
        if t.fn is not None and getattr(t.fn, "__name__", "") != "_hours_changed" and not spent(t)
    ]
    loose.sort(key=lambda t: (t[0], t[1]))
    lanes_of = {
        name: [router._lane_timers(lane) for lane in _lanes(q)] for name, q in router.queues.items()
    }
    seqs = [t[1] for t in loose]
    for kept in lanes_of.values():
        for lane in kept:
            seqs.extend(t[1] for t in lane)
    seqs.sort()
    rank = {seq: n for n, seq in enumerate(seqs)}
    queues = []
    for name, q in router.queues.items():
        queues.append(
            QueueRec(
                name=name,
                waiting=list(q.waiting),
                stats=q.stats,
                stats_until=q.stats_until,
                closed_since=q.closed_since,
                strategy=_strategy_state(q.strategy),
                config=q.config,
                lanes=[
                    [_timer(due, rank[seq], fn, arg, active) for due, seq, fn, arg in lane]
                    for lane in lanes_of[name]
                ],
            )
        )
    timers = [_timer(due, rank[seq], fn, arg, active) for due, seq, fn, arg in loose]
    body = Body(
        now=router.now,
        offer_count=router._offer_count,
        arrivals=router._arrivals,
        ordinals=router._ordinals,
        profiles=[
            (p.skills, sorted(p.queues) if p.queues is not None else None)
            for p in router.profiles.values()
        ],
        buckets=[(b.queue.name, b.channel, b.requirement) for b in router.buckets.values()],
        agents=[_agent_rec(a, active, router.now) for a in router.agents.values()],
        active=[_waiting_rec(w) for w in active.values()],
        offers=[
            OfferRec(oid, o.waiting.id, o.agent.id, o.expires_at)
            for oid, o in router.offers.items()
        ],
        queues=queues,
        last_agent=router.last_agent,
        timers=timers,
    )
    header = Header(FORMAT, router_fingerprint(router), msgspec.Raw(_encoder.encode(body)))
    return _encoder.encode(header)


def _lanes(q: QueueRuntime) -> list[deque[Any]]:
    lanes = q.lanes
    return [lanes.sla, lanes.offer, lanes.wrap, lanes.preferred, lanes.max_wait, *lanes.ladder]


def _strategy_state(strategy: Any) -> Any:
    save = getattr(strategy, "snapshot_state", None)
    return save() if save is not None else None


def _timer(
    due: float, seq: int, fn: Callable[[Any], None] | None, arg: Any, active: dict[str, Waiting]
) -> TimerRec:
    kind = getattr(fn, "__name__", "")
    if kind in _BY_WAITING:
        ref: str = arg.id
        if active.get(ref) is arg:
            return TimerRec(due, seq, kind, ref)
    elif kind == "_offer_expired":
        return TimerRec(due, seq, kind, arg)
    elif kind == "_wrap_up_due":  # due when the wrap-up ends: `at`
        ref = arg.id
        if active.get(ref) is arg:
            return TimerRec(due, seq, kind, ref, due)
    elif kind == "_max_wait_due":
        w, at = arg
        ref = w.id
        if active.get(ref) is w:
            return TimerRec(due, seq, kind, ref, at)
    elif kind == "_ladder_due":  # live (not spent): the contact's current rung
        ref = arg.id
        if active.get(ref) is arg:
            return TimerRec(
                due, seq, kind, ref, arg.segment_start, arg.ladder_index, arg.queue.name
            )
    elif kind != "_nothing":
        raise TypeError(f"snapshot: no record for timer {fn!r}")
    return TimerRec(due, seq, _NOOP)  # about an interaction that has ended


def _agent_rec(a: AgentStatus, active: dict[str, Waiting], now: float) -> AgentRec:
    return AgentRec(
        config=a.config,
        load=a.load,
        work=sorted(a.work),
        reserved=_reserved(a, active, now),
        **{name: getattr(a, name) for name in _AGENT_AS_IS},
    )


def _reserved(a: AgentStatus, active: dict[str, Waiting], now: float) -> list[str]:
    """The interactions reserved for the agent now, once each. Others in the list are
    stale and stay so: one reserved again is appended again."""
    out: dict[str, None] = {}
    for w in a.reserved:
        if (
            active.get(w.id) is w
            and w.ix.state is InteractionState.WAITING
            and w.ix.preferred_agent == a.id
            and w.preferred_until > now
        ):
            out[w.id] = None
    return list(out)


def _waiting_rec(w: Waiting) -> WaitingRec:
    return WaitingRec(
        ix=w.ix,
        queue=w.queue.name,
        sla_queue=w.sla_queue.name,
        seq=w.seq,
        requirements=[(q.name, req) for q, req in w.requirements],
        declined=sorted(w.declined) if w.declined is not None else None,
        **{name: getattr(w, name) for name in _WAITING_AS_IS},
    )


# ---------------------------------------------------------------------- load


def load(router: Router, data: bytes) -> None:
    with paused_gc():
        _load(router, data)


def _load(router: Router, data: bytes) -> None:
    """Replace a freshly built router's state with the snapshot's (see `Router.rebuild`).

    Raises SnapshotError, leaving the router as it was built, when the snapshot is of
    another format, another config, or damaged."""
    from .core import RouterError, SnapshotError

    if router.active or router.offers or router.outbox or router._offer_count:
        raise RouterError("rebuild from a snapshot needs a freshly built router")
    try:
        header = _header.decode(data)
    except (msgspec.DecodeError, TypeError) as exc:
        raise SnapshotError(f"not a router snapshot, or a damaged one: {exc}") from None
    if header.format != FORMAT:
        raise SnapshotError(
            f"the snapshot has format {header.format}; this version of omniroute reads "
            f"format {FORMAT}"
        )
    why = _mismatch(header.fingerprint, router_fingerprint(router))
    if why is not None:
        raise SnapshotError(f"the snapshot was taken with another config: {why}")
    try:
        body = _body.decode(header.body)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"damaged snapshot: {exc}") from None
    try:
        _restore(router, body)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        router._initial_state()  # back to the state as built
        raise SnapshotError(f"damaged snapshot: {type(exc).__name__}: {exc}") from None


def _queues_as_saved(r: Router, saved: list[QueueRec]) -> None:
    """The queues as they ran when the snapshot was taken: the config file's, with the
    changes the admin API made since (those events are not replayed after a snapshot)."""
    from .. import events as ev

    names = {q.name for q in saved}
    for name in [n for n in r.queues if n not in names]:
        r._on_queue_removed(ev.QueueRemoved(at=r.now, queue=name))
    for q in saved:
        current = r.queues.get(q.name)
        if current is None or current.config != q.config:
            r._configure_queue(q.config)
    r.queues = {q.name: r.queues[q.name] for q in saved}


def _restore(r: Router, s: Body) -> None:
    from .core import _nothing

    r.now = max(r.now, s.now)
    r._offer_count = s.offer_count
    r._arrivals = s.arrivals
    r._ordinals = s.ordinals
    r.last_agent = dict(s.last_agent)
    _queues_as_saved(r, s.queues)
    # The config's agents were configured when the router was built: start over.
    r.agents.clear()
    r.profiles.clear()
    r.buckets.clear()
    r._profile_buckets.clear()
    r._free.clear()
    for skills, queue_names in s.profiles:
        r._profile(skills, tuple(queue_names) if queue_names is not None else None)
    queues = r.queues
    for queue_name, channel, requirement in s.buckets:
        r._bucket(queues[queue_name], channel, requirement)

    active = r.active
    for rec in s.active:
        queue = queues[rec.queue]
        w = Waiting(rec.ix, queue, rec.seq)
        w.sla_queue = queues[rec.sla_queue]
        for name in _WAITING_AS_IS:
            setattr(w, name, getattr(rec, name))
        w.requirements = [(queues[q], req) for q, req in rec.requirements]
        w.declined = set(rec.declined) if rec.declined is not None else None
        r._set_requirements(w)  # its buckets, from the requirements and relax
        active[w.id] = w
        # Waiting and not reserved for a preferred agent: in line in its buckets.
        if w.ix.state is InteractionState.WAITING and not w.preferred_until:
            entry = (w.order_key, w.seq, w.version, w)
            for bucket in w.buckets:
                bucket.heap.append(entry)  # (put in line just below)
    for bucket in r.buckets.values():
        line = bucket.heap
        line.sort()
        bucket.heap = []
        for _, _, version, w in line:
            bucket.push(w, version)

    for a in s.agents:
        agent = AgentStatus(a.config, a.ordinal, a.state_since)
        for name in _AGENT_AS_IS:
            setattr(agent, name, getattr(a, name))
        agent.load = dict(a.load)
        agent.total_load = sum(agent.load.values())
        agent.exclusive_load = sum(n for c, n in agent.load.items() if c in agent.exclusive)
        agent.work = set(a.work)
        agent.reserved = [active[i] for i in a.reserved]
        config = a.config
        profile = r._profile(
            config.skills, tuple(sorted(config.queues)) if config.queues is not None else None
        )
        profile.agents[agent.id] = agent
        agent.profile = profile
        r.agents[agent.id] = agent

    agents = r.agents
    for o in s.offers:
        w, agent = active[o.interaction], agents[o.agent]
        offer = PendingOffer(o.id, w, agent, o.expires_at)
        r.offers[o.id] = offer
        agent.offers[o.id] = offer
        if w.offers is None:
            w.offers = {}
        w.offers[agent.id] = o.id
    for agent in agents.values():
        r._touch(agent)

    def timer(t: TimerRec, seq: int) -> Timer | None:
        """The timer a record stands for, armed as the router arms it (None: one that
        can only do nothing, left out)."""
        kind = t.kind
        if kind == _NOOP:
            return Timer(t.due, seq, _nothing, None)
        if kind == "_sla_due":  # the router tells timers apart by their handler's identity
            return Timer(t.due, seq, r._sla_timer, active[t.ref])
        if kind == "_offer_expired":
            return Timer(t.due, seq, r._offer_timer, t.ref)
        if kind == "_wrap_up_due":
            return Timer(t.due, seq, r._wrap_timer, active[t.ref])
        if kind == "_ladder_due":
            w = active[t.ref]
            # Its current rung, once: snapshots taken before rungs were the contact's own
            # timer (`Router._arm_ladder`) may hold rungs it has moved on from, or the
            # same rung armed twice.
            if (
                w.queue is not queues[t.queue]
                or w.ladder_index != t.index
                or w.segment_start != t.at
                or w.ladder_seq
            ):
                return None
            w.ladder_seq = seq
            return Timer(t.due, seq, r._ladder_timer, w)
        if kind == "_max_wait_due":
            return Timer(t.due, seq, r._max_wait_timer, (active[t.ref], t.at))
        if kind in _BY_WAITING:
            return Timer(t.due, seq, getattr(r, kind), active[t.ref])
        raise ValueError(f"unknown timer kind {kind!r}")

    # Timers keep the order they were armed in, after those of opening hours that were
    # armed when this router was built (as in a replay of the whole log).
    base = r._seq + 1
    last = base
    timers = r._timers

    def renumber(seq: int) -> int:
        nonlocal last
        last = max(last, base + seq)
        return base + seq

    for q in s.queues:
        queue = queues[q.name]
        queue.waiting = {i: active[i] for i in q.waiting}
        queue.stats = q.stats
        if q.stats is not None:
            r.stats[q.name] = q.stats
        queue.stats_until = q.stats_until
        queue.closed_since = q.closed_since
        restore_state = getattr(queue.strategy, "restore_state", None)
        if restore_state is not None:
            restore_state(q.strategy)
        for number, (lane, saved) in enumerate(zip(_lanes(queue), q.lanes, strict=True)):
            for t in saved:
                seq = renumber(t.seq)
                if number == 0 and t.kind == "_sla_due":  # the SLA lane holds the contacts
                    w = active[t.ref]
                    w.sla_seq = seq
                    lane.append(w)
                elif number == 1 and t.kind == "_offer_expired":  # the offer lane, offers
                    offer = r.offers[t.ref]
                    offer.seq = seq
                    lane.append(offer)
                elif number > 1:
                    made = timer(t, seq)
                    if made is not None:
                        lane.append(made)
            if lane:
                head = lane[0]
                if type(head) is Waiting:
                    timers.append(Timer(head.sla_deadline, head.sla_seq, None, lane))
                elif type(head) is PendingOffer:
                    timers.append(Timer(head.expires_at, head.seq, None, lane))
                else:
                    timers.append(Timer(head.due, head.seq, None, lane))
    for t in s.timers:
        made = timer(t, renumber(t.seq))
        if made is not None:
            timers.append(made)
    heap_make(timers)
    r._seq = last

"""Builders for router tests: a router on a virtual clock, and a log of what it emitted.

A plain helper module (not a conftest): tests import it as `from routerkit import ...`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from omniroute import events as ev
from omniroute.clock import VirtualClock
from omniroute.model import Agent, Customer, Interaction, InteractionState, Presence, Queue
from omniroute.model import Routing as Routing
from omniroute.router.core import Router, RouterError
from omniroute.router.selectors import PrioritySlaWait
from omniroute.router.strategies import omniroute_strategies
from omniroute.router.strategy import QueueSelector

#: 2027-01-15 08:00:00 UTC, a Friday (08:00 in Lisbon, which is on UTC in winter).
T0 = 1_800_000_000.0

E = TypeVar("E", bound=ev.Event)

TERMINAL = (ev.WrapUpEnded, ev.Abandoned, ev.Closed)


def strategies() -> dict[str, Any]:
    return {s.name: s for s in omniroute_strategies()}


def agent(
    agent_id: str,
    skills: dict[str, int] | None = None,
    *,
    capacity: dict[str, int] | None = None,
    queues: list[str] | None = None,
    **fields: Any,
) -> Agent:
    """An agent; `capacity` defaults to one call and three chats."""
    return Agent(
        id=agent_id,
        skills=skills or {},
        capacity=capacity if capacity is not None else {"voice": 1, "webchat": 3},
        queues=queues,
        **fields,
    )


def ix(
    interaction_id: str,
    queue: str = "q",
    channel: str = "voice",
    *,
    customer: str | None = None,
    **fields: Any,
) -> Interaction:
    if customer is not None:
        fields["customer"] = Customer(id=customer)
    return Interaction(id=interaction_id, channel=channel, queue=queue, **fields)


class Kit:
    """A router, its virtual clock and every event it emitted (drained into `log`)."""

    def __init__(
        self,
        queues: Sequence[Queue],
        agents: Sequence[Agent] = (),
        *,
        routing: Routing | None = None,
        selector: QueueSelector | None = None,
        start: float = T0,
        ready: Iterable[str] | bool = True,
    ) -> None:
        self.queues = list(queues)
        self.agents = list(agents)
        self.routing = routing
        self.clock = VirtualClock(start)
        self.router = Router(
            queues=self.queues,
            agents=self.agents,
            clock=self.clock,
            strategies=strategies(),
            selector=selector or PrioritySlaWait(),
            routing=routing,
        )
        self.log: list[ev.Event] = []
        self._seen: dict[Any, int] = {}
        self._start = 0
        names = [a.id for a in agents] if ready is True else list(ready or ())
        for name in names:
            self.router.set_presence(name, Presence.READY)
        self.drain()
        self.mark()

    # ------------------------------------------------------------------ events
    def drain(self) -> list[ev.Event]:
        self.log.extend(self.router.drain())
        return self.log

    def mark(self) -> None:
        """Forget events so far for `new()`."""
        self.drain()
        self._seen = dict.fromkeys(self._seen, len(self.log))
        self._start = len(self.log)

    def new(self, kind: type[E] | tuple[type, ...] | None = None) -> list[Any]:
        """Events (of `kind`) emitted since the last `mark()` or `new()` of the same kind."""
        self.drain()
        start = self._seen.get(kind, self._start)
        self._seen[kind] = len(self.log)
        out = self.log[start:]
        if kind is None:
            return out
        return [e for e in out if isinstance(e, kind)]

    def all(self, kind: type[E] | tuple[type, ...]) -> list[Any]:
        self.drain()
        return [e for e in self.log if isinstance(e, kind)]

    # ------------------------------------------------------------------ time
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.router.advance()

    @property
    def now(self) -> float:
        return self.clock.now()

    # ------------------------------------------------------------------ shortcuts
    def submit(self, *args: Any, **kwargs: Any) -> Interaction:
        return self.router.submit(ix(*args, **kwargs))

    def pending(self, interaction_id: str | None = None) -> dict[str, str]:
        """Pending offers as {offer id: agent id}, for one interaction or all."""
        return {
            oid: o.agent.id
            for oid, o in self.router.offers.items()
            if interaction_id is None or o.waiting.id == interaction_id
        }

    def offered_to(self, interaction_id: str) -> list[str]:
        """Agents the interaction is offered to now."""
        return sorted(self.pending(interaction_id).values())

    def offer_id(self, interaction_id: str, agent_id: str | None = None) -> str:
        """The one pending offer of an interaction (to `agent_id` if given)."""
        found = [
            oid
            for oid, a in self.pending(interaction_id).items()
            if agent_id is None or a == agent_id
        ]
        assert len(found) == 1, f"expected one offer of {interaction_id}, got {found}"
        return found[0]

    def accept(self, interaction_id: str, agent_id: str | None = None) -> Interaction:
        return self.router.accept(self.offer_id(interaction_id, agent_id))

    def decline(self, interaction_id: str, agent_id: str | None = None) -> None:
        self.router.decline(self.offer_id(interaction_id, agent_id))

    def state(self, interaction_id: str) -> InteractionState:
        return self.router.interaction(interaction_id).state

    def waiting_ids(self, queue: str | None = None) -> list[str]:
        return [i.id for i in self.router.waiting(queue)]

    def work(self, agent_id: str) -> set[str]:
        return set(self.router.agent(agent_id).work)

    def offers_by_agent(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for o in self.router.offers.values():
            out.setdefault(o.agent.id, []).append(o.waiting.id)
        return {k: sorted(v) for k, v in out.items()}

    def serve(self, interaction_id: str, agent_id: str | None = None) -> str:
        """Accept the pending offer, complete and end wrap-up: frees the agent again."""
        holder = self.accept(interaction_id, agent_id).agent
        assert holder is not None
        self.router.complete(interaction_id)
        if self.state_or_none(interaction_id) is InteractionState.WRAP_UP:
            self.router.end_wrap_up(interaction_id)
        return holder

    def state_or_none(self, interaction_id: str) -> InteractionState | None:
        w = self.router.active.get(interaction_id)
        return w.ix.state if w is not None else None


def observed(router: Router) -> dict[str, Any]:
    """What an observer can see of a router's state, comparable across instances."""
    stats = {
        name: {k: v for k, v in router.queue_stats(name).summary().items() if not k.startswith("_")}
        for name in router.queues
    }
    return {
        "now": router.now,
        "waiting": [i.id for i in router.waiting()],
        "positions": {i: router.position(i) for i in sorted(router.active)},
        "interactions": {
            i: (
                w.ix.state.value,
                w.ix.queue,
                w.ix.agent,
                w.ix.priority,
                w.ix.answered_at,
                w.ix.callback,
            )
            for i, w in sorted(router.active.items())
        },
        "offers": sorted(
            (oid, o.waiting.id, o.agent.id, o.expires_at) for oid, o in router.offers.items()
        ),
        "agents": {
            a.id: (
                a.presence.value,
                a.reason,
                {c: n for c, n in a.load.items() if n},
                sorted(a.work),
                a.answered,
                a.missed_in_row,
            )
            for a in router.agents.values()
        },
        "stats": stats,
        "next_deadline": router.next_deadline(),
    }


# ====================================================================== rebuilding


def through_json(events: Sequence[ev.Event]) -> list[ev.Event]:
    """Encode each event to JSON, check it is plain JSON with a type tag, decode it."""
    out = []
    for event in events:
        data = ev.encode(event)
        assert isinstance(json.loads(data)["type"], str)
        out.append(ev.decode(data.decode()))
    return out


def rebuilt(
    kit: Kit,
    *,
    routing: Routing | None = None,
    events: Sequence[ev.Event] | None = None,
    snapshot: bytes | None = None,
) -> Kit:
    """A fresh router with the same config and clock time, rebuilt from `kit`'s events
    (or from `events`, the log after `snapshot` when one is given)."""
    fresh = Kit(
        kit.queues,
        kit.agents,
        routing=routing if routing is not None else kit.routing,
        start=kit.now,
        ready=False,
    )
    assert fresh.drain() == []
    log = kit.drain() if events is None else events
    fresh.router.rebuild(through_json(log), snapshot=snapshot)
    return fresh


def comparable(kit: Kit) -> dict[str, object]:
    state = observed(kit.router)
    # Timers left over from what already happened (stale, harmless) differ between the two.
    state.pop("next_deadline")
    return state


def same_events(a: Sequence[ev.Event], b: Sequence[ev.Event]) -> None:
    """The same events; those stamped with the same moment may come in another order."""
    assert sorted(ev.encode(e) for e in a) == sorted(ev.encode(e) for e in b)


# ====================================================================== random scenarios
# One configuration exercised by the property test and by the rebuild tests: several
# queues, strategies, escalation ladders, max-wait actions, a preferred-agent wait and
# opening hours that open and close every few minutes.


def scenario_config() -> tuple[list[Queue], list[Agent], Routing]:
    from omniroute.model import Action, ActionKind, EscalationStep, Hours

    queues = [
        Queue(
            name="sales",
            channels=["voice", "webchat"],
            skills={"sales": 2},
            strategy="longest-idle",
            offer_timeout=10,
            wrap_up=5,
            escalation=[
                EscalationStep(after=20, relax=1),
                EscalationStep(after=40, overflow="support", notify=True),
            ],
            max_wait=150,
            on_max_wait=Action(action=ActionKind.CALLBACK),
        ),
        Queue(
            name="support",
            skills={"tech": 1},
            strategy="round-robin",
            offer_timeout=8,
            wrap_up=3,
            preferred_agent_wait=12,
            escalation=[EscalationStep(after=25, fallback={"sales": 3}, priority=2)],
            max_wait=120,
            on_max_wait=Action(action=ActionKind.CLOSE, message="sorry"),
        ),
        Queue(
            name="vip",
            channels=["voice"],
            skills={"vip": 1},
            strategy="ring-all",
            priority=1,
            offer_timeout=6,
            wrap_up=0,
            max_wait=60,
            on_max_wait=Action(action=ActionKind.OVERFLOW, queue="support"),
        ),
        Queue(
            name="night",
            channels=["webchat", "email"],
            strategy="load-balance",
            offer_timeout=10,
            wrap_up=2,
            hours=Hours(
                timezone="Europe/Lisbon",
                weekly={"fri": ["08:00-08:03", "08:05-08:09", "08:12-08:30", "08:40-24:00"]},
                closed=Action(action=ActionKind.CLOSE, message="we are closed"),
            ),
            escalation=[EscalationStep(after=15, callback=True)],
        ),
    ]
    agents = [
        agent("ana", {"sales": 3, "tech": 1}),
        agent("ben", {"sales": 1, "tech": 2}),
        agent("cid", {"tech": 3, "vip": 1}, capacity={"voice": 1, "webchat": 2, "email": 3}),
        agent("dee", {"vip": 2, "sales": 2}, queues=["vip", "sales"]),
        agent("eve", {}, capacity={"webchat": 3, "email": 5}, exclusive=[]),
    ]
    return queues, agents, Routing(max_missed_offers=2, seed=7)


SKILLS = ("sales", "tech", "vip")
CHANNELS = ("voice", "webchat", "email")


# ====================================================================== invariants


def check_invariants(router: Router, log: Sequence[ev.Event], submitted: Iterable[str]) -> None:
    """Assert what must hold after any command; `log` is every event emitted so far."""
    S = InteractionState
    # -- never assigned twice; state and agent agree
    holder: dict[str, str] = {}
    for a in router.agents.values():
        for iid in a.work:
            assert iid not in holder, f"{iid} is held by {holder[iid]} and {a.id}"
            holder[iid] = a.id
            w = router.active.get(iid)
            assert w is not None, f"{a.id} holds {iid}, which is not active"
            assert w.ix.agent == a.id, f"{iid}: ix.agent={w.ix.agent}, held by {a.id}"
            assert w.ix.state in (S.ASSIGNED, S.WRAP_UP), (iid, w.ix.state)
    for iid, w in router.active.items():
        if w.ix.state in (S.ASSIGNED, S.WRAP_UP):
            assert holder.get(iid) == w.ix.agent, (
                f"{iid} {w.ix.state} but held by {holder.get(iid)}"
            )
        else:
            assert w.ix.agent is None, f"{iid} is {w.ix.state} with agent {w.ix.agent}"
        offered = [o for o in router.offers.values() if o.waiting.id == iid]
        if w.ix.state is S.OFFERED:
            assert offered, f"{iid} is offered but has no pending offer"
        else:
            assert not offered, f"{iid} is {w.ix.state} with pending offers {offered}"
        assert w.ix.state not in (S.COMPLETED, S.ABANDONED, S.CLOSED), (iid, w.ix.state)

    # -- the indexes agree with the agents: each profile's count of free agents
    for profile in router.profiles.values():
        for channel, n in profile.free.items():
            free = [a for a in profile.agents.values() if a.can_take(channel)]
            assert n == len(free), f"profile {profile.id} counts {n} free on {channel}: {free}"

    # -- never lost: active, or exactly one terminal event
    ended: dict[str, int] = {}
    for e in log:
        if isinstance(e, TERMINAL):
            ended[e.interaction_id] = ended.get(e.interaction_id, 0) + 1
    for iid in submitted:
        if iid in router.active:
            assert iid not in ended, f"{iid} is active but ended by {ended[iid]} events"
        else:
            assert ended.get(iid) == 1, f"{iid} left the router with {ended.get(iid, 0)} ends"

    # -- capacity, exclusive channels, load = offers + work
    for a in router.agents.values():
        counted: dict[str, int] = {}
        for o in router.offers.values():
            if o.agent is a:
                counted[o.channel] = counted.get(o.channel, 0) + 1
        for iid in a.work:
            ch = router.active[iid].ix.channel
            counted[ch] = counted.get(ch, 0) + 1
        loads = {c: n for c, n in a.load.items() if n}
        assert loads == counted, f"{a.id}: load {loads} but offers+work {counted}"
        for ch, n in loads.items():
            assert n <= a.config.capacity.get(ch, 0), f"{a.id}: {n} on {ch} over capacity"
        busy = set(loads)
        for ch in busy & set(a.config.exclusive):
            assert busy == {ch} and loads[ch] == 1, f"{a.id}: exclusive {ch} with {loads}"


def _requirements(
    router: Router, w: Any, log: Sequence[ev.Event]
) -> list[tuple[str, dict[str, int]]]:
    """(queue, skills) pairs that qualify an agent for `w`, derived from the event log
    as documented: the queue's skills plus the contact's, relaxed by the escalation
    steps applied since it entered its current queue, plus fallback and overflow sets."""
    ix = w.ix
    own = router.queues[ix.queue].config
    relax = 0
    extra: list[tuple[str, dict[str, int]]] = []
    for e in log:
        if getattr(e, "interaction_id", None) != ix.id:
            continue
        if isinstance(e, ev.Transferred) and e.to_queue is not None:
            relax, extra = 0, []
        elif isinstance(e, ev.EscalationApplied):
            step = e.step
            relax += step.relax or 0
            if step.fallback:
                extra.append((ix.queue, {**step.fallback, **ix.skills}))
            if step.overflow:
                target = router.queues[step.overflow].config
                extra.append((target.name, {**target.skills, **ix.skills}))
        elif isinstance(e, ev.ActionApplied) and e.action.queue and e.action.action == "overflow":
            target = router.queues[e.action.queue].config
            extra.append((target.name, {**target.skills, **ix.skills}))
    out = [(ix.queue, {**own.skills, **ix.skills}), *extra]
    relaxed = []
    for queue, skills in out:
        if queue == ix.queue and relax:
            skills = {s: max(1, lvl - relax) for s, lvl in skills.items()}
        channels = router.queues[queue].config.channels
        if channels is None or ix.channel in channels:
            relaxed.append((queue, skills))
    return relaxed


def _passed_on(log: Sequence[ev.Event], interaction_id: str) -> set[str]:
    """Agents who declined or missed the interaction since it was last escalated,
    transferred or assigned: they are not offered it again until then."""
    out: set[str] = set()
    for e in log:
        if getattr(e, "interaction_id", None) != interaction_id:
            continue
        if isinstance(e, (ev.OfferDeclined, ev.OfferMissed)):
            out.add(e.agent_id)
        elif isinstance(e, (ev.EscalationApplied, ev.Transferred, ev.Assigned)):
            out.clear()
    return out


def could_take(router: Router, agent_id: str, channel: str) -> bool:
    """`AgentStatus.can_take` from the documented rules and the offers and work held."""
    a = router.agents[agent_id]
    if a.presence is not Presence.READY:
        return False
    held: dict[str, int] = {}
    for o in router.offers.values():
        if o.agent.id == agent_id:
            held[o.channel] = held.get(o.channel, 0) + 1
    for iid in a.work:
        ch = router.active[iid].ix.channel
        held[ch] = held.get(ch, 0) + 1
    if held.get(channel, 0) >= a.config.capacity.get(channel, 0):
        return False
    exclusive = set(a.config.exclusive)
    if channel in exclusive:
        return not held
    return not any(held.get(c) for c in exclusive)


def check_reads(router: Router) -> None:
    """`waiting()`, `position()` and `explain()` agree with the interactions' states."""
    waiting = {i for i, w in router.active.items() if w.ix.state is InteractionState.WAITING}
    listed = [i.id for i in router.waiting()]
    assert sorted(listed) == sorted(waiting)
    by_queue: dict[str, list[int]] = {}
    for iid, w in router.active.items():
        pos = router.position(iid)
        if iid in waiting:
            by_queue.setdefault(w.ix.queue, []).append(pos)
        else:
            assert pos == 0, f"{iid} is {w.ix.state} but at position {pos}"
        info = router.explain(iid)
        assert info["state"] == w.ix.state.value and info["position"] == pos
    for queue, positions in by_queue.items():
        assert sorted(positions) == list(range(1, len(positions) + 1)), (queue, positions)


def idle_violations(router: Router, log: Sequence[ev.Event]) -> list[str]:
    """Ready agents with room who qualify for a waiting interaction nobody offered them."""
    out = []
    for w in router.active.values():
        if w.ix.state is not InteractionState.WAITING:
            continue
        pref = w.ix.preferred_agent
        if pref and w.preferred_until > router.now and pref in router.agents:
            continue  # reserved for its preferred agent for now
        passed = _passed_on(log, w.ix.id)
        reqs = _requirements(router, w, log)
        for a in router.agents.values():
            if a.id in passed or not could_take(router, a.id, w.ix.channel):
                continue
            for queue, skills in reqs:
                if a.config.queues is not None and queue not in a.config.queues:
                    continue
                if all(a.config.skills.get(s, 0) >= lvl for s, lvl in skills.items()):
                    out.append(f"{a.id} is free for {w.ix.id} ({queue} {skills}) yet it waits")
                    break
    return out


# ====================================================================== a random driver


def drive(
    kit: Kit,
    rng: Any,
    steps: int,
    *,
    prefix: str = "r",
    outbound: bool = False,
) -> list[str]:
    """Apply `steps` random commands (and clock jumps) to `kit`; return submitted ids.

    `rng` is a `random.Random`, so a seed gives the same run twice. With `outbound`,
    agents also start outbound contacts (a run without keeps its sequence of choices).
    """
    router = kit.router
    S = InteractionState
    submitted: list[str] = []
    channels = {"sales": ("voice", "webchat"), "support": CHANNELS, "vip": ("voice",)}
    channels["night"] = ("webchat", "email")
    agents = sorted(router.agents)

    def ids(*states: InteractionState) -> list[str]:
        return sorted(i for i, w in router.active.items() if w.ix.state in states)

    for n in range(steps):
        roll = rng.random()
        if outbound and rng.random() < 0.12:
            who = rng.choice(agents)
            queue = rng.choice(sorted(router.queues))
            channel = rng.choice(channels.get(queue, CHANNELS))
            iid = f"{prefix}o{n}"
            customer = rng.choice([None, "c1", "c3"])
            try:  # refused when the agent is offline or has no room: nothing happens
                router.start_outbound(
                    ix(iid, queue, channel, customer=customer, address="+351111"), who
                )
                submitted.append(iid)
            except RouterError:
                pass
        elif roll < 0.22:
            queue = rng.choice(sorted(router.queues))
            iid = f"{prefix}{n}"
            skills = {rng.choice(SKILLS): rng.randint(1, 2)} if rng.random() < 0.3 else {}
            customer = rng.choice([None, "c1", "c2"])
            router.submit(
                ix(
                    iid,
                    queue,
                    rng.choice(channels.get(queue, CHANNELS)),
                    customer=customer,
                    priority=rng.randint(0, 2),
                    skills=skills,
                )
            )
            submitted.append(iid)
        elif roll < 0.40:
            offers = sorted(router.offers)
            if offers:
                oid = rng.choice(offers)
                if rng.random() < 0.8:
                    router.accept(oid)
                else:
                    router.decline(oid)
        elif roll < 0.55:
            assigned = ids(S.ASSIGNED)
            if assigned:
                iid = rng.choice(assigned)
                what = rng.random()
                if what < 0.7:
                    router.complete(iid)
                elif what < 0.8:
                    router.requeue(iid)
                elif what < 0.9:
                    holder = router.active[iid].ix.agent
                    router.transfer(iid, to_agent=rng.choice([a for a in agents if a != holder]))
                else:
                    w = router.active[iid]
                    targets = [
                        q
                        for q in sorted(router.queues)
                        if q != w.ix.queue and w.ix.channel in channels.get(q, CHANNELS)
                    ]
                    if targets:
                        router.transfer(iid, to_queue=rng.choice(targets))
        elif roll < 0.60:
            wrap = ids(S.WRAP_UP)
            if wrap:
                router.end_wrap_up(rng.choice(wrap))
        elif roll < 0.66:
            waiting = ids(S.WAITING, S.OFFERED)
            if waiting:
                iid = rng.choice(waiting)
                if rng.random() < 0.7:
                    router.abandon(iid)
                else:
                    router.request_callback(iid, "+351000")
        elif roll < 0.69:
            waiting = ids(S.WAITING)
            if waiting:
                iid = rng.choice(waiting)
                ch = router.active[iid].ix.channel
                free = sorted(a.id for a in router.agents.values() if a.can_take(ch))
                if free:
                    router.assign(iid, rng.choice(free))
        elif roll < 0.78:
            presence = rng.choice([Presence.READY, Presence.READY, Presence.NOT_READY])
            if rng.random() < 0.15:
                presence = Presence.OFFLINE
            reason = "break" if presence is Presence.NOT_READY else None
            router.set_presence(rng.choice(agents), presence, reason)
        else:
            kit.clock.advance(rng.choice([0.5, 1, 2, 3, 5, 8, 13, 21, 40, 90]))
            router.advance()
        kit.drain()
    return submitted

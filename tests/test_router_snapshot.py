"""Router snapshots: starting from a snapshot and the events after it gives the same
router as replaying the whole log (and as the live router), which goes on deciding the
same way; a snapshot that does not fit is refused with a reason, and the router it was
refused by can still replay the whole log."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant
from routerkit import (
    Kit,
    Routing,
    agent,
    comparable,
    drive,
    observed,
    rebuilt,
    scenario_config,
)
from test_router_properties import RouterMachine
from test_router_rebuild import rich_day

from omniroute import events as ev
from omniroute.model import EscalationStep, Presence, Queue
from omniroute.router import RouterError, SnapshotError
from omniroute.router import snapshot as snap


def check_resumes(kit: Kit, k: int, data: bytes, *, steps: int = 25, seed: int = 0) -> None:
    """From the snapshot taken after event `k` plus the events after it, a router equals
    the full replay and the live router, and all three emit the same events in the same
    order for the same commands."""
    log = kit.drain()
    full = rebuilt(kit)
    part = rebuilt(kit, events=log[k:], snapshot=data)
    assert full.drain() == [] and part.drain() == []
    assert comparable(part) == comparable(full) == comparable(kit)
    assert observed(part.router)["next_deadline"] == observed(full.router)["next_deadline"]
    starts = [len(k.drain()) for k in (kit, full, part)]
    for step in range(steps):
        for k_ in (kit, full, part):
            drive(k_, random.Random(seed * 1000 + step), 1, prefix=f"z{step}-")
        logs = [k_.drain()[n:] for k_, n in zip((kit, full, part), starts, strict=True)]
        assert logs[2] == logs[1], f"snapshot and full replay differ at step {step}"
        assert comparable(part) == comparable(full), f"state differs after step {step}"


def decoded(data: bytes) -> tuple[snap.Header, snap.Body]:
    header = msgspec.msgpack.decode(data, type=snap.Header)
    body = msgspec.msgpack.decode(header.body, type=snap.Body)
    header.body = msgspec.Raw(b"")
    return header, body


def assert_same_snapshot(a: bytes, b: bytes) -> None:
    """The same content, field by field (an int the live router holds may come back as
    a float, so the bytes may differ)."""
    (ha, ba), (hb, bb) = decoded(a), decoded(b)
    assert ha == hb
    for field in ba.__struct_fields__:
        assert getattr(ba, field) == getattr(bb, field), field


# ================================================================== random sequences


class SnapshotMachine(RouterMachine):
    """The property test's random commands; after every step a snapshot is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[tuple[int, bytes]] = []

    @invariant()
    def take_snapshot(self) -> None:
        log = self.kit.drain()
        data = self.router.snapshot()
        if not self.snapshots or self.snapshots[-1][0] != len(log):
            self.snapshots.append((len(log), data))

    def teardown(self) -> None:
        log = self.kit.drain()
        # Taken now and loaded at once: the very same state, timers and all.
        comparable(self.kit)  # (reads make today's KPI records: make them before)
        data = self.router.snapshot()
        same = rebuilt(self.kit, events=[], snapshot=data)
        comparable(same)
        assert_same_snapshot(same.router.snapshot(), data)
        picks = sorted({0, len(self.snapshots) // 2, len(self.snapshots) - 1})
        for i in picks:
            k, data = self.snapshots[i]
            full = rebuilt(self.kit)
            part = rebuilt(self.kit, events=log[k:], snapshot=data)
            assert part.drain() == full.drain() == []
            assert comparable(part) == comparable(full) == comparable(self.kit), f"k={k}"
            nf, np_ = len(full.drain()), len(part.drain())
            for step in range(15):
                for which in (full, part):
                    drive(which, random.Random(step), 1, prefix=f"z{step}-")
                assert part.drain()[np_:] == full.drain()[nf:], f"k={k}, step {step}"
                assert comparable(part) == comparable(full), f"k={k}, step {step}"


SnapshotMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_snapshot_at_any_point_resumes_like_a_full_replay = SnapshotMachine.TestCase


@pytest.mark.parametrize("seed", range(4))
def test_snapshot_of_a_random_run_resumes_like_the_live_router(seed: int) -> None:
    queues, agents, routing = scenario_config()
    kit = Kit(queues, agents, routing=routing, ready=["ana", "ben", "cid"])
    drive(kit, random.Random(seed), 60)
    k = len(kit.drain())
    data = kit.router.snapshot()
    drive(kit, random.Random(seed + 100), 60, prefix="s")
    check_resumes(kit, k, data, seed=seed)


def test_snapshot_at_the_end_of_a_busy_day() -> None:
    kit = rich_day()
    log = kit.drain()
    data = kit.router.snapshot()
    part = rebuilt(kit, events=[], snapshot=data)
    full = rebuilt(kit, events=log)
    assert part.drain() == []
    assert comparable(part) == comparable(full) == comparable(kit)
    starts = [len(k.drain()) for k in (kit, full, part)]
    for k in (kit, full, part):
        k.advance(30)
        k.router.set_presence("b", Presence.READY)
        k.submit("late", "general")
        k.advance(60)
    logs = [k.drain()[n:] for k, n in zip((kit, full, part), starts, strict=True)]
    assert logs[0] and logs[2] == logs[1] == logs[0]
    assert comparable(part) == comparable(kit)


def test_snapshot_of_a_rebuilt_router_is_the_same() -> None:
    kit = rich_day()
    kit.drain()
    data = kit.router.snapshot()
    part = rebuilt(kit, events=[], snapshot=data)
    # The same content (an int the live router holds may come back as a float).
    assert_same_snapshot(part.router.snapshot(), data)


# ================================================================== refusals


def day_and_snapshot() -> tuple[Kit, bytes]:
    kit = rich_day()
    kit.drain()
    return kit, kit.router.snapshot()


def test_a_snapshot_needs_every_event_drained() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("i1")
    with pytest.raises(RouterError, match="drain"):
        kit.router.snapshot()
    kit.drain()
    kit.router.snapshot()


def test_another_format_is_refused_and_a_full_replay_still_works() -> None:
    kit, data = day_and_snapshot()
    header = msgspec.msgpack.decode(data, type=snap.Header)
    header.format = snap.FORMAT + 1
    old = msgspec.msgpack.encode(header)
    fresh = Kit(kit.queues, kit.agents, routing=kit.routing, start=kit.now, ready=False)
    with pytest.raises(SnapshotError, match=f"format {snap.FORMAT + 1}.*reads format"):
        fresh.router.rebuild([], snapshot=old)
    fresh.router.rebuild(kit.drain())
    assert comparable(fresh) == comparable(kit)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda qs, ags: (qs[:-1], ags), "queues removed: night"),
        (lambda qs, ags: ([*qs, Queue(name="extra")], ags), "queues added: extra"),
        (
            lambda qs, ags: ([msgspec.structs.replace(qs[0], wrap_up=5), *qs[1:]], ags),
            "queues changed: sales",
        ),
        (lambda qs, ags: (qs, [*ags, agent("zed")]), "agents in the config added: zed"),
        (lambda qs, ags: (qs, ags[1:]), "removed: a"),
        (lambda qs, ags: (qs, [agent("a", {"sales": 5}), *ags[1:]]), "settings or order"),
    ],
)
def test_another_config_is_refused_naming_the_change(change, why) -> None:  # type: ignore[no-untyped-def]
    kit, data = day_and_snapshot()
    queues, agents = change(kit.queues, kit.agents)
    fresh = Kit(queues, agents, routing=kit.routing, start=kit.now, ready=False)
    before = observed(fresh.router)
    with pytest.raises(SnapshotError, match=why):
        fresh.router.rebuild([], snapshot=data)
    assert observed(fresh.router) == before  # untouched: a full replay can go ahead


def test_routing_settings_are_part_of_the_config() -> None:
    kit, data = day_and_snapshot()
    fresh = Kit(kit.queues, kit.agents, routing=Routing(seed=99), start=kit.now, ready=False)
    with pytest.raises(SnapshotError, match=r"\[routing\]"):
        fresh.router.rebuild([], snapshot=data)


def test_texts_for_agents_may_change() -> None:
    kit, data = day_and_snapshot()
    queues = [msgspec.structs.replace(q, script="Say hello", canned=["Hi!"]) for q in kit.queues]
    fresh = Kit(queues, kit.agents, routing=kit.routing, start=kit.now, ready=False)
    fresh.router.rebuild([], snapshot=data)
    assert comparable(fresh) == comparable(kit)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "body"])
def test_a_damaged_snapshot_is_refused_and_the_router_left_as_built(damage: str) -> None:
    kit, data = day_and_snapshot()
    if damage == "garbage":
        bad = b"\x00not msgpack"
    elif damage == "truncated":
        bad = data[: len(data) // 2]
    else:  # well-formed, but an offer names an agent nobody knows
        header, body = decoded(data)
        body.offers[0].agent = "nobody"
        header.body = msgspec.Raw(msgspec.msgpack.encode(body))
        bad = msgspec.msgpack.encode(header)
    fresh = Kit(kit.queues, kit.agents, routing=kit.routing, start=kit.now, ready=False)
    before = observed(fresh.router)
    with pytest.raises(SnapshotError, match="snapshot"):
        fresh.router.rebuild([], snapshot=bad)
    assert observed(fresh.router) == before
    fresh.router.rebuild(kit.drain())
    assert comparable(fresh) == comparable(kit)


def test_a_router_that_already_works_cannot_load_a_snapshot() -> None:
    kit, data = day_and_snapshot()
    with pytest.raises(RouterError, match="freshly built"):
        kit.router.rebuild([], snapshot=data)


# ================================================================== what a snapshot keeps


def test_round_robin_turns_survive_a_snapshot() -> None:
    queues = [Queue(name="q", strategy="round-robin")]
    agents = [agent(n, {n: 1}, capacity={"webchat": 3}, exclusive=[]) for n in "abc"]
    kit = Kit(queues, agents)
    kit.submit("i1", channel="webchat")
    kit.serve("i1")
    kit.drain()
    again = rebuilt(kit, events=[], snapshot=kit.router.snapshot())
    for k in (kit, again):
        k.mark()
        k.submit("i2", channel="webchat")
    assert [e.agent_id for e in again.new(ev.Offered)] == ["b"]
    assert [e.agent_id for e in kit.new(ev.Offered)] == ["b"]


def test_added_agents_keep_their_place_after_a_removal() -> None:
    """Ties fall to config order: an agent added at run time after another was removed
    never shares a place with an existing one."""
    kit = Kit([Queue(name="q")], [agent("a"), agent("b")])
    r = kit.router
    r.set_presence("a", Presence.OFFLINE)
    r.remove_agent("a")
    r.upsert_agent(agent("c"))
    assert r.agent("c").ordinal not in {r.agent("b").ordinal}
    again = rebuilt(kit, events=[], snapshot=(kit.drain(), r.snapshot())[1])
    assert again.router.agent("c").ordinal == r.agent("c").ordinal


def test_timers_out_of_lane_order_survive_a_snapshot() -> None:
    """A transfer reserves a contact for its colleague for the offer time-out, a returning
    customer for the shorter preferred wait: the second deadline comes before the first,
    so it is kept outside the queue's timer lane, and must be kept by a snapshot too."""
    q = Queue(name="q", preferred_agent_wait=5, offer_timeout=30)
    kit = Kit([q], [agent("a"), agent("b")])
    kit.submit("i0")
    kit.accept("i0", "a")
    kit.submit("i1", customer="cust")
    kit.accept("i1", "b")
    kit.router.transfer("i1", to_agent="a")  # a is on i0: reserved for a until +30
    kit.advance(1)
    kit.submit("i2", preferred_agent="a")  # reserved for a until +6
    kit.drain()
    data = kit.router.snapshot()
    part = rebuilt(kit, events=[], snapshot=data)
    starts = [len(k.drain()) for k in (kit, part)]
    for k in (kit, part):
        k.advance(6)  # i2's reservation ends: c takes it
    logs = [k.drain()[n:] for k, n in zip((kit, part), starts, strict=True)]
    assert [(e.interaction_id, e.agent_id) for e in logs[0] if isinstance(e, ev.Offered)] == [
        ("i2", "b")
    ]
    assert logs[1] == logs[0]


def test_spent_timers_are_left_out() -> None:
    """An accepted offer's time-out and an answered contact's SLA timer can only do
    nothing: the live router skips them unfired and a snapshot leaves them out, so it
    equals a full replay's (which armed them all) and resumes like it."""
    q = Queue(name="q", offer_timeout=30)
    kit = Kit([q], [agent("a"), agent("b")], ready=["a", "b"])
    for n in range(4):
        kit.submit(f"i{n}")
    kit.accept("i0", "a")
    kit.accept("i1", "b")
    k = len(kit.drain())
    data = kit.router.snapshot()
    _, body = decoded(data)
    timers = [t for lane in (lq for q_ in body.queues for lq in q_.lanes) for t in lane]
    timers += body.timers
    assert sorted((t.kind, t.ref) for t in timers) == [("_sla_due", "i2"), ("_sla_due", "i3")]
    full = rebuilt(kit)
    assert_same_snapshot(full.router.snapshot(), data)
    kit.advance(q.sla.seconds + 1)  # i2 and i3 breach; the spent timers before them never fire
    assert [e.interaction_id for e in kit.new(ev.SlaBreached)] == ["i2", "i3"]
    check_resumes(kit, k, data)


def test_rungs_armed_twice_or_left_behind_in_an_older_snapshot_are_dropped() -> None:
    """Before a rung was the contact's own timer (armed once while pending), a contact
    that went back in line armed its rung again, and one moved to a new segment left
    its old rung behind: format-5 snapshots of then hold such rungs. Loading one keeps
    the contact's current rung only: it escalates once, as the router that wrote it."""
    q = Queue(name="q", escalation=[EscalationStep(after=60, relax=1)])
    kit = Kit([q], [agent("a")], ready=["a"])
    kit.submit("i0")
    kit.accept("i0", "a")
    kit.submit("i1")  # waits: a is busy; its rung is due at +60
    kit.drain()
    data = kit.router.snapshot()
    header, body = decoded(data)
    [lane] = [lane for lane in body.queues[0].lanes if lane and lane[0].kind == "_ladder_due"]
    rung = lane[-1]
    assert rung.ref == "i1"
    twice = msgspec.structs.replace(rung, seq=rung.seq + 100)  # the same rung, armed again
    left = msgspec.structs.replace(rung, seq=rung.seq + 101, at=rung.at - 1)  # old segment
    lane.extend([twice, left])
    header.body = msgspec.Raw(msgspec.msgpack.encode(body))
    old = msgspec.msgpack.encode(header)
    part = rebuilt(kit, events=[], snapshot=old)
    assert comparable(part) == comparable(kit)
    assert_same_snapshot(part.router.snapshot(), data)
    starts = [len(k.drain()) for k in (kit, part)]
    for k in (kit, part):
        k.advance(61)
    logs = [k.drain()[n:] for k, n in zip((kit, part), starts, strict=True)]
    assert [e.interaction_id for e in logs[1] if isinstance(e, ev.EscalationApplied)] == ["i1"]
    assert logs[1] == logs[0]

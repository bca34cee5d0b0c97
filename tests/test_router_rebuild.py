"""The event log is the source of truth: a fresh router fed the drained events (through
JSON, so they are self-sufficient) is in the same state as the router that emitted them,
and goes on deciding the same way."""

from __future__ import annotations

import json
import random

import pytest
from routerkit import (
    Kit,
    Routing,
    agent,
    comparable,
    drive,
    rebuilt,
    same_events,
    scenario_config,
    through_json,
)

from omniroute import events as ev
from omniroute.model import (
    Action,
    ActionKind,
    Agent,
    EscalationStep,
    Hours,
    Presence,
    Queue,
)

# ================================================================== JSON


def test_every_event_round_trips_through_json() -> None:
    queues, agents, routing = scenario_config()
    kit = Kit(queues, agents, routing=routing, ready=["ana", "ben", "cid"])
    drive(kit, random.Random(1), 200)
    events = kit.drain()
    kinds = {type(e) for e in events}
    assert {ev.InteractionQueued, ev.Offered, ev.Assigned, ev.Completed} <= kinds
    decoded = through_json(events)
    assert [type(e) for e in decoded] == [type(e) for e in events]
    # The same JSON once encoded again (strategy keys in explanations come back as lists,
    # integral seconds as floats).
    assert [json.loads(ev.encode(e)) for e in decoded] == [json.loads(ev.encode(e)) for e in events]
    assert [e for e in decoded if not isinstance(e, ev.Offered)] == [
        e for e in events if not isinstance(e, ev.Offered)
    ]
    # a whole log as JSON lines
    lines = b"\n".join(ev.encode(e) for e in events).split(b"\n")
    assert [json.loads(ev.encode(ev.decode(line))) for line in lines] == [
        json.loads(line) for line in lines
    ]


def test_decode_names_a_bad_field() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError, match="agent_id"):
        ev.decode(
            '{"type": "offered", "at": 1, "offer_id": "o1", "interaction_id": "i",'
            ' "agent_id": 5, "expires_at": 2}'
        )


# ================================================================== random runs


def random_run(seed: int, steps: int = 150) -> Kit:
    """A random run of the shared scenario: every command, every queue feature."""
    queues, agents, routing = scenario_config()
    kit = Kit(queues, agents, routing=routing, ready=["ana", "ben", "cid"])
    drive(kit, random.Random(seed), steps)
    return kit


@pytest.mark.parametrize("seed", range(12))
def test_rebuild_restores_the_state_of_a_random_run(seed: int) -> None:
    kit = random_run(seed)
    assert kit.router.active, "the run should leave work in flight"
    again = rebuilt(kit)
    assert again.drain() == []  # rebuilding decides nothing new
    before, after = comparable(kit), comparable(again)
    assert after["waiting"] == before["waiting"]
    assert after["positions"] == before["positions"]
    assert after["offers"] == before["offers"]
    assert after["interactions"] == before["interactions"]
    assert after["agents"] == before["agents"]
    assert after["stats"] == before["stats"]
    assert after == before


@pytest.mark.parametrize("seed", range(6))
def test_rebuilt_router_goes_on_deciding_the_same_way(seed: int) -> None:
    kit = random_run(seed)
    again = rebuilt(kit)
    n1, n2 = len(kit.drain()), len(again.drain())
    for step in range(80):
        for k in (kit, again):
            drive(k, random.Random(seed * 1000 + step), 1, prefix=f"z{step}-")
        same_events(kit.drain()[n1:], again.drain()[n2:])
        assert comparable(again) == comparable(kit), f"differ after step {step}"


# ================================================================== a hand-made day


def rich_config() -> tuple[list[Queue], list[Agent]]:
    queues = [
        Queue(
            name="sales",
            skills={"sales": 2},
            wrap_up=30,
            preferred_agent_wait=40,
            escalation=[
                EscalationStep(after=20, relax=1),
                EscalationStep(after=40, overflow="general", notify=True),
            ],
        ),
        Queue(name="general", strategy="round-robin", offer_timeout=10),
        Queue(name="ring", channels=["voice"], strategy="ring-all", skills={"ring": 1}),
        Queue(
            name="night",
            channels=["webchat"],
            hours=Hours(
                timezone="Europe/Lisbon",
                weekly={"fri": ["09:00-17:00"]},
                closed=Action(action=ActionKind.KEEP),
            ),
            escalation=[EscalationStep(after=10, callback=True)],
        ),
    ]
    agents = [
        agent("a", {"sales": 2}),
        agent("b", {"sales": 1}),
        agent("c", {"ring": 1}, queues=["general", "ring"]),
        agent("d", {"ring": 1}),
        agent("e", {}, capacity={"webchat": 3}, exclusive=[]),
    ]
    return queues, agents


def rich_day() -> Kit:
    queues, agents = rich_config()
    kit = Kit(queues, agents, routing=Routing(max_missed_offers=1), ready=["a", "b", "c", "d"])
    r = kit.router
    r.set_presence("e", Presence.NOT_READY, "training")
    kit.submit("s1", "sales", customer="cust-1")
    kit.accept("s1", "a")
    kit.submit("g1", "general")
    kit.accept("g1", "b")
    kit.advance(3)
    kit.submit("s2", "sales", skills={"sales": 2})  # a is busy, b below the level
    kit.advance(2)
    kit.submit("n1", "night", "webchat")  # closed until 09:00, kept: offered to d
    assert kit.offered_to("n1") == ["d"]
    r.request_callback("s2", "+351 210 000 000")
    kit.advance(5)
    r.complete("g1")  # b wraps up until t=20
    kit.submit("r1", "ring")  # rings c (d has a chat offer)
    assert kit.offered_to("r1") == ["c"]
    kit.advance(10)  # t=20: d misses n1 and goes not ready; b is free again
    assert r.agent("d").reason == "missed offers"
    kit.advance(3)  # t=23: s2 relaxed, b may take it
    for oid, who in kit.pending("s2").items():
        r.decline(oid, who)
    kit.advance(2)
    r.complete("s1")  # a wraps up for 30 s
    kit.submit("s3", "sales", customer="cust-1")  # reserved for a (last agent) for 40 s
    r.upsert_agent(agent("f", {"sales": 3}))
    r.set_presence("e", Presence.READY)
    kit.submit("g2", "general", "webchat")
    kit.advance(4)
    r.set_presence("e", Presence.OFFLINE)
    r.remove_agent("e")
    kit.submit("g3", "general")
    kit.advance(1)
    kit.accept("g2", "b")
    r.transfer("g2", to_agent="a")  # a cannot take a chat in wrap-up: reserved for 10 s
    kit.accept("n1", "b")
    r.requeue("n1", "wrong queue")  # back in line, and to b again
    kit.advance(2)
    return kit


def test_rebuild_restores_a_busy_day() -> None:
    kit = rich_day()
    state = comparable(kit)
    # the day left a bit of everything in flight
    assert state["offers"]
    assert any(v[0] == "wrap_up" for v in state["interactions"].values())
    assert any(a[1] == "missed offers" for a in state["agents"].values())
    assert kit.router.explain("s3").get("reserved_for") == "a"
    assert kit.router.explain("g2").get("reserved_for") == "a"
    assert kit.all(ev.Requeued)
    again = rebuilt(kit)
    assert again.drain() == []
    assert comparable(again) == state
    # and both go on the same way
    n1, n2 = len(kit.drain()), len(again.drain())
    for k in (kit, again):
        k.advance(30)
        k.router.set_presence("b", Presence.READY)
        k.submit("late", "general")
        k.advance(60)
    same_events(kit.drain()[n1:], again.drain()[n2:])
    assert comparable(again) == comparable(kit)


def test_rebuild_keeps_round_robin_turns() -> None:
    queues = [Queue(name="q", strategy="round-robin")]
    agents = [agent(n, {n: 1}, capacity={"webchat": 3}, exclusive=[]) for n in "abc"]
    kit = Kit(queues, agents)
    kit.submit("i1", channel="webchat")
    kit.serve("i1")
    again = rebuilt(kit)
    for k in (kit, again):
        k.mark()
        k.submit("i2", channel="webchat")
    assert [e.agent_id for e in again.new(ev.Offered)] == ["b"]
    assert [e.agent_id for e in kit.new(ev.Offered)] == ["b"]


# ================================================================== divergences


def test_rebuild_does_not_apply_a_max_wait_the_original_skipped() -> None:
    """Guards a bug fixed in cd2b572: rebuild re-fires a max_wait timer the live router skipped
    (the contact was ringing then): the rebuilt router closes a contact the original kept
    waiting"""
    q = Queue(name="q", max_wait=30, offer_timeout=15, on_max_wait=Action(action=ActionKind.CLOSE))
    kit = Kit([q], [agent("a")], ready=False)
    kit.submit("i1")
    kit.advance(25)
    kit.router.set_presence("a", Presence.READY)
    kit.advance(20)  # max wait passed while ringing; missed at 40
    again = rebuilt(kit)
    assert again.drain() == []
    assert comparable(again) == comparable(kit)


def test_rebuild_does_not_escalate_what_the_original_did_not() -> None:
    """Guards a bug fixed in cd2b572: rebuild re-fires a ladder rung the live router dropped
    while the contact was assigned; after a requeue the rebuilt router escalates it, the
    original never does"""
    q = Queue(name="q", skills={"s": 3}, escalation=[EscalationStep(after=30, relax=1)])
    kit = Kit([q], [agent("a", {"s": 3}), agent("b", {"s": 2})], ready=["a"])
    kit.submit("x")
    kit.accept("x", "a")
    kit.advance(40)
    kit.router.requeue("x")
    again = rebuilt(kit)
    assert again.drain() == []
    assert comparable(again) == comparable(kit)


def test_rebuilt_random_strategy_repeats_the_original() -> None:
    """Guards a bug fixed in cd2b572: the random strategy's generator state is not part of the
    rebuilt state: after a restart the same seed and the same commands pick other agents"""
    queues = [Queue(name="q", strategy="random")]
    agents = [agent(n, {n: 1}) for n in "abcdef"]
    kit = Kit(queues, agents, routing=Routing(seed=3))
    for n in range(10):
        kit.submit(f"i{n}")
        kit.serve(f"i{n}")
        kit.advance(1)
    again = rebuilt(kit)
    picks: dict[int, list[str]] = {0: [], 1: []}
    for which, k in enumerate((kit, again)):
        for n in range(10, 20):
            k.submit(f"i{n}")
            picks[which].append(k.serve(f"i{n}"))
            k.advance(1)
    assert picks[0] == picks[1]


def test_rebuild_remembers_a_closing_before_the_restart() -> None:
    """Guards a bug fixed after cd2b572: when a queue last closed is derived from its
    calendar, so a rebuilt router closes a contact that rang across closing time."""
    hours = Hours(
        timezone="Europe/Lisbon",
        weekly={"fri": ["09:00-17:00"]},
        closed=Action(action=ActionKind.CLOSE, message="closed"),
    )
    kit = Kit([Queue(name="q", hours=hours, offer_timeout=20)], [agent("a")], ready=False)
    kit.advance(9 * 3600 - 5)  # 16:59:55
    kit.submit("x")
    kit.router.set_presence("a", Presence.READY)  # rings until 17:00:15
    kit.advance(10)  # 17:00:05: closed while it rang
    again = rebuilt(kit)
    assert comparable(again) == comparable(kit)
    for k in (kit, again):
        k.advance(15)  # the offer is missed: back in a closed queue
    assert [e.interaction_id for e in kit.all(ev.Closed)] == ["x"]
    assert [e.interaction_id for e in again.all(ev.Closed)] == ["x"]

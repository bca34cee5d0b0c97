"""An interaction's life in the router: who may take it, in which order, offers, presence,
wrap-up, transfers, requeue, abandon, supervisor moves, agents changing, bad commands."""

from __future__ import annotations

import pytest
from routerkit import Kit, Routing, agent, ix

from omniroute import events as ev
from omniroute.model import EscalationStep, InteractionState, Presence, Queue
from omniroute.router.core import RouterError

S = InteractionState
CHAT_ONLY = {"capacity": {"webchat": 3}, "exclusive": []}


# ================================================================== who may take it


def test_an_agent_below_the_minimum_level_never_gets_it() -> None:
    q = Queue(name="q", skills={"billing": 3})
    kit = Kit([q], [agent("low", {"billing": 2}), agent("none", {})])
    kit.submit("i1")
    kit.advance(3600)
    assert kit.state("i1") is S.WAITING
    assert kit.all(ev.Offered) == []
    why = kit.router.explain("i1")["requirements"][0]
    assert why["skills"] == {"billing": 3}
    assert why["matching_agents"] == 0
    assert why["why_waiting"] == "no agent has these skills"
    kit.router.upsert_agent(agent("ok", {"billing": 3}))
    kit.router.set_presence("ok", Presence.READY)
    assert kit.offered_to("i1") == ["ok"]


def test_the_interactions_own_skills_add_to_the_queues() -> None:
    q = Queue(name="q", skills={"billing": 1})
    kit = Kit([q], [agent("en", {"billing": 5}), agent("fr", {"billing": 1, "french": 2})])
    kit.submit("i1", skills={"french": 2})
    assert kit.offered_to("i1") == ["fr"]
    kit.submit("i2", skills={"french": 3})
    assert kit.state("i2") is S.WAITING


def test_an_agent_serves_only_the_queues_listed() -> None:
    queues = [Queue(name="q"), Queue(name="other")]
    kit = Kit(queues, [agent("a", queues=["other"])])
    kit.submit("i1", "q")
    assert kit.state("i1") is S.WAITING
    kit.submit("i2", "other")
    assert kit.offered_to("i2") == ["a"]


# ================================================================== order in line


def test_priority_first_then_first_come_first_served() -> None:
    kit = Kit([Queue(name="q", aging=0)], [agent("a")], ready=False)
    for iid, priority in (("p0a", 0), ("p1a", 1), ("p0b", 0), ("p2", 2), ("p1b", 1)):
        kit.submit(iid, priority=priority)
        kit.advance(1)
    expected = ["p2", "p1a", "p1b", "p0a", "p0b"]
    assert kit.waiting_ids() == expected
    assert [kit.router.position(i) for i in expected] == [1, 2, 3, 4, 5]
    kit.router.set_presence("a", Presence.READY)
    served = []
    for _ in expected:
        (oid,) = kit.pending()
        served.append(kit.router.offers[oid].waiting.id)
        kit.serve(served[-1])
    assert served == expected


def test_aging_lets_an_old_low_priority_contact_beat_new_high_priority_ones() -> None:
    q = Queue(name="q", aging=30)  # every 30 s waited is worth one priority level
    assert q.aging == 30
    kit = Kit([q], [agent("a")], ready=False)
    kit.submit("old", priority=0)
    kit.advance(45)  # 1.5 levels: still behind a new priority-2 contact
    kit.submit("new1", priority=2)
    assert kit.waiting_ids() == ["new1", "old"]
    kit.advance(60)  # old: 3.5 levels; new1: 2 + 2 = 4
    kit.submit("new2", priority=2)  # 2 levels
    assert kit.waiting_ids() == ["new1", "old", "new2"]
    assert [kit.router.position(i) for i in ("new1", "old", "new2")] == [1, 2, 3]
    kit.router.set_presence("a", Presence.READY)
    served = []
    for _ in range(3):
        (oid,) = kit.pending()
        served.append(kit.router.offers[oid].waiting.id)
        kit.serve(served[-1])
    assert served == ["new1", "old", "new2"]


def test_default_aging_is_one_level_a_minute_and_zero_is_strict() -> None:
    assert Queue(name="q").aging == 60
    kit = Kit([Queue(name="q", aging=0)], [agent("a")], ready=False)
    kit.submit("old", priority=0)
    kit.advance(10_000)
    kit.submit("new", priority=1)
    assert kit.waiting_ids() == ["new", "old"]
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("new") == ["a"]

    kit = Kit([Queue(name="q")], [agent("a")], ready=False)
    kit.submit("old", priority=0)
    kit.advance(181)  # three minutes: worth three levels
    kit.submit("new", priority=2)
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("old") == ["a"]


# ================================================================== capacity


def test_capacity_per_channel_counts_offers_and_work() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])  # voice 1, webchat 3
    for n in range(4):
        kit.submit(f"c{n}", channel="webchat")
    assert [kit.state(f"c{n}") for n in range(4)] == [S.OFFERED] * 3 + [S.WAITING]
    assert kit.router.agent("a").load["webchat"] == 3
    assert kit.router.explain("c3")["requirements"][0]["why_waiting"] == (
        "every matching agent is busy, not ready or offline"
    )
    kit.serve("c0")
    assert kit.offered_to("c3") == ["a"]


def test_voice_is_exclusive_an_agent_on_a_call_gets_no_chat() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("v1")
    kit.accept("v1")
    kit.submit("c1", channel="webchat")
    assert kit.state("c1") is S.WAITING
    kit.router.complete("v1")
    assert kit.state("c1") is S.WAITING  # wrap-up still holds the call's slot
    kit.router.end_wrap_up("v1")
    assert kit.offered_to("c1") == ["a"]


def test_an_agent_with_a_chat_gets_no_call() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("c1", channel="webchat")  # only offered, not yet accepted: it counts
    kit.submit("v1")
    assert kit.state("v1") is S.WAITING
    kit.accept("c1")
    assert kit.state("v1") is S.WAITING
    kit.router.complete("c1")
    kit.router.end_wrap_up("c1")
    assert kit.offered_to("v1") == ["a"]


def test_a_ringing_call_blocks_chats_too() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("v1")
    kit.submit("c1", channel="webchat")
    assert kit.offered_to("v1") == ["a"]
    assert kit.state("c1") is S.WAITING
    kit.decline("v1")
    assert kit.offered_to("c1") == ["a"]


# ================================================================== offers


def test_accept_assigns_the_interaction() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("i1")
    oid = kit.offer_id("i1")
    kit.mark()
    got = kit.router.accept(oid, "a")
    assert got.state is S.ASSIGNED and got.agent == "a"
    assert got.answered_at == kit.now
    (e,) = kit.new(ev.Assigned)
    assert (e.interaction_id, e.agent_id, e.offer_id) == ("i1", "a", oid)
    assert kit.work("a") == {"i1"}
    assert kit.pending() == {}


def test_decline_goes_to_the_next_agent_and_not_back_until_an_escalation_step() -> None:
    q = Queue(name="q", escalation=[EscalationStep(after=60, notify=True)])
    kit = Kit([q], [agent("a", {"x": 1}), agent("b", {"y": 1})])
    kit.submit("i1")
    assert kit.offered_to("i1") == ["a"]
    kit.mark()
    kit.decline("i1", "a")
    (declined,) = kit.new(ev.OfferDeclined)
    assert declined.agent_id == "a"
    assert kit.offered_to("i1") == ["b"]
    kit.decline("i1", "b")
    assert kit.state("i1") is S.WAITING
    assert kit.router.explain("i1")["requirements"][0]["why_waiting"] == (
        "the only free matching agents declined or missed it"
    )
    kit.submit("i2")  # the decliners are free: they get other work
    assert kit.offered_to("i2") == ["a"]
    kit.serve("i2")
    kit.advance(30)
    assert kit.state("i1") is S.WAITING
    kit.mark()
    kit.advance(30)  # the escalation step: a new chance for both
    assert kit.new(ev.EscalationApplied)
    assert kit.state("i1") is S.OFFERED
    assert len(kit.offered_to("i1")) == 1


def test_an_offer_not_answered_in_time_is_missed_and_goes_to_the_next_agent() -> None:
    q = Queue(name="q", offer_timeout=10)
    kit = Kit([q], [agent("a", {"x": 1}), agent("b", {"y": 1})])
    kit.submit("i1")
    (first,) = kit.new(ev.Offered)
    assert first.expires_at == kit.now + 10
    kit.advance(9.9)
    assert kit.new(ev.OfferMissed) == []
    kit.advance(0.1)
    (missed,) = kit.new(ev.OfferMissed)
    assert (missed.offer_id, missed.agent_id) == (first.offer_id, "a")
    assert kit.offered_to("i1") == ["b"]
    assert kit.router.agent("a").load["voice"] == 0


def test_consecutive_missed_offers_set_the_agent_not_ready() -> None:
    q = Queue(name="q", offer_timeout=10)
    kit = Kit([q], [agent("a")], routing=Routing(max_missed_offers=2))
    kit.submit("i1")
    kit.advance(10)  # missed 1
    kit.submit("i2")
    kit.serve("i2")  # an answer resets the count
    kit.submit("i3")
    kit.advance(10)  # missed 1 (i1 is not offered again to a: a missed it)
    assert kit.router.agent("a").presence is Presence.READY
    kit.submit("i4")
    kit.mark()
    kit.advance(10)  # missed 2 in a row
    a = kit.router.agent("a")
    assert a.presence is Presence.NOT_READY
    assert a.reason == "missed offers"
    changed = kit.new(ev.AgentStateChanged)
    assert [(e.agent_id, e.presence, e.reason) for e in changed] == [
        ("a", Presence.NOT_READY, "missed offers")
    ]
    assert kit.pending() == {}
    assert {kit.state(i) for i in ("i1", "i3", "i4")} == {S.WAITING}


def test_a_decline_breaks_a_run_of_missed_offers() -> None:
    """Guards a bug fixed in cd2b572: a decline does not end a run of missed offers: miss,
    decline, miss sets the agent not ready with max_missed_offers=2, though the docs count
    offers 'in a row that an agent neither accepted nor declined'"""
    q = Queue(name="q", offer_timeout=10)
    kit = Kit([q], [agent("a")], routing=Routing(max_missed_offers=2))
    kit.submit("i1")
    kit.advance(10)  # missed
    kit.submit("i2")
    kit.decline("i2")  # answered (no)
    kit.submit("i3")
    kit.advance(10)  # missed: one in a row
    assert kit.router.agent("a").presence is Presence.READY


# ================================================================== presence


def test_presence_offline_ready_not_ready_with_a_reason() -> None:
    kit = Kit([Queue(name="q")], [agent("a")], ready=False)
    a = kit.router.agent("a")
    assert a.presence is Presence.OFFLINE and a.activity == "offline"
    kit.submit("i1")
    assert kit.state("i1") is S.WAITING
    kit.router.set_presence("a", Presence.NOT_READY, "lunch")
    assert (a.presence, a.reason, a.activity) == (Presence.NOT_READY, "lunch", "not_ready")
    assert kit.state("i1") is S.WAITING
    kit.router.set_presence("a", "ready")
    assert a.presence is Presence.READY
    assert kit.offered_to("i1") == ["a"]
    assert a.activity == "busy"
    changed = kit.all(ev.AgentStateChanged)
    assert [(e.presence, e.reason) for e in changed] == [
        (Presence.NOT_READY, "lunch"),
        (Presence.READY, None),
    ]


def test_leaving_ready_withdraws_offers_and_the_interaction_keeps_its_place() -> None:
    kit = Kit([Queue(name="q")], [agent("a"), agent("b")], ready=["a"])
    for n in range(3):
        kit.submit(f"i{n}")
        kit.advance(1)
    assert kit.offered_to("i0") == ["a"]
    assert kit.waiting_ids() == ["i1", "i2"]
    assert kit.router.position("i0") == 0
    kit.mark()
    kit.router.set_presence("a", Presence.NOT_READY, "break")
    (revoked,) = kit.new(ev.OfferRevoked)
    assert (revoked.interaction_id, revoked.agent_id) == ("i0", "a")
    assert kit.waiting_ids() == ["i0", "i1", "i2"]
    assert [kit.router.position(f"i{n}") for n in range(3)] == [1, 2, 3]
    assert kit.router.agent("a").load["voice"] == 0
    kit.router.set_presence("b", Presence.READY)
    assert kit.offered_to("i0") == ["b"]


def test_going_offline_keeps_assigned_work() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("i1")
    kit.accept("i1")
    kit.router.set_presence("a", Presence.OFFLINE)
    assert kit.state("i1") is S.ASSIGNED
    assert kit.work("a") == {"i1"}


# ================================================================== wrap-up


def test_wrap_up_holds_the_slot_for_the_queues_seconds() -> None:
    kit = Kit([Queue(name="q", wrap_up=30)], [agent("a")])
    kit.submit("i1")
    kit.accept("i1")
    kit.advance(100)
    kit.submit("i2")
    kit.mark()
    kit.router.complete("i1", "a")
    (done,) = kit.new(ev.Completed)
    assert done.wrap_up_until == kit.now + 30
    assert kit.state("i1") is S.WRAP_UP
    assert kit.work("a") == {"i1"}
    kit.advance(29)
    assert kit.state("i2") is S.WAITING
    kit.advance(1)
    assert [e.interaction_id for e in kit.new(ev.WrapUpEnded)] == ["i1"]
    assert "i1" not in kit.router.active
    assert kit.offered_to("i2") == ["a"]
    stats = kit.router.queue_stats("q")
    assert stats.completed == 1
    assert stats.handle_time == pytest.approx(130)


def test_end_wrap_up_early() -> None:
    kit = Kit([Queue(name="q", wrap_up=30)], [agent("a")])
    kit.submit("i1")
    kit.accept("i1")
    kit.submit("i2")
    kit.router.complete("i1")
    kit.advance(5)
    kit.router.end_wrap_up("i1", "a")
    assert "i1" not in kit.router.active
    assert kit.offered_to("i2") == ["a"]
    kit.advance(60)  # the wrap-up timer finds nothing to do
    assert len(kit.all(ev.WrapUpEnded)) == 1


def test_zero_wrap_up_ends_at_once() -> None:
    kit = Kit([Queue(name="q", wrap_up=0)], [agent("a")])
    kit.submit("i1")
    kit.accept("i1")
    kit.router.complete("i1")
    assert "i1" not in kit.router.active
    assert [type(e) for e in kit.new((ev.Completed, ev.WrapUpEnded))] == [
        ev.Completed,
        ev.WrapUpEnded,
    ]


# ================================================================== transfer, requeue


def test_transfer_to_an_agent_offers_it_to_them_first_skills_aside() -> None:
    q = Queue(name="q", skills={"billing": 2}, offer_timeout=10)
    agents = [agent("a", {"billing": 2}), agent("b", {"billing": 2}), agent("boss", {})]
    kit = Kit([q], agents)
    kit.submit("i1")
    kit.accept("i1", "a")
    kit.mark()
    kit.router.transfer("i1", to_agent="boss", agent_id="a")
    (t,) = kit.new(ev.Transferred)
    assert (t.from_agent, t.to_agent, t.to_queue) == ("a", "boss", None)
    assert kit.offered_to("i1") == ["boss"]  # b is free, but boss goes first
    assert kit.work("a") == set()
    kit.accept("i1", "boss")
    assert kit.router.interaction("i1").agent == "boss"


def test_transfer_to_an_agent_who_does_not_answer_routes_normally() -> None:
    q = Queue(name="q", offer_timeout=10)
    kit = Kit([q], [agent("a"), agent("b"), agent("c")])
    kit.submit("i1")
    kit.accept("i1", "a")
    kit.router.transfer("i1", to_agent="c")
    assert kit.offered_to("i1") == ["c"]
    kit.advance(10)
    assert kit.offered_to("i1") in (["a"], ["b"])


def test_transfer_to_a_busy_agent_waits_for_them_then_routes_normally() -> None:
    q = Queue(name="q", offer_timeout=10, preferred_agent_wait=30)
    kit = Kit([q], [agent("a"), agent("b"), agent("c")])
    kit.submit("busy")
    kit.accept("busy", "a")  # a is on a call
    kit.submit("i1")
    kit.accept("i1", "b")
    kit.router.transfer("i1", to_agent="a")
    assert kit.state("i1") is S.WAITING
    assert kit.router.explain("i1")["reserved_for"] == "a"
    kit.advance(29)
    assert kit.state("i1") is S.WAITING  # c is free, but it is reserved for a
    kit.advance(1)
    assert kit.offered_to("i1") in (["b"], ["c"])


def test_transfer_to_a_queue_keeps_its_place_ahead_of_later_arrivals() -> None:
    queues = [Queue(name="front"), Queue(name="back")]
    agents = [agent("a", queues=["front"]), agent("b", queues=["back"])]
    kit = Kit(queues, agents, ready=["a"])
    kit.submit("x", "front")
    kit.accept("x", "a")
    kit.advance(10)
    kit.submit("y", "back")
    kit.advance(10)
    kit.submit("z", "back")
    kit.router.transfer("x", to_queue="back")
    assert kit.router.interaction("x").queue == "back"
    assert kit.router.interaction("x").state is S.WAITING
    assert [kit.router.position(i) for i in ("x", "y", "z")] == [1, 2, 3]
    assert kit.work("a") == set()
    kit.router.set_presence("b", Presence.READY)
    assert kit.offered_to("x") == ["b"]


def test_requeue_puts_it_back_at_its_original_place() -> None:
    kit = Kit([Queue(name="q")], [agent("a"), agent("b")], ready=["a"])
    kit.submit("i1")
    kit.accept("i1")
    kit.advance(5)
    kit.submit("i2")
    kit.submit("i3")
    kit.mark()
    kit.router.requeue("i1", reason="wrong department")
    (e,) = kit.new(ev.Requeued)
    assert (e.interaction_id, e.agent_id, e.reason) == ("i1", "a", "wrong department")
    assert kit.work("a") == set()
    # a is free again and takes the first in line: i1 itself
    assert kit.offered_to("i1") == ["a"]
    kit.decline("i1")
    assert kit.waiting_ids() == ["i1", "i3"]
    assert kit.offered_to("i2") == ["a"]
    kit.router.set_presence("b", Presence.READY)
    assert kit.offered_to("i1") == ["b"]


# ================================================================== abandon


def test_abandon_while_waiting() -> None:
    kit = Kit([Queue(name="q")], [agent("a")], ready=False)
    kit.submit("i1")
    kit.advance(12)
    kit.mark()
    kit.router.abandon("i1")
    assert [e.interaction_id for e in kit.new(ev.Abandoned)] == ["i1"]
    assert "i1" not in kit.router.active
    stats = kit.router.queue_stats("q")
    assert (stats.abandoned, stats.wait_abandoned) == (1, 12)
    with pytest.raises(RouterError, match='"i1"'):
        kit.router.abandon("i1")


def test_abandon_while_offered_withdraws_the_offer_and_frees_capacity() -> None:
    kit = Kit([Queue(name="q", strategy="ring-all")], [agent("a"), agent("b")])
    kit.submit("i1")
    offers = list(kit.pending("i1"))
    assert len(offers) == 2
    kit.router.abandon("i1")
    assert kit.pending() == {}
    assert kit.router.agent("a").load["voice"] == 0
    assert kit.router.agent("b").load["voice"] == 0
    with pytest.raises(RouterError, match=offers[0]):
        kit.router.accept(offers[0])
    kit.submit("i2")
    assert kit.offered_to("i2") == ["a", "b"]


def test_abandon_while_offered_tells_the_agent() -> None:
    """Guards a bug fixed in cd2b572: when the customer leaves while being offered, the offer
    disappears without an OfferRevoked event (whose docstring names this case), so the
    agent's inbox keeps it"""
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("i1")
    oid = kit.offer_id("i1")
    kit.mark()
    kit.router.abandon("i1")
    assert [(e.offer_id, e.agent_id) for e in kit.new(ev.OfferRevoked)] == [(oid, "a")]


def test_cannot_abandon_once_answered() -> None:
    kit = Kit([Queue(name="q")], [agent("a")])
    kit.submit("i1")
    kit.accept("i1")
    with pytest.raises(RouterError, match='"i1" is assigned, not waiting or offered'):
        kit.router.abandon("i1")


# ================================================================== supervisor, callback


def test_a_supervisor_assigns_a_waiting_interaction_to_a_free_agent() -> None:
    q = Queue(name="q", skills={"billing": 3})
    kit = Kit([q], [agent("junior", {"billing": 1})])
    kit.submit("i1")
    assert kit.state("i1") is S.WAITING
    kit.mark()
    got = kit.router.assign("i1", "junior")
    assert (got.state, got.agent) == (S.ASSIGNED, "junior")
    (e,) = kit.new(ev.Assigned)
    assert (e.agent_id, e.offer_id) == ("junior", None)
    assert kit.router.agent("junior").load["voice"] == 1
    assert kit.work("junior") == {"i1"}
    kit.submit("i2")
    with pytest.raises(RouterError, match='agent "junior" cannot take a voice interaction'):
        kit.router.assign("i2", "junior")


def test_request_callback_keeps_the_place_in_line() -> None:
    kit = Kit([Queue(name="q")], [agent("a")], ready=False)
    for n in range(3):
        kit.submit(f"i{n}")
        kit.advance(1)
    kit.mark()
    kit.router.request_callback("i1", "+351 912 345 678")
    (e,) = kit.new(ev.CallbackRequested)
    assert (e.interaction_id, e.number) == ("i1", "+351 912 345 678")
    assert kit.router.interaction("i1").callback == "+351 912 345 678"
    assert kit.waiting_ids() == ["i0", "i1", "i2"]
    assert kit.router.position("i1") == 2
    kit.router.set_presence("a", Presence.READY)
    kit.serve("i0")
    assert kit.offered_to("i1") == ["a"]


# ================================================================== agents change


def test_upsert_agent_adds_one_and_changes_skills_while_running() -> None:
    q = Queue(name="q", skills={"billing": 2})
    kit = Kit([q], [agent("a", {"billing": 1})])
    kit.submit("i1")
    assert kit.state("i1") is S.WAITING
    kit.mark()
    kit.router.upsert_agent(agent("a", {"billing": 2}))
    (e,) = kit.new(ev.AgentConfigured)
    assert e.agent.skills == {"billing": 2}
    assert kit.offered_to("i1") == ["a"]  # still ready, now qualified

    kit.router.upsert_agent(agent("new", {"billing": 4}))
    assert kit.router.agent("new").presence is Presence.OFFLINE
    kit.submit("i2")
    kit.router.set_presence("new", Presence.READY)
    assert kit.offered_to("i2") == ["new"]


@pytest.mark.parametrize(
    ("channel", "exclusive"), [("voice", []), ("webchat", ["voice", "webchat"])]
)
def test_changing_exclusive_channels_while_busy_does_not_block_the_agent(
    channel: str, exclusive: list[str]
) -> None:
    """Guards a bug fixed in cd2b572: upsert_agent changing `exclusive` while the agent holds
    work leaves exclusive_load stale (it ends at 1 or -1): the agent is then never offered
    anything"""
    kit = Kit([Queue(name="q", wrap_up=0)], [agent("a")])
    kit.submit("i1", channel=channel)
    kit.accept("i1")
    kit.router.upsert_agent(agent("a", exclusive=exclusive))
    kit.router.complete("i1")  # a holds nothing now
    kit.submit("chat", channel="webchat")
    assert kit.offered_to("chat") == ["a"]


def test_remove_agent_only_when_offline_without_work() -> None:
    kit = Kit([Queue(name="q")], [agent("a"), agent("b")])
    kit.submit("i1")
    kit.accept("i1", "a")
    with pytest.raises(RouterError, match='agent "a" must be offline with no work'):
        kit.router.remove_agent("a")
    kit.router.set_presence("a", Presence.OFFLINE)
    with pytest.raises(RouterError, match='agent "a"'):
        kit.router.remove_agent("a")
    kit.router.complete("i1")
    kit.router.end_wrap_up("i1")
    kit.mark()
    kit.router.remove_agent("a")
    assert [e.agent_id for e in kit.new(ev.AgentRemoved)] == ["a"]
    assert "a" not in kit.router.agents
    with pytest.raises(RouterError, match='unknown agent "a"'):
        kit.router.agent("a")
    kit.submit("i2")
    assert kit.offered_to("i2") == ["b"]


# ================================================================== bad commands


def test_bad_commands_name_the_thing() -> None:
    queues = [Queue(name="q", channels=["voice"]), Queue(name="other")]
    kit = Kit(queues, [agent("a"), agent("b")], ready=["a"])
    r = kit.router
    with pytest.raises(
        RouterError, match='interaction "x": unknown queue "nope"; queues: other, q'
    ):
        r.submit(ix("x", "nope"))
    with pytest.raises(RouterError, match='queue "q" does not take channel "email"'):
        r.submit(ix("x", "q", "email"))
    r.submit(ix("i1"))
    with pytest.raises(RouterError, match='interaction "i1" is already in the router'):
        r.submit(ix("i1"))
    with pytest.raises(RouterError, match='no pending offer "o999"'):
        r.accept("o999")
    oid = kit.offer_id("i1")
    with pytest.raises(RouterError, match=f'offer "{oid}" is not for agent "b"'):
        r.accept(oid, "b")
    with pytest.raises(RouterError, match=f'offer "{oid}" is not for agent "b"'):
        r.decline(oid, "b")
    with pytest.raises(RouterError, match='interaction "i1" is offered, not assigned'):
        r.complete("i1")
    with pytest.raises(RouterError, match='no active interaction "ghost"'):
        r.complete("ghost")
    with pytest.raises(RouterError, match='no active interaction "ghost"'):
        r.explain("ghost")
    with pytest.raises(RouterError, match='unknown agent "ghost"'):
        r.set_presence("ghost", Presence.READY)
    with pytest.raises(RouterError, match='unknown queue "nope"'):
        r.queue_stats("nope")
    r.accept(oid)
    with pytest.raises(RouterError, match='interaction "i1" is not assigned to agent "b"'):
        r.complete("i1", "b")
    with pytest.raises(RouterError, match='interaction "i1" is assigned, not wrap_up'):
        r.end_wrap_up("i1")
    with pytest.raises(RouterError, match="exactly one of to_agent or to_queue"):
        r.transfer("i1")
    with pytest.raises(RouterError, match="exactly one of to_agent or to_queue"):
        r.transfer("i1", to_agent="b", to_queue="other")
    with pytest.raises(RouterError, match='unknown agent "ghost"'):
        r.transfer("i1", to_agent="ghost")
    with pytest.raises(RouterError, match='"a" already has it'):
        r.transfer("i1", to_agent="a")
    with pytest.raises(RouterError, match='unknown queue "nope"'):
        r.transfer("i1", to_queue="nope")
    with pytest.raises(RouterError, match='interaction "i1" is assigned, not waiting'):
        r.assign("i1", "b")
    with pytest.raises(RouterError, match='interaction "i1" is assigned, not waiting or offered'):
        r.request_callback("i1", "123")
    r.submit(ix("i2", "other", "webchat"))
    with pytest.raises(RouterError, match='interaction "i2" is waiting, not assigned'):
        r.requeue("i2")
    r.set_presence("b", Presence.READY)
    kit.accept("i2", "b")
    with pytest.raises(RouterError, match='queue "q" does not take "webchat"'):
        r.transfer("i2", to_queue="q")
    # nothing above changed the state
    assert kit.state("i1") is S.ASSIGNED
    assert kit.work("a") == {"i1"}
    assert kit.work("b") == {"i2"}


def test_unknown_strategy_is_named_at_start() -> None:
    with pytest.raises(RouterError, match='queue "q": unknown strategy "fastest"; installed: '):
        Kit([Queue(name="q", strategy="fastest")])


def test_explain_says_who_holds_it_and_when_capacity_is_the_reason() -> None:
    q = Queue(name="q")
    kit = Kit([q], [agent("ana", capacity={"voice": 1, "webchat": 0})])
    kit.router.set_presence("ana", Presence.READY)
    kit.submit("chat", channel="webchat")
    waiting = kit.router.explain("chat")
    assert waiting["why"] == "1 ready matching agent(s) have no room left on webchat"
    kit.submit("call")
    offered = kit.router.explain("call")
    assert offered["why"] == "offered to ana: waiting for an answer"
    assert [o["agent"] for o in offered["offered_to"]] == ["ana"]
    assert "why_waiting" not in offered["requirements"][0]
    kit.router.accept(offered["offered_to"][0]["offer"])
    assert kit.router.explain("call")["why"] == "assigned to ana"


def test_a_skill_level_out_of_range_is_refused_at_submit() -> None:
    kit = Kit([Queue(name="q")], [agent("ana")])
    with pytest.raises(RouterError, match=r'"i1": skills.returns is 9; skill levels are integers'):
        kit.router.submit(ix("i1", skills={"returns": 9}))
    assert "i1" not in kit.router.active

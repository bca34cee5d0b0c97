"""Service levels: breaches, live KPIs, the escalation ladder, max wait, opening hours,
preferred and last agents, queue selection across queues, and `explain`."""

from __future__ import annotations

import pytest
from routerkit import T0, Kit, agent

from omniroute import events as ev
from omniroute.model import (
    Action,
    ActionKind,
    EscalationStep,
    Hours,
    InteractionState,
    Message,
    Presence,
    Queue,
    Sla,
    SlaMeasure,
)
from omniroute.router.core import RouterError
from omniroute.router.selectors import OldestFirst, PrioritySlaWait

S = InteractionState
HOUR = 3600.0


# ================================================================== SLA and KPIs


def test_sla_breach_fires_at_the_threshold_once() -> None:
    kit = Kit([Queue(name="q", sla=Sla(seconds=20))], [agent("a")], ready=False)
    kit.submit("late")
    kit.advance(10)
    kit.submit("answered")
    kit.advance(9.9)
    assert kit.new(ev.SlaBreached) == []
    kit.advance(0.1)
    (e,) = kit.new(ev.SlaBreached)
    assert (e.interaction_id, e.queue, e.at) == ("late", "q", T0 + 20)
    kit.router.set_presence("a", Presence.READY)
    kit.accept("late")
    kit.advance(1)
    kit.router.complete("late")
    kit.router.end_wrap_up("late")
    kit.accept("answered")  # after 11 s: in time
    kit.advance(100)
    assert kit.new(ev.SlaBreached) == []
    assert kit.router.queue_stats("q").breached == 1


def test_live_kpis_service_level_asa_abandon_rate() -> None:
    kit = Kit([Queue(name="q", sla=Sla(target=0.8, seconds=20))], [agent("a")], ready=False)
    for n in range(4):
        kit.submit(f"i{n}")
    kit.advance(5)
    kit.router.set_presence("a", Presence.READY)
    kit.serve("i0")  # answered after 5 s
    kit.router.set_presence("a", Presence.NOT_READY, "coffee")
    kit.advance(5)
    kit.router.abandon("i1")  # abandoned after 10 s
    kit.advance(20)
    kit.router.set_presence("a", Presence.READY)
    kit.accept("i2")  # answered after 30 s
    kit.advance(10)
    kit.router.abandon("i3")  # abandoned after 40 s
    stats = kit.router.queue_stats("q")
    assert (stats.offered, stats.answered, stats.answered_within) == (4, 2, 1)
    assert (stats.abandoned, stats.abandoned_within) == (2, 1)
    assert stats.service_level == pytest.approx(1 / 4)  # answered within T / (ans + abd)
    assert stats.asa == pytest.approx((5 + 30) / 2)
    assert stats.awt == pytest.approx((5 + 10 + 30 + 40) / 4)
    assert stats.abandon_rate == pytest.approx(2 / 4)
    assert stats.max_wait == pytest.approx(40)
    assert stats.breached == 2
    assert (stats.threshold, stats.target) == (20, 0.8)
    assert stats.period == "2027-01-15"
    summary = stats.summary()
    assert summary["service_level"] == pytest.approx(0.25)


def test_kpis_start_afresh_after_midnight() -> None:
    kit = Kit([Queue(name="q")], [agent("a")], ready=False)
    kit.submit("i1")
    kit.router.abandon("i1")
    assert kit.router.queue_stats("q").abandoned == 1
    kit.advance(16 * HOUR)  # 2027-01-16 00:00 UTC
    stats = kit.router.queue_stats("q")
    assert stats.period == "2027-01-16"
    assert (stats.offered, stats.abandoned) == (0, 0)


def test_a_contact_answered_at_the_threshold_is_breached_or_on_time_not_both() -> None:
    """Guards a bug fixed in cd2b572: a contact answered exactly at the SLA threshold gets an
    SlaBreached event (timer fires at enqueued+T) yet counts as answered within T (wait <=
    T) in the KPIs"""
    kit = Kit([Queue(name="q", sla=Sla(seconds=20))], [agent("a")], ready=False)
    kit.submit("i1")
    kit.advance(20)
    kit.router.set_presence("a", Presence.READY)
    kit.accept("i1")
    breached = len(kit.all(ev.SlaBreached))
    within = kit.router.queue_stats("q").answered_within
    assert breached + within == 1, f"breach events {breached}, answered within T {within}"


# ================================================================== escalation ladder


def test_relax_makes_an_agent_one_level_below_eligible_after_the_step() -> None:
    q = Queue(name="q", skills={"tech": 3}, escalation=[EscalationStep(after=30, relax=1)])
    kit = Kit([q], [agent("two", {"tech": 2}), agent("one", {"tech": 1})])
    kit.submit("i1")
    kit.advance(29.9)
    assert kit.state("i1") is S.WAITING
    kit.advance(0.1)
    (step,) = kit.new(ev.EscalationApplied)
    assert (step.interaction_id, step.index, step.step.relax) == ("i1", 0, 1)
    (offer,) = kit.new(ev.Offered)
    assert offer.agent_id == "two"
    assert offer.explanation.trigger == "escalation"
    assert offer.explanation.requirement == {"tech": 2}


def test_relax_steps_add_up_and_never_go_below_one() -> None:
    q = Queue(
        name="q",
        skills={"tech": 2},
        escalation=[EscalationStep(after=10, relax=1), EscalationStep(after=20, relax=2)],
    )
    kit = Kit([q], [agent("none", {})])
    kit.submit("i1")
    kit.advance(60)
    assert kit.state("i1") is S.WAITING  # a level-1 minimum stays
    kit.router.upsert_agent(agent("one", {"tech": 1}))
    kit.router.set_presence("one", Presence.READY)
    assert kit.offered_to("i1") == ["one"]


def test_fallback_skill_set_also_qualifies() -> None:
    q = Queue(
        name="q",
        skills={"tech": 3},
        escalation=[EscalationStep(after=20, fallback={"billing": 4})],
    )
    agents = [agent("biller", {"billing": 4}), agent("weak", {"billing": 3, "tech": 2})]
    kit = Kit([q], agents)
    kit.submit("i1")
    kit.submit("fr", skills={"french": 2})  # its own skills still apply with the fallback
    kit.advance(20)
    assert kit.offered_to("i1") == ["biller"]
    assert kit.state("fr") is S.WAITING


def test_priority_step_raises_priority() -> None:
    q = Queue(name="q", aging=0, escalation=[EscalationStep(after=30, priority=5)])
    kit = Kit([q], [agent("a")], ready=False)
    kit.submit("old", priority=1)
    kit.advance(10)
    kit.submit("vip", priority=4)
    assert kit.waiting_ids() == ["vip", "old"]
    kit.advance(20)
    assert kit.router.interaction("old").priority == 5
    assert kit.waiting_ids() == ["old", "vip"]
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("old") == ["a"]


def test_priority_step_never_lowers_priority() -> None:
    q = Queue(name="q", escalation=[EscalationStep(after=10, priority=2)])
    kit = Kit([q], [], ready=False)
    kit.submit("i1", priority=7)
    kit.advance(10)
    assert kit.router.interaction("i1").priority == 7


def test_overflow_step_lets_another_queues_agents_take_it() -> None:
    queues = [
        Queue(
            name="sales",
            skills={"sales": 1},
            escalation=[EscalationStep(after=30, overflow="general")],
        ),
        Queue(name="general", skills={"general": 1}),
    ]
    agents = [agent("seller", {"sales": 1}), agent("helper", {"general": 1})]
    kit = Kit(queues, agents)
    kit.submit("busy", "sales")
    kit.accept("busy", "seller")
    kit.submit("i1", "sales")
    kit.advance(29)
    assert kit.state("i1") is S.WAITING
    kit.mark()
    kit.advance(1)
    (offer,) = kit.new(ev.Offered)
    assert (offer.interaction_id, offer.agent_id) == ("i1", "helper")
    assert offer.explanation.note == "overflow to general"
    assert kit.router.interaction("i1").queue == "sales"


def test_overflow_still_prefers_the_own_queues_agents_while_available() -> None:
    queues = [
        Queue(
            name="sales",
            skills={"sales": 1},
            escalation=[EscalationStep(after=30, overflow="general")],
        ),
        Queue(name="general", skills={"general": 1}),
    ]
    agents = [agent("helper", {"general": 1}), agent("seller", {"sales": 1})]
    kit = Kit(queues, agents)
    kit.submit("i1", "sales")
    kit.decline("i1", "seller")  # waits; the step gives seller a new chance
    kit.advance(30)
    assert kit.offered_to("i1") == ["seller"]
    kit.decline("i1", "seller")
    assert kit.offered_to("i1") == ["helper"]


def test_callback_and_notify_steps_emit_events() -> None:
    q = Queue(
        name="q",
        escalation=[
            EscalationStep(after=20, callback=True),
            EscalationStep(after=45, notify=True),
        ],
    )
    kit = Kit([q], [], ready=False)
    kit.submit("i1")
    kit.advance(20)
    assert [e.interaction_id for e in kit.new(ev.CallbackOffered)] == ["i1"]
    kit.advance(25)
    (risk,) = kit.new(ev.SlaAtRisk)
    assert (risk.interaction_id, risk.queue, risk.waited) == ("i1", "q", 45)
    assert [e.index for e in kit.all(ev.EscalationApplied)] == [0, 1]
    assert kit.state("i1") is S.WAITING


def test_transfer_to_a_queue_starts_its_ladder_over() -> None:
    """Guards a bug fixed in cd2b572: after a transfer to another queue, the old queue's
    pending ladder timer applies the NEW queue's rung early (measured from the first
    arrival), instead of starting the target queue's ladder over"""
    queues = [
        Queue(name="q1", escalation=[EscalationStep(after=30, notify=True)]),
        Queue(name="q2", escalation=[EscalationStep(after=100, notify=True)]),
    ]
    kit = Kit(queues, [agent("a", queues=["q1"])])
    kit.submit("x", "q1")
    kit.accept("x")
    kit.advance(5)
    kit.router.transfer("x", to_queue="q2")  # q2's step is due at 5 + 100
    kit.advance(30)
    assert kit.new(ev.EscalationApplied) == []
    kit.advance(70)
    (step,) = kit.new(ev.EscalationApplied)
    assert (step.queue, step.at) == ("q2", T0 + 105)


def test_transfer_to_a_queue_without_a_ladder_does_not_crash() -> None:
    """Guards a bug fixed in cd2b572: after a transfer to a queue with a shorter (or no)
    ladder, the old queue's rung timer indexes the new queue's ladder: IndexError out of
    whatever command or advance() fires it"""
    queues = [
        Queue(name="q1", escalation=[EscalationStep(after=20, notify=True)]),
        Queue(name="q2"),
    ]
    kit = Kit(queues, [agent("a", queues=["q1"])])
    kit.submit("x", "q1")
    kit.accept("x")
    kit.advance(5)
    kit.router.transfer("x", to_queue="q2")  # nobody serves q2: it waits
    kit.advance(20)  # t=25: q1's rung-0 timer fires
    assert kit.state("x") is S.WAITING


def test_requeued_interaction_still_escalates() -> None:
    """Guards a bug fixed in cd2b572: a ladder rung that falls due while the interaction is
    assigned is dropped; after a requeue the interaction never escalates (the relaxed agent
    never gets it)"""
    q = Queue(name="q", skills={"s": 3}, escalation=[EscalationStep(after=30, relax=1)])
    kit = Kit([q], [agent("a", {"s": 3}), agent("b", {"s": 2})])
    kit.submit("x")
    kit.accept("x", "a")
    kit.advance(40)  # rung 0 falls due while a has it
    kit.router.requeue("x")  # back in line: offered to a again
    kit.decline("x", "a")
    assert kit.all(ev.EscalationApplied), "the ladder never applied"
    assert kit.offered_to("x") == ["b"]


# ================================================================== max wait


def test_max_wait_close_ends_it_with_a_message() -> None:
    q = Queue(
        name="q",
        max_wait=120,
        on_max_wait=Action(action=ActionKind.CLOSE, message="Sorry, all agents are busy."),
    )
    kit = Kit([q], [], ready=False)
    kit.submit("i1")
    kit.advance(119)
    assert kit.state("i1") is S.WAITING
    kit.advance(1)
    (closed,) = kit.new(ev.Closed)
    assert (closed.interaction_id, closed.reason) == ("i1", "max_wait")
    assert closed.message == "Sorry, all agents are busy."
    (action,) = kit.all(ev.ActionApplied)
    assert (action.reason, action.action.action) == ("max_wait", ActionKind.CLOSE)
    assert "i1" not in kit.router.active
    assert kit.router.queue_stats("q").closed == 1


def test_max_wait_overflow_to_another_queue() -> None:
    queues = [
        Queue(
            name="vip",
            skills={"vip": 1},
            max_wait=60,
            on_max_wait=Action(action=ActionKind.OVERFLOW, queue="general"),
        ),
        Queue(name="general"),
    ]
    kit = Kit(queues, [agent("anyone", {})])
    kit.submit("i1", "vip")
    kit.advance(59)
    assert kit.state("i1") is S.WAITING
    kit.advance(1)
    assert kit.offered_to("i1") == ["anyone"]
    (offer,) = kit.all(ev.Offered)
    assert offer.explanation.note == "overflow to general"


def test_max_wait_callback_keeps_it_waiting() -> None:
    q = Queue(name="q", max_wait=60, on_max_wait=Action(action=ActionKind.CALLBACK))
    kit = Kit([q], [], ready=False)
    kit.submit("i1")
    kit.submit("i2")
    kit.advance(60)
    assert [e.interaction_id for e in kit.new(ev.CallbackOffered)] == ["i1", "i2"]
    assert kit.waiting_ids() == ["i1", "i2"]
    kit.advance(600)
    assert kit.new(ev.CallbackOffered) == []  # once per wait


def test_max_wait_applies_even_if_it_was_ringing_at_that_moment() -> None:
    """Guards a bug fixed in cd2b572: on_max_wait is skipped when the interaction happens to be
    offered at the max_wait moment, and is never re-armed: after a missed offer it waits
    forever"""
    q = Queue(
        name="q",
        max_wait=30,
        offer_timeout=15,
        on_max_wait=Action(action=ActionKind.CLOSE, message="bye"),
    )
    kit = Kit([q], [agent("a")], ready=False)
    kit.submit("i1")
    kit.advance(25)
    kit.router.set_presence("a", Presence.READY)  # rings a from 25 to 40
    kit.advance(20)  # max wait at 30 while ringing; missed at 40
    kit.advance(600)
    assert [e.interaction_id for e in kit.all(ev.Closed)] == ["i1"]


def test_max_wait_counts_again_after_a_transfer_to_a_queue() -> None:
    queues = [
        Queue(name="q1"),
        Queue(name="q2", max_wait=60, on_max_wait=Action(action=ActionKind.CLOSE)),
    ]
    kit = Kit(queues, [agent("a", queues=["q1"])])
    kit.submit("x", "q1")
    kit.accept("x")
    kit.advance(100)
    kit.router.transfer("x", to_queue="q2")
    kit.advance(59)
    assert kit.state("x") is S.WAITING
    kit.advance(1)
    assert [e.interaction_id for e in kit.all(ev.Closed)] == ["x"]


# ================================================================== opening hours
# T0 is Friday 2027-01-15 08:00 in Lisbon (UTC+0 in winter).

WEEKDAYS = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def hours_queue(closed: Action | None = None, **fields: object) -> Queue:
    hours = Hours(
        timezone="Europe/Lisbon",
        weekly=WEEKDAYS,
        holidays=["2027-01-18"],  # Monday
        closed=closed or Action(),
    )
    return Queue(name="q", hours=hours, sla=Sla(seconds=20), **fields)


def test_sla_clock_pauses_while_closed() -> None:
    kit = Kit([hours_queue(escalation=[EscalationStep(after=30, notify=True)])], [], ready=False)
    kit.submit("night")  # 08:00, opens at 09:00
    kit.advance(HOUR + 19)
    assert kit.all(ev.SlaBreached) == []
    kit.advance(1)
    (e,) = kit.all(ev.SlaBreached)
    assert e.at == T0 + HOUR + 20
    kit.advance(10)
    (risk,) = kit.all(ev.SlaAtRisk)
    assert risk.at == T0 + HOUR + 30
    assert risk.waited == pytest.approx(30)


def test_waits_in_kpis_count_open_seconds_only() -> None:
    kit = Kit([hours_queue()], [agent("a")], ready=False)
    kit.submit("night")
    kit.advance(HOUR + 10)
    kit.router.set_presence("a", Presence.READY)
    kit.accept("night")
    stats = kit.router.queue_stats("q")
    assert stats.asa == pytest.approx(10)
    assert stats.answered_within == 1
    assert kit.all(ev.SlaBreached) == []


def test_closed_action_applies_to_arrivals_while_closed() -> None:
    closed = Action(action=ActionKind.CLOSE, message="We open at nine.")
    kit = Kit([hours_queue(closed)], [agent("a")])
    kit.mark()
    got = kit.submit("night")
    assert got.state is S.CLOSED
    (action,) = kit.new(ev.ActionApplied)
    assert (action.reason, action.action.action) == ("closed", ActionKind.CLOSE)
    (e,) = kit.all(ev.Closed)
    assert (e.interaction_id, e.reason, e.message) == ("night", "closed", "We open at nine.")
    assert kit.all(ev.Offered) == []
    kit.advance(HOUR)  # 09:00: open
    kit.submit("day")
    assert kit.offered_to("day") == ["a"]


def test_closed_action_applies_to_those_waiting_at_closing_time() -> None:
    closed = Action(action=ActionKind.CLOSE, message="closed")
    kit = Kit([hours_queue(closed)], [agent("a")], ready=False)
    kit.advance(8 * HOUR)  # 16:00
    kit.submit("late")
    kit.advance(HOUR - 1)
    assert kit.state("late") is S.WAITING
    kit.advance(1)  # 17:00
    (e,) = kit.all(ev.Closed)
    assert (e.interaction_id, e.reason) == ("late", "closed")


def test_closed_callback_at_closing_time_keeps_them_waiting() -> None:
    kit = Kit([hours_queue(Action(action=ActionKind.CALLBACK))], [], ready=False)
    kit.advance(2 * HOUR)
    kit.submit("i1")
    kit.advance(7 * HOUR)  # 17:00
    assert [e.interaction_id for e in kit.all(ev.CallbackOffered)] == ["i1"]
    assert kit.state("i1") is S.WAITING


def test_closed_action_applies_to_a_contact_ringing_at_closing_time() -> None:
    """Guards a bug fixed in cd2b572: the closed action skips a contact that is ringing at
    closing time and never applies to it afterwards: after a missed offer it waits all night
    in a closed queue"""
    closed = Action(action=ActionKind.CLOSE, message="closed")
    kit = Kit([hours_queue(closed, offer_timeout=20)], [agent("a")], ready=False)
    kit.advance(9 * HOUR - 5)  # 16:59:55
    kit.submit("x")
    kit.router.set_presence("a", Presence.READY)  # rings until 17:00:15
    kit.advance(30)
    kit.advance(HOUR)
    assert [e.interaction_id for e in kit.all(ev.Closed)] == ["x"]


def test_holidays_are_closed_all_day() -> None:
    closed = Action(action=ActionKind.CLOSE)
    kit = Kit([hours_queue(closed)], [agent("a")])
    kit.advance(3 * 24 * HOUR + 2 * HOUR)  # Monday 10:00, a holiday
    kit.submit("holiday")
    assert [e.interaction_id for e in kit.all(ev.Closed)] == ["holiday"]
    kit.advance(24 * HOUR)  # Tuesday 10:00
    kit.submit("tuesday")
    assert kit.offered_to("tuesday") == ["a"]


# ================================================================== preferred and last agent


def test_preferred_agent_gets_it_alone_while_present_then_everyone() -> None:
    q = Queue(name="q", preferred_agent_wait=30)
    kit = Kit([q], [agent("pref"), agent("other")])
    kit.submit("busy")
    kit.accept("busy", "pref")
    kit.submit("i1", preferred_agent="pref")
    assert kit.state("i1") is S.WAITING
    assert kit.router.explain("i1")["reserved_for"] == "pref"
    kit.advance(29)
    assert kit.state("i1") is S.WAITING  # other is free, but it is pref's for now
    kit.advance(1)
    assert kit.offered_to("i1") == ["other"]
    assert "reserved_for" not in kit.router.explain("i1")


def test_preferred_agent_freeing_up_in_time_gets_it() -> None:
    q = Queue(name="q", preferred_agent_wait=30, wrap_up=0)
    kit = Kit([q], [agent("pref"), agent("other")])
    kit.submit("busy")
    kit.accept("busy", "pref")
    kit.submit("i1", preferred_agent="pref")
    kit.advance(10)
    kit.mark()
    kit.router.complete("busy")
    (offer,) = kit.new(ev.Offered)
    assert (offer.interaction_id, offer.agent_id) == ("i1", "pref")


def test_preferred_agent_offline_routes_normally_at_once() -> None:
    q = Queue(name="q", preferred_agent_wait=30)
    kit = Kit([q], [agent("pref"), agent("other")], ready=["other"])
    kit.submit("i1", preferred_agent="pref")
    assert kit.offered_to("i1") == ["other"]


def test_preferred_agent_not_ready_is_still_present() -> None:
    q = Queue(name="q", preferred_agent_wait=30)
    kit = Kit([q], [agent("pref"), agent("other")], ready=["other"])
    kit.router.set_presence("pref", Presence.NOT_READY, "break")
    kit.submit("i1", preferred_agent="pref")
    assert kit.state("i1") is S.WAITING
    kit.router.set_presence("pref", Presence.OFFLINE)  # left: route normally now
    assert kit.offered_to("i1") == ["other"]


def test_preferred_agent_declining_sends_it_to_the_next() -> None:
    q = Queue(name="q", preferred_agent_wait=30)
    kit = Kit([q], [agent("pref"), agent("other")])
    kit.submit("i1", preferred_agent="pref")
    assert kit.offered_to("i1") == ["pref"]
    kit.decline("i1", "pref")
    assert kit.offered_to("i1") == ["other"]


def test_preferred_agent_who_declined_is_not_offered_it_again() -> None:
    """Guards a bug fixed in cd2b572: a preferred agent who declines (or misses) is offered the
    same interaction again at once through their stale reserved list when nobody else is
    free"""
    q = Queue(name="q", preferred_agent_wait=30)
    kit = Kit([q], [agent("pref")])
    kit.submit("i1", preferred_agent="pref")
    kit.decline("i1", "pref")
    assert kit.offered_to("i1") == []
    assert [e.agent_id for e in kit.all(ev.Offered)] == ["pref"]


def test_a_reserved_call_does_not_block_a_reserved_chat() -> None:
    """Guards a bug fixed in cd2b572: head-of-line blocking in the preferred agent's reserved
    list: a reserved call the agent cannot take now hides a reserved chat they could take"""
    q = Queue(name="q", preferred_agent_wait=60, wrap_up=0)
    kit = Kit([q], [agent("pref")])
    for n in range(3):
        kit.submit(f"c{n}", channel="webchat")
        kit.accept(f"c{n}", "pref")
    kit.submit("call", preferred_agent="pref")
    kit.submit("chat", channel="webchat", preferred_agent="pref")
    kit.router.complete("c0")  # room for one more chat, still no call
    assert kit.offered_to("chat") == ["pref"]


def test_last_agent_memory_by_customer() -> None:
    q = Queue(name="q", preferred_agent_wait=20)
    kit = Kit([q], [agent("a"), agent("b")], ready=["b"])
    kit.submit("first", customer="cust-1")
    kit.serve("first", "b")
    kit.router.set_presence("a", Presence.READY)  # a comes first by the strategy now
    kit.submit("again", customer="cust-1")
    assert kit.router.interaction("again").preferred_agent == "b"
    assert kit.offered_to("again") == ["b"]
    kit.submit("stranger", customer="cust-2")
    assert kit.offered_to("stranger") == ["a"]


def test_no_last_agent_memory_without_preferred_agent_wait() -> None:
    kit = Kit([Queue(name="q")], [agent("a"), agent("b")], ready=["b"])
    kit.submit("first", customer="cust-1")
    kit.serve("first", "b")
    kit.router.set_presence("a", Presence.READY)
    kit.submit("again", customer="cust-1")
    assert kit.router.interaction("again").preferred_agent is None
    assert kit.offered_to("again") == ["a"]


# ================================================================== across queues


def two_queues(**b: object) -> list[Queue]:
    return [Queue(name="qa", sla=Sla(seconds=60)), Queue(name="qb", sla=Sla(seconds=60), **b)]


def test_priority_sla_wait_takes_queue_priority_first() -> None:
    kit = Kit(two_queues(priority=3), [agent("a")], ready=False)
    kit.submit("x", "qa")
    kit.advance(5)
    kit.submit("y", "qb")
    assert kit.waiting_ids() == ["y", "x"]
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("y") == ["a"]


def test_priority_sla_wait_takes_interaction_priority_first() -> None:
    kit = Kit(two_queues(), [agent("a")], ready=False)
    kit.submit("x", "qa")
    kit.advance(5)
    kit.submit("y", "qb", priority=1)
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("y") == ["a"]


def test_priority_sla_wait_then_the_closest_sla_deadline() -> None:
    queues = [Queue(name="qa", sla=Sla(seconds=60)), Queue(name="qb", sla=Sla(seconds=10))]
    kit = Kit(queues, [agent("a")], ready=False)
    kit.submit("x", "qa")  # due at 60
    kit.advance(5)
    kit.submit("y", "qb")  # due at 15
    assert kit.waiting_ids() == ["y", "x"]
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("y") == ["a"]


def test_priority_sla_wait_then_the_longest_wait() -> None:
    kit = Kit(two_queues(), [agent("a")], ready=False)
    kit.submit("x", "qb")
    kit.submit("y", "qa")  # same deadline, same priority: x came first
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("x") == ["a"]


def test_oldest_first_ignores_priority_and_sla() -> None:
    queues = [
        Queue(name="qa", sla=Sla(seconds=60)),
        Queue(name="qb", sla=Sla(seconds=5), priority=9),
    ]
    kit = Kit(queues, [agent("a")], ready=False, selector=OldestFirst())
    kit.submit("x", "qa")
    kit.advance(5)
    kit.submit("y", "qb", priority=3)
    assert kit.waiting_ids() == ["x", "y"]
    kit.router.set_presence("a", Presence.READY)
    assert kit.offered_to("x") == ["a"]
    assert PrioritySlaWait().name == "priority-sla-wait"
    assert OldestFirst().name == "oldest-first"


def test_waiting_order_matches_position_after_a_transfer() -> None:
    """Guards a bug fixed in cd2b572: waiting(queue) sorts by the selector key, which keeps the
    SLA deadline of the queue a transferred interaction came from; it then disagrees with
    position() and with the order the queue actually serves"""
    queues = [Queue(name="q1", sla=Sla(seconds=60)), Queue(name="q2", sla=Sla(seconds=20))]
    kit = Kit(queues, [agent("a", queues=["q1"]), agent("b", queues=["q2"])], ready=["a"])
    kit.submit("x", "q1")
    kit.accept("x", "a")
    kit.advance(10)
    kit.submit("y", "q2")
    kit.advance(20)
    kit.router.transfer("x", to_queue="q2")
    by_position = sorted(["x", "y"], key=kit.router.position)
    assert kit.waiting_ids("q2") == by_position
    kit.router.set_presence("b", Presence.READY)
    assert kit.offered_to(by_position[0]) == ["b"]


# ================================================================== explain


def test_explain_says_why_it_waits() -> None:
    queues = [Queue(name="q", skills={"tech": 2}), Queue(name="nobody", skills={"rare": 5})]
    agents = [agent("a", {"tech": 2}), agent("b", {"tech": 3}), agent("c", {"tech": 1})]
    kit = Kit(queues, agents, ready=["a"])
    kit.router.set_presence("b", Presence.NOT_READY, "lunch")

    kit.submit("r1", "nobody")
    info = kit.router.explain("r1")
    assert (info["interaction"], info["state"], info["queue"], info["position"]) == (
        "r1",
        "waiting",
        "nobody",
        1,
    )
    (req,) = info["requirements"]
    assert req["why_waiting"] == "no agent has these skills"
    assert (req["skills"], req["matching_agents"]) == ({"rare": 5}, 0)

    kit.submit("t1")
    kit.accept("t1", "a")
    kit.submit("t2")
    (req,) = kit.router.explain("t2")["requirements"]
    assert req["why_waiting"] == "every matching agent is busy, not ready or offline"
    assert req["matching_agents"] == 2
    assert req["agents_by_state"] == {"busy": 1, "not_ready": 1}
    assert kit.router.explain("t1")["agent"] == "a"

    kit.router.set_presence("b", Presence.READY)
    kit.decline("t2", "b")
    (req,) = kit.router.explain("t2")["requirements"]
    assert req["why_waiting"] == "the only free matching agents declined or missed it"


# ================================================================== first response


def _first_response_kit() -> Kit:
    queue = Queue(name="q", sla=Sla(seconds=60, measure=SlaMeasure.FIRST_RESPONSE))
    return Kit([queue], [agent("a", capacity={"email": 5})])


def _reply(kit: Kit, interaction_id: str, sender: str = "agent:a") -> None:
    kit.router.add_message(Message(id=f"m-{kit.router.now}", interaction_id=interaction_id,
                                   sender=sender, text="hello"))  # fmt: skip


def test_first_response_sla_stops_at_the_agents_first_message_not_at_accepting() -> None:
    kit = _first_response_kit()
    kit.submit("mail", channel="email")
    kit.accept("mail")  # accepted at once: not yet an answer for the customer
    stats = kit.router.queue_stats("q")
    assert stats.answered == 0
    kit.advance(30)
    _reply(kit, "mail", sender="customer")  # the customer writing again changes nothing
    assert stats.answered == 0
    kit.advance(10)
    _reply(kit, "mail")
    assert (stats.answered, stats.answered_within, stats.wait_answered) == (1, 1, 40.0)
    assert kit.router.interaction("mail").first_response_at == T0 + 40
    _reply(kit, "mail")  # a second reply is not a second answer
    kit.advance(100)
    assert stats.answered == 1 and kit.new(ev.SlaBreached) == []


def test_first_response_sla_breaches_while_assigned_without_a_reply() -> None:
    kit = _first_response_kit()
    kit.submit("mail", channel="email")
    kit.accept("mail")
    kit.advance(60)
    (breach,) = kit.new(ev.SlaBreached)
    assert breach.interaction_id == "mail"
    _reply(kit, "mail")
    stats = kit.router.queue_stats("q")
    assert (stats.answered, stats.answered_within, stats.breached) == (1, 0, 1)


def test_answer_sla_is_unchanged_by_messages() -> None:
    kit = Kit([Queue(name="q", sla=Sla(seconds=20))], [agent("a")])
    kit.submit("chat", channel="webchat")
    kit.advance(5)
    kit.accept("chat")
    _reply(kit, "chat")
    stats = kit.router.queue_stats("q")
    assert (stats.answered, stats.wait_answered) == (1, 5.0)
    assert kit.router.interaction("chat").first_response_at == T0 + 5


def test_a_message_for_an_unknown_interaction_is_refused() -> None:
    kit = _first_response_kit()
    with pytest.raises(RouterError, match="no active interaction"):
        _reply(kit, "nope")


def test_first_response_sla_keeps_the_first_queues_deadline_across_a_transfer() -> None:
    """An email moved to another queue before anyone replied keeps the promise made when
    it arrived: the first queue's deadline (not the new queue's, shorter or longer), and
    that queue's service level counts the breach and the eventual reply."""
    sla = {"measure": SlaMeasure.FIRST_RESPONSE}
    queues = [
        Queue(name="sales", sla=Sla(seconds=100, **sla)),
        Queue(name="billing", sla=Sla(seconds=30, **sla)),
        Queue(name="slow", sla=Sla(seconds=1000, **sla)),
    ]
    kit = Kit(queues, [agent("a", capacity={"email": 5}, queues=["sales"])])
    kit.submit("short", "sales", channel="email")
    kit.submit("long", "sales", channel="email")
    kit.accept("short")
    kit.accept("long")
    kit.advance(10)
    kit.router.transfer("short", to_queue="billing")  # billing's own 30 s: due at 30
    kit.router.transfer("long", to_queue="slow")  # slow's own 1000 s: due at 1000
    kit.advance(50)
    assert kit.new(ev.SlaBreached) == []  # at 60: sales's 100 s still run for both
    kit.advance(40)
    breaches = kit.new(ev.SlaBreached)
    assert sorted((b.interaction_id, b.queue, b.at) for b in breaches) == [
        ("long", "sales", T0 + 100),
        ("short", "sales", T0 + 100),
    ]
    sales, billing = kit.router.queue_stats("sales"), kit.router.queue_stats("billing")
    assert (sales.breached, billing.breached) == (2, 0)
    # The first queue's selection key too: its deadline, not the new queue's.
    assert kit.router.active["short"].sla_deadline == T0 + 100


def test_first_response_reply_after_a_transfer_counts_in_the_first_queue() -> None:
    sla = {"measure": SlaMeasure.FIRST_RESPONSE}
    queues = [Queue(name="sales", sla=Sla(seconds=100, **sla)), Queue(name="billing")]
    agents = [
        agent("a", capacity={"email": 5}, queues=["sales"]),
        agent("b", capacity={"email": 5}, queues=["billing"]),
    ]
    kit = Kit(queues, agents)
    kit.submit("mail", "sales", channel="email")
    kit.accept("mail")
    kit.advance(10)
    kit.router.transfer("mail", to_queue="billing")  # billing measures "answer"
    kit.accept("mail")  # accepting in billing is still no answer for the customer
    assert kit.router.queue_stats("billing").answered == 0
    kit.advance(20)
    _reply(kit, "mail", sender="agent:b")
    sales = kit.router.queue_stats("sales")
    assert (sales.answered, sales.answered_within, sales.wait_answered) == (1, 1, 30.0)
    assert kit.router.queue_stats("billing").answered == 0
    kit.advance(200)
    assert kit.new(ev.SlaBreached) == []

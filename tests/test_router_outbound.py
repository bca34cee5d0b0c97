"""Outbound contacts: an agent starts one, it is theirs at once (never queued, never
offered), it holds their capacity, it is refused with a reason when they have no room or
are offline, it stays out of the queue's inbound figures, and a rebuild or a snapshot
gives it back exactly."""

from __future__ import annotations

import random

import pytest
from routerkit import Kit, agent, comparable, drive, ix, rebuilt, scenario_config
from test_router_snapshot import check_resumes

from omniroute import events as ev
from omniroute.model import Direction, Interaction, InteractionState, Presence, Queue
from omniroute.router import RouterError

S = InteractionState


def kit(**agents: dict[str, int]) -> Kit:
    queues = [
        Queue(name="q", wrap_up=5, offer_timeout=10),
        Queue(name="chat", channels=["webchat"], wrap_up=0),
    ]
    people = [agent(name, capacity=capacity) for name, capacity in agents.items()]
    return Kit(queues, people or [agent("ana"), agent("ben")])


def call(interaction_id: str, customer: str | None = None) -> Interaction:
    """A call to +15550100 from queue "q"."""
    return ix(interaction_id, "q", "voice", address="+15550100", customer=customer)


def test_an_outbound_contact_is_the_agents_at_once() -> None:
    k = kit()
    started = k.router.start_outbound(call("out1"), "ana")
    assert started.state is S.ASSIGNED and started.agent == "ana"
    assert started.direction is Direction.OUTBOUND and started.address == "+15550100"
    assert started.answered_at == k.now
    (event,) = k.new()
    assert isinstance(event, ev.OutboundStarted) and event.agent_id == "ana"
    assert event.interaction_id == "out1" and event.interaction.state is S.ASSIGNED
    assert k.work("ana") == {"out1"}
    assert k.router.agent("ana").load["voice"] == 1
    assert k.waiting_ids() == [] and k.router.position("out1") == 0
    # Nobody else is offered it, and it holds ana's voice capacity: a call in the queue
    # goes to ben.
    k.submit("in1")
    assert k.offered_to("in1") == ["ben"]


def test_it_completes_and_wraps_up_like_any_contact_with_its_outcome() -> None:
    k = kit()
    k.router.start_outbound(call("out1"), "ana")
    k.advance(30)
    k.router.complete("out1", "ana", outcome="no-answer")
    done = k.new(ev.Completed)[0]
    assert done.outcome == "no-answer" and done.wrap_up_until == k.now + 5
    assert k.router.interaction("out1").outcome == "no-answer"
    assert k.state("out1") is S.WRAP_UP
    k.advance(5)
    assert "out1" not in k.router.active
    assert k.work("ana") == set()
    assert k.router.agent("ana").load["voice"] == 0


def test_outbound_stays_out_of_the_inbound_figures() -> None:
    k = kit()
    k.submit("in1")
    k.advance(4)
    k.serve("in1", "ana")
    k.router.start_outbound(call("out1"), "ben")
    k.advance(60)
    k.router.complete("out1", outcome="answered")
    with pytest.raises(RouterError, match="1 of 1 voice"):  # the wrap-up holds the line
        k.router.start_outbound(call("out2"), "ben")
    k.advance(5)
    k.router.start_outbound(call("out2"), "ben")
    stats = k.router.queue_stats("q")
    assert stats.offered == 1 and stats.answered == 1 and stats.completed == 1
    assert stats.asa == 4 and stats.service_level == 1.0
    assert stats.outbound == 2 and stats.outbound_completed == 1
    assert stats.outbound_outcomes == {"answered": 1}
    assert stats.outbound_handle_time == 65  # talk and wrap-up
    assert stats.summary()["outbound_aht"] == 65


def test_refused_when_the_agent_has_no_room_naming_why() -> None:
    k = kit()
    k.submit("in1")  # offered to ana: the offer holds her only voice line
    assert k.offered_to("in1") == ["ana"]
    with pytest.raises(RouterError, match=r'agent "ana" has no free capacity: 1 of 1 voice'):
        k.router.start_outbound(call("out1"), "ana")
    k.router.start_outbound(call("out2"), "ben")
    with pytest.raises(RouterError, match="1 of 1 voice"):
        k.router.start_outbound(call("out3"), "ben")
    assert k.new(ev.OutboundStarted)[0].interaction.id == "out2"


def test_an_exclusive_channel_needs_the_agent_free_of_other_work() -> None:
    k = kit()
    k.submit("chat1", "chat", "webchat")
    k.accept("chat1")
    holder = k.router.interaction("chat1").agent
    assert holder is not None
    with pytest.raises(RouterError, match="voice takes them whole"):
        k.router.start_outbound(call("out1"), holder)
    # And an outbound call blocks chats: none is offered to the agent on the phone.
    other = "ben" if holder == "ana" else "ana"
    k.router.start_outbound(call("out2"), other)
    k.submit("chat2", "chat", "webchat")
    assert k.offered_to("chat2") == [holder]


def test_a_channel_the_agent_does_not_take_is_refused() -> None:
    k = kit(ana={"webchat": 3})
    with pytest.raises(RouterError, match="they do not take voice"):
        k.router.start_outbound(call("out1"), "ana")


def test_not_ready_may_call_offline_may_not() -> None:
    k = kit()
    k.router.set_presence("ana", Presence.NOT_READY, "outbound campaign")
    started = k.router.start_outbound(call("out1"), "ana")
    assert started.agent == "ana"
    k.router.complete("out1")
    k.advance(5)
    # Still not ready: the wrap-up's end offers her nothing.
    k.submit("in1")
    assert k.offered_to("in1") == ["ben"]
    k.router.set_presence("ben", Presence.OFFLINE)
    with pytest.raises(RouterError, match='agent "ben" is offline'):
        k.router.start_outbound(call("out2"), "ben")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"queue": "nope"}, 'unknown queue "nope"'),
        ({"queue": "chat"}, 'queue "chat" does not take channel "voice"'),
        ({"id": "dup"}, 'interaction "dup" is already in the router'),
    ],
)
def test_bad_requests_are_refused_before_anything_happens(
    change: dict[str, str], error: str
) -> None:
    k = kit()
    k.router.start_outbound(call("dup"), "ben")
    k.mark()
    fields = {"id": "out1", "queue": "q", **change}
    with pytest.raises(RouterError, match=error):
        k.router.start_outbound(
            ix(fields["id"], fields["queue"], "voice", address="1"),
            "ana",
        )
    with pytest.raises(RouterError, match='unknown agent "zed"'):
        k.router.start_outbound(call("out9"), "zed")
    assert k.new() == []


def test_a_transferred_outbound_call_reaches_a_colleague() -> None:
    k = kit()
    k.router.start_outbound(call("out1"), "ana")
    k.router.transfer("out1", to_agent="ben")
    k.accept("out1", "ben")
    assert k.router.interaction("out1").agent == "ben"
    k.router.complete("out1")
    k.advance(5)
    stats = k.router.queue_stats("q")
    assert stats.answered == 0 and stats.outbound_completed == 1


def test_the_customer_remembers_the_agent_who_called() -> None:
    k = kit()
    k.router.start_outbound(call("out1", customer="carla"), "ben")
    assert k.router.last_agent["carla"] == "ben"


def test_rebuild_and_snapshot_give_outbound_work_back() -> None:
    k = kit()
    k.submit("in1")
    k.router.start_outbound(call("out1"), "ben")
    k.advance(3)
    k.accept("in1")
    k.router.complete("out1", outcome="busy")
    k.drain()
    data = k.router.snapshot()
    full = rebuilt(k)
    assert comparable(full) == comparable(k)
    assert full.router.interaction("out1").outcome == "busy"
    assert full.router.queue_stats("q").outbound == 1
    part = rebuilt(k, events=[], snapshot=data)
    assert comparable(part) == comparable(k)
    assert part.router.interaction("out1").direction is Direction.OUTBOUND
    k.advance(5)
    full.advance(5)
    part.advance(5)
    assert comparable(part) == comparable(full) == comparable(k)
    assert part.router.queue_stats("q").outbound_outcomes == {"busy": 1}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_runs_with_outbound_contacts_resume_from_a_snapshot(seed: int) -> None:
    queues, agents, routing = scenario_config()
    k = Kit(queues, agents, routing=routing)
    drive(k, random.Random(seed), 120, outbound=True)
    assert k.all(ev.OutboundStarted), "the run started no outbound contact"
    k.drain()
    data = k.router.snapshot()
    check_resumes(k, len(k.log), data, seed=seed)

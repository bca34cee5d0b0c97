"""What a consultative transfer needs from the router: the agent a queue would pick for
a consultation (`pick`), the hand-over to the consulted colleague (`hand_over`), and the
expected wait callers are told (`omniroute.wait`)."""

from __future__ import annotations

import pytest
from routerkit import Kit, agent, comparable, rebuilt

from omniroute import events as ev
from omniroute.model import InteractionState, Presence, Queue
from omniroute.router.core import RouterError
from omniroute.wait import estimate, expected_wait, serving_places

S = InteractionState


def test_hand_over_moves_the_interaction_in_one_command() -> None:
    kit = Kit([Queue(name="q", offer_timeout=10)], [agent("a"), agent("b")])
    kit.submit("i1")
    kit.accept("i1", "a")
    kit.mark()
    kit.router.hand_over("i1", "b", "a")
    transferred, assigned = kit.new((ev.Transferred, ev.Assigned))
    assert (transferred.from_agent, transferred.to_agent) == ("a", "b")
    assert (assigned.agent_id, assigned.offer_id) == ("b", None)
    assert not kit.new(ev.Offered)  # never offered: b is already on the line
    assert kit.router.interaction("i1").agent == "b"
    assert kit.state("i1") is S.ASSIGNED
    assert kit.work("a") == set() and kit.work("b") == {"i1"}
    assert kit.router.agent("a").load == {"voice": 0, "webchat": 0} or not any(
        kit.router.agent("a").load.values()
    )
    kit.router.complete("i1", "b")  # b holds it now, with its wrap-up
    assert kit.state("i1") is S.WRAP_UP


def test_hand_over_respects_the_colleague_s_capacity() -> None:
    kit = Kit([Queue(name="q", offer_timeout=10)], [agent("a"), agent("b")])
    kit.submit("i1")
    kit.accept("i1", "a")
    kit.submit("i2")
    kit.accept("i2", "b")  # b is on another call
    kit.mark()
    with pytest.raises(RouterError, match='"b" cannot take a voice interaction now'):
        kit.router.hand_over("i1", "b", "a")
    assert kit.new() == [] and kit.router.interaction("i1").agent == "a"
    with pytest.raises(RouterError, match="unknown agent"):
        kit.router.hand_over("i1", "nobody", "a")
    with pytest.raises(RouterError, match="already has it"):
        kit.router.hand_over("i1", "a", "a")
    with pytest.raises(RouterError):
        kit.router.hand_over("i1", "b", "b")  # not b's to hand over
    kit.router.set_presence("b", Presence.NOT_READY)
    kit.router.complete("i2", "b")
    with pytest.raises(RouterError, match="not_ready"):
        kit.router.hand_over("i1", "b", "a")


def test_a_hand_over_survives_a_rebuild() -> None:
    kit = Kit([Queue(name="q", offer_timeout=10, wrap_up=5)], [agent("a"), agent("b")])
    kit.submit("i1")
    kit.accept("i1", "a")
    kit.router.hand_over("i1", "b", "a")
    kit.submit("i2")  # a is free again and takes the next call
    assert kit.offered_to("i2") == ["a"]
    again = rebuilt(kit)
    assert again.drain() == []
    assert comparable(again) == comparable(kit)


def test_pick_is_who_the_queue_would_offer_to() -> None:
    queues = [Queue(name="q"), Queue(name="billing", skills={"billing": 2})]
    agents = [agent("a"), agent("b", {"billing": 3}), agent("c", {"billing": 2})]
    kit = Kit(queues, agents)
    kit.advance(5)
    kit.submit("i1", "billing")  # one of b and c takes it: the other is picked
    kit.accept("i1")
    taker = kit.router.interaction("i1").agent
    other = "c" if taker == "b" else "b"
    assert kit.router.pick("billing", "voice") == other
    assert kit.router.pick("billing", "voice", excluded={other}) is None
    assert kit.router.pick("billing", "voice", {"billing": 3}) in (None, "b")
    assert kit.router.pick("q", "voice", excluded={"a", other}) is None
    with pytest.raises(RouterError, match="unknown queue"):
        kit.router.pick("nope", "voice")
    assert kit.new(ev.Offered) == [] or True  # a read: nothing emitted
    before = len(kit.drain())
    kit.router.pick("q", "voice")
    assert len(kit.drain()) == before


def test_expected_wait_is_place_times_handle_time_over_places() -> None:
    assert expected_wait(3, 240.0, 2) == 360.0
    assert expected_wait(1, 240.0, 4) == 60.0
    assert expected_wait(2, None, 2) is None  # no history yet
    assert expected_wait(2, 240.0, 0) is None  # nobody serving
    assert expected_wait(0, 240.0, 2) is None  # not in line


def test_the_estimate_uses_today_s_handle_time_and_the_ready_agents() -> None:
    q = Queue(name="q", offer_timeout=10, wrap_up=0)
    kit = Kit([q], [agent("a"), agent("b"), agent("off")], ready=["a", "b"])
    kit.submit("w1")
    assert estimate(kit.router, "w1") is None  # offered, not waiting
    kit.accept("w1", kit.offered_to("w1")[0])
    kit.advance(120)
    kit.router.complete("w1")  # one call of 120 s today
    for n in range(1, 4):
        kit.submit(f"i{n}")
    for n in (1, 2):
        kit.accept(f"i{n}", kit.offered_to(f"i{n}")[0])
    assert kit.router.position("i3") == 1
    assert serving_places(kit.router, "q", "voice", {}) == 2  # "off" is not ready
    assert estimate(kit.router, "i3") == 60.0  # 1 * 120 / 2
    kit.submit("i4")
    assert estimate(kit.router, "i4") == 120.0  # 2 * 120 / 2
    kit.router.set_presence("off", Presence.READY)  # ... and takes i3
    assert estimate(kit.router, "i4") == pytest.approx(120 / 3)

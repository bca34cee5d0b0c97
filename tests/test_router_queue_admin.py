"""Queues added, changed and removed while running (the admin API's commands): the
interactions in a changed queue route by its new rules at once, and a router rebuilt
from the log, or from a snapshot and the log after it, runs the queues as changed."""

from __future__ import annotations

import msgspec
import pytest
from routerkit import Kit, agent, comparable, rebuilt

from omniroute import events as ev
from omniroute.model import Action, ActionKind, EscalationStep, Hours, Queue, Sla
from omniroute.router.core import RouterError


def _kit() -> Kit:
    queues = [Queue(name="sales", skills={"sales": 1}), Queue(name="support")]
    agents = [agent("ana", {"support": 3}), agent("bob", {"sales": 2})]
    return Kit(queues, agents, ready=["ana"])


def _queues(kit: Kit) -> dict[str, Queue]:
    return {name: q.config for name, q in kit.router.queues.items()}


def test_a_waiting_interaction_routes_by_the_queues_new_skills() -> None:
    kit = _kit()
    kit.submit("c1", "sales")
    assert kit.offered_to("c1") == []  # only ana is ready, and she has no sales skill
    kit.router.upsert_queue(Queue(name="sales", skills={"support": 2}))
    assert kit.offered_to("c1") == ["ana"]
    offered = kit.new(ev.Offered)[-1]
    assert offered.explanation.requirement == {"support": 2}


def test_a_new_priority_and_ladder_apply_to_interactions_already_waiting() -> None:
    kit = Kit(
        [Queue(name="a", priority=0), Queue(name="b", priority=0)],
        [agent("ana")],
        ready=[],
    )
    kit.submit("first", "a")
    kit.advance(5)
    kit.submit("second", "b")
    kit.router.upsert_queue(
        Queue(name="b", priority=5, escalation=[EscalationStep(after=10, notify=True)])
    )
    kit.router.set_presence("ana", "ready")  # type: ignore[arg-type]
    assert kit.offered_to("second") == ["ana"]  # b outranks a now
    kit.router.decline(kit.offer_id("second"))
    kit.advance(10)  # the new rung of b, counted from when "second" started waiting
    (rung,) = kit.new(ev.EscalationApplied)
    assert (rung.interaction_id, rung.queue, rung.index) == ("second", "b", 0)
    kit.router.upsert_queue(Queue(name="b"))  # the ladder taken away again
    kit.advance(60)
    assert kit.new(ev.EscalationApplied) == []


def test_a_new_queue_takes_interactions_and_an_unknown_strategy_is_refused() -> None:
    kit = _kit()
    kit.router.upsert_queue(Queue(name="vip", strategy="round-robin", sla=Sla(seconds=10)))
    kit.submit("v1", "vip")
    assert kit.offered_to("v1") == ["ana"]
    with pytest.raises(RouterError, match=r'unknown strategy "nope"; installed: .*longest-idle'):
        kit.router.upsert_queue(Queue(name="vip", strategy="nope"))
    assert kit.router.queues["vip"].config.strategy == "round-robin"


def test_removal_is_refused_while_the_queue_is_in_use() -> None:
    kit = _kit()
    kit.submit("c1", "sales")
    with pytest.raises(RouterError, match='"sales" holds 1 live interaction'):
        kit.router.remove_queue("sales")
    overflow = EscalationStep(after=30, overflow="support")
    kit.router.upsert_queue(Queue(name="sales", skills={"sales": 1}, escalation=[overflow]))
    with pytest.raises(RouterError, match='"support" is an overflow target of sales'):
        kit.router.remove_queue("support")
    with pytest.raises(RouterError, match='unknown queue "nope"'):
        kit.router.remove_queue("nope")
    kit.router.abandon("c1")
    kit.router.remove_queue("sales")
    assert list(kit.router.queues) == ["support"]
    with pytest.raises(RouterError, match='unknown queue "sales"'):
        kit.submit("c2", "sales")


def test_a_change_that_strands_waiting_interactions_is_refused() -> None:
    kit = _kit()
    kit.submit("c1", "sales", "webchat")
    with pytest.raises(RouterError, match="interactions on webchat wait in it"):
        kit.router.upsert_queue(Queue(name="sales", channels=["voice"]))


def _changed(kit: Kit) -> None:
    """Change one queue, add one, remove one, with interactions around."""
    kit.submit("c1", "sales")
    kit.router.upsert_queue(Queue(name="sales", skills={"support": 2}, priority=3))
    kit.router.upsert_queue(Queue(name="vip", strategy="round-robin"))
    kit.submit("v1", "vip")
    kit.router.remove_queue("support")


def test_rebuild_from_the_log_runs_the_queues_as_changed() -> None:
    kit = _kit()
    _changed(kit)
    again = rebuilt(kit)
    assert _queues(again) == _queues(kit)
    assert list(again.router.queues) == ["sales", "vip"]
    assert comparable(again) == comparable(kit)


@pytest.mark.parametrize("when", ["before", "after"])
def test_rebuild_from_a_snapshot_runs_the_queues_as_changed(when: str) -> None:
    kit = _kit()
    if when == "before":  # the changes are in the snapshot
        _changed(kit)
        kit.drain()
        data, tail = kit.router.snapshot(), []
    else:  # the changes are in the log after it
        kit.drain()
        data = kit.router.snapshot()
        start = len(kit.log)
        _changed(kit)
        tail = kit.drain()[start:]
    again = rebuilt(kit, events=tail, snapshot=data)
    assert _queues(again) == _queues(kit)
    assert comparable(again) == comparable(kit)
    # And it goes on routing by the new rules: ana (support 3) serves sales now.
    again.submit("c2", "sales")
    again.serve("c1", "ana")
    assert again.offered_to("c2") == ["ana"]


def test_a_snapshot_records_each_queue_as_it_runs() -> None:
    kit = _kit()
    kit.router.upsert_queue(Queue(name="sales", skills={"support": 2}))
    kit.drain()
    again = rebuilt(kit, events=[], snapshot=kit.router.snapshot())
    assert again.router.queues["sales"].config == msgspec.structs.replace(
        kit.queues[0], skills={"support": 2}
    )


def test_an_overflow_a_rung_added_ends_with_the_queue_removed() -> None:
    kit = _kit()
    ladder = [EscalationStep(after=5, overflow="support")]
    kit.router.upsert_queue(Queue(name="sales", skills={"sales": 1}, escalation=ladder))
    kit.router.set_presence("ana", "offline")  # type: ignore[arg-type]
    kit.submit("c1", "sales")
    kit.advance(6)  # the rung: support's agents may take it too
    assert [b.queue.name for b in kit.router.active["c1"].buckets] == ["sales", "support"]
    kit.router.upsert_queue(Queue(name="sales", skills={"sales": 1}))
    kit.router.remove_queue("support")
    assert [b.queue.name for b in kit.router.active["c1"].buckets] == ["sales"]
    kit.drain()
    again = rebuilt(kit, events=[], snapshot=kit.router.snapshot())
    assert comparable(again) == comparable(kit)


def test_new_hours_that_close_the_queue_apply_its_closed_action_now() -> None:
    kit = _kit()
    kit.submit("c1", "sales")
    closed = Hours(weekly={}, closed=Action(action=ActionKind.CLOSE, message="closed"))
    kit.router.upsert_queue(Queue(name="sales", skills={"sales": 1}, hours=closed))
    (event,) = kit.new(ev.Closed)
    assert (event.interaction_id, event.message) == ("c1", "closed")
    kit.router.upsert_queue(Queue(name="sales", skills={"sales": 1}))  # open again
    kit.advance(7 * 86400)  # its old hours' timer does nothing any more
    kit.submit("c2", "sales")
    assert kit.new(ev.Closed) == []

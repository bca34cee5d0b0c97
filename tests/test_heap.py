"""The records made per contact stay out of the garbage collector's sight, so its full
passes in a busy server stay short (omniroute/heap.py says why that matters)."""

from __future__ import annotations

import gc

from routerkit import Kit, agent, ix

from omniroute import events as ev
from omniroute.conversations import Conversations
from omniroute.heap import OLD_THRESHOLD, settle
from omniroute.model import Customer, Identity, Message, Queue

#: Containers the collector tracks per ended web chat (one message) while its SLA and
#: offer timers are pending: the router's Waiting and two timer entries, the customer's
#: identity list and attributes, the explanation's two lists, the message's attachment
#: list, the conversation's message list, the history's list, address set and the
#: profile's (empty) identity list. Measured 12; a record that became tracked again
#: adds one or more.
BUDGET = 12.5


def _chat(n: int) -> object:
    return ix(
        f"webchat-{n}",
        "chat",
        "webchat",
        customer=None,
        subject="Chat",
        attributes={"webchat": {"address": "127.0.0.1"}},
    )


def _kit() -> Kit:
    queues = [Queue(name="chat", wrap_up=0, offer_timeout=60)]
    return Kit(queues, [agent(f"a{i}", capacity={"webchat": 2}) for i in range(50)])


def _serve(kit: Kit, conversations: Conversations, log: list[ev.Event], first: int, n: int) -> None:
    """`n` web chats, each offered, accepted, answered once and completed."""
    router = kit.router
    for i in range(first, first + n):
        chat = _chat(i)
        chat.customer = Customer(  # type: ignore[attr-defined]
            id=f"webchat:s{i}", name="c", identities=[Identity("webchat", f"s{i}")]
        )
        router.submit(chat)  # type: ignore[arg-type]
        for event in router.drain():
            log.append(event)
            conversations.apply(event)
            if isinstance(event, ev.Offered):
                router.accept(event.offer_id)
        message = Message(id=f"m{i}", interaction_id=f"webchat-{i}", sender="customer", text="hi")
        log.append(ev.MessageAdded(at=kit.now, message=message))
        conversations.apply(log[-1])
        router.complete(f"webchat-{i}")
        for event in router.drain():
            log.append(event)
            conversations.apply(event)


def test_events_and_the_records_they_carry_are_untracked() -> None:
    kit, conversations, log = _kit(), Conversations(), []
    _serve(kit, conversations, log, 0, 20)
    kinds = {type(e) for e in log}
    assert {ev.InteractionQueued, ev.Offered, ev.Assigned, ev.MessageAdded} <= kinds
    for event in log:
        assert not gc.is_tracked(event), type(event).__name__
    for event in log:
        if isinstance(event, ev.InteractionQueued):
            assert not gc.is_tracked(event.interaction)
            assert not gc.is_tracked(event.interaction.customer)
        elif isinstance(event, ev.Offered):
            assert event.explanation is not None
            assert not gc.is_tracked(event.explanation)
            assert not any(gc.is_tracked(c) for c in event.explanation.candidates)
        elif isinstance(event, ev.MessageAdded):
            assert not gc.is_tracked(event.message)
    contacts = conversations.history("webchat:s3")
    assert contacts
    assert not any(gc.is_tracked(c) for c in contacts)


def test_tracked_objects_per_contact_stay_few() -> None:
    kit, conversations, log = _kit(), Conversations(), []
    _serve(kit, conversations, log, 0, 200)  # warm: buckets, heaps, caches exist
    gc.collect()
    before = len(gc.get_objects())
    _serve(kit, conversations, log, 200, 1000)
    gc.collect()
    per_chat = (len(gc.get_objects()) - before) / 1000
    assert per_chat < BUDGET, f"{per_chat:.2f} tracked objects per ended chat"


def test_settle_freezes_start_up_and_spaces_out_full_collections() -> None:
    threshold = gc.get_threshold()
    try:
        settle()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (threshold[0], threshold[1], OLD_THRESHOLD)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)

"""Outbound click-to-call against a real Asterisk, with sipp as the agent's phone and as
the customer's (on the trunk): the agent's phone rings first, then the customer's with
the configured caller ID; answered, they are bridged (and recorded when the queue is);
busy, unanswered or an agent who does not pick up end the interaction with that outcome."""

from __future__ import annotations

import pytest
from voicekit import document, rig

from omniroute import events as ev

pytestmark = pytest.mark.anyio

QUEUES = [{"name": "support", "offer_timeout": 3, "wrap_up": 0}]


def config(asterisk, **outbound):  # type: ignore[no-untyped-def]
    settings = {"caller_id": "+15550000", "customer_ring": 3, "agent_ring": 3, **outbound}
    return document(asterisk, queues=QUEUES, outbound=settings, record_queues=["support"])


async def test_an_answered_call_is_bridged_recorded_and_completed(asterisk) -> None:
    async with rig(asterisk, config(asterisk)) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("customer", "answer", ring_ms=300, talk_ms=5000)
        await r.app.set_presence("ana", "not_ready", "calls")
        started = await r.app.start_outbound("ana", "voice", "5550123")
        ix = started.id
        agent, customer = f"omni-out-agent-{ix}", f"omni-out-customer-{ix}"
        await r.bridged(customer, agent)
        # The customer sees the configured caller ID (Asterisk's own record of the leg).
        leg = await r.ari(f"channels/{customer}")
        assert leg["caller"]["number"] == "+15550000"
        done = await r.wait_for(ev.Completed, interaction_id=ix, timeout=15)  # they hung up
        assert done.agent_id == "ana" and done.outcome == "answered"
        recording = r.asterisk.recordings / f"omni-{ix}.wav"
        await r.until(lambda: recording.exists() and recording.stat().st_size > 44)
        assert any(
            m.attachments == [f"/voice/recordings/omni-{ix}.wav"]
            for m in r.app.conversations.messages(ix)
        )
        await r.no_bridges()


@pytest.mark.parametrize(
    ("phone", "outcome", "says"),
    [
        ({"action": "reject", "reject_code": 486}, "busy", "busy"),
        ({"action": "ringout"}, "no-answer", "did not answer"),
    ],
)
async def test_a_customer_who_does_not_take_it_ends_it_with_the_outcome(
    asterisk, phone, outcome, says
) -> None:
    async with rig(asterisk, config(asterisk, customer_ring=2)) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("customer", **phone)
        await r.app.set_presence("ana", "ready")
        started = await r.app.start_outbound("ana", "voice", "5550124")
        done = await r.wait_for(ev.Completed, interaction_id=started.id, timeout=15)
        assert done.outcome == outcome
        said = r.app.conversations.messages(started.id)
        assert said and says in said[0].text
        if outcome == "no-answer":
            assert started.answered_at is not None
            assert done.at - started.answered_at >= 2  # it rang its time
        await r.until(lambda: _no_channels(r))


async def test_an_agent_who_does_not_pick_up_calls_nobody(asterisk) -> None:
    async with rig(asterisk, config(asterisk, agent_ring=2)) as r:
        r.phone("ana", "ringout")
        r.phone("customer", "answer", ring_ms=100)
        await r.app.set_presence("ana", "ready")
        started = await r.app.start_outbound("ana", "voice", "5550126")
        done = await r.wait_for(ev.Completed, interaction_id=started.id, timeout=15)
        assert done.outcome == "agent-no-answer"
        said = r.app.conversations.messages(started.id)
        assert said and "your phone was not answered" in said[0].text
        await r.until(lambda: _no_channels(r))


async def _no_channels(r) -> bool:  # type: ignore[no-untyped-def]
    return not await r.ari("channels")

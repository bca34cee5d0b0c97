"""Calls through a real Asterisk with real SIP (sipp): a caller is queued with music, the
agent's phone rings, answering bridges the two, either side hanging up completes it; no
answer or a rejection moves the offer on; hanging up while waiting is an abandon."""

from __future__ import annotations

import anyio
import pytest
from voicekit import _empty, document, rig

from omniroute import events as ev
from omniroute.model import Identity

pytestmark = pytest.mark.anyio


async def test_an_answered_call_is_bridged_then_completed(asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana",)) as r:
        r.phone("ana", "answer", ring_ms=200)
        caller = await r.call(caller="5550001", hold_ms=5000)
        queued = await r.wait_for(ev.InteractionQueued)
        ix = queued.interaction
        assert ix.channel == "voice" and ix.queue == "support"
        assert ix.customer is not None and Identity("voice", "5550001") in ix.customer.identities
        offer = await r.wait_for(ev.Offered, agent_id="ana")
        await r.wait_for(ev.Assigned, agent_id="ana", offer_id=offer.offer_id)
        bridge = await r.bridged(
            ix.attributes["asterisk"]["channel"], f"omni-offer-{offer.offer_id}-{ix.id}"
        )
        assert bridge["bridge_type"] == "mixing" and len(await r.bridges()) == 1
        offered_at, rang_at = r.voice.ring_times[offer.offer_id]
        assert rang_at is not None and 0 <= rang_at - offered_at < 1.0
        done = await r.wait_for(ev.Completed, interaction_id=ix.id, agent_id="ana")
        assert done.at - offer.at >= 2.0  # the caller hung up after talking
        assert await caller.wait() == 0
        assert await r.no_bridges()
        assert await r.until(lambda: _empty(r.ari("channels")))


async def test_no_answer_is_a_missed_offer_and_the_next_agent_rings(asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana", "bob")) as r:
        r.phone("ana", "ringout")
        r.phone("bob", "answer", ring_ms=100, talk_ms=1000)  # bob hangs up after a second
        caller = await r.call(hold_ms=60_000)
        first = await r.wait_for(ev.Offered)
        other = "bob" if first.agent_id == "ana" else "ana"
        if first.agent_id == "ana":
            await r.wait_for(ev.OfferMissed, agent_id="ana", timeout=6)
        await r.wait_for(ev.Assigned, agent_id="bob", timeout=10)
        assert other in ("ana", "bob")
        await r.wait_for(ev.Completed, agent_id="bob")  # the agent hung up
        with anyio.fail_after(10):  # hung up on, cleanly, long before their own 60 s
            assert await caller.wait() == 0
        assert await r.no_bridges()


async def test_a_rejected_call_is_declined_and_offered_on(asterisk) -> None:
    config = document(asterisk)
    config["queues"][0]["strategy"] = "round-robin"
    async with rig(asterisk, config, ready=("ana", "bob")) as r:
        r.phone("ana", "reject", reject_code=486)
        r.phone("bob", "answer", ring_ms=100)
        await r.call(hold_ms=8000)
        first = await r.wait_for(ev.Offered)
        if first.agent_id == "ana":
            declined = await r.wait_for(ev.OfferDeclined, agent_id="ana")
            assert declined.offer_id == first.offer_id
            assert not r.of(ev.OfferMissed)
        await r.wait_for(ev.Assigned, agent_id="bob")
        await r.wait_for(ev.Completed, agent_id="bob")


async def test_hanging_up_while_waiting_is_an_abandon(asterisk) -> None:
    async with rig(asterisk, document(asterisk)) as r:  # nobody ready
        caller = await r.call(hold_ms=1500)
        queued = await r.wait_for(ev.InteractionQueued)
        abandoned = await r.wait_for(ev.Abandoned, interaction_id=queued.interaction.id)
        assert abandoned.at - queued.at >= 1.0
        assert await caller.wait() == 0
        assert await r.until(lambda: _empty(r.ari("channels")))


async def test_ring_all_rings_every_phone_and_the_first_answer_wins(asterisk) -> None:
    config = document(asterisk)
    config["queues"][0]["strategy"] = "ring-all"
    async with rig(asterisk, config, ready=("ana", "bob")) as r:
        r.phone("ana", "answer", ring_ms=200)
        r.phone("bob", "answer", ring_ms=2500)
        await r.call(hold_ms=15_000)
        queued = await r.wait_for(ev.InteractionQueued)
        await r.until(lambda: len(r.of(ev.Offered)) == 2)
        assigned = await r.wait_for(ev.Assigned, interaction_id=queued.interaction.id)
        assert assigned.agent_id == "ana"
        revoked = await r.wait_for(ev.OfferRevoked, agent_id="bob")
        caller = queued.interaction.attributes["asterisk"]["channel"]
        await r.bridged(caller, f"omni-offer-{assigned.offer_id}-{queued.interaction.id}")
        bob_leg = f"omni-offer-{revoked.offer_id}-{queued.interaction.id}"
        channels = await r.until(lambda: _without(r, bob_leg))
        assert len(channels) == 2  # the caller and ana; bob's phone stopped ringing


async def _without(r, channel_id: str) -> list[dict] | None:
    channels = await r.ari("channels")
    return channels if all(c["id"] != channel_id for c in channels) else None


async def test_completing_from_the_inbox_hangs_up_the_call(asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana",)) as r:
        r.phone("ana", "answer", ring_ms=100)
        caller = await r.call(hold_ms=60_000)
        assigned = await r.wait_for(ev.Assigned)
        await r.until(lambda: _bridge_of_two(r))
        await r.app.complete(assigned.interaction_id, "ana")
        with anyio.fail_after(10):  # the caller was hung up on, long before 60 s
            assert await caller.wait() == 0
        await r.no_bridges()


async def _bridge_of_two(r) -> bool:
    return any(len(b["channels"]) == 2 for b in await r.bridges())

"""While a caller waits, against a real Asterisk: the IVR picks the queue and skills by
key press, announcements of the place in line, a callback that keeps the place and
connects the agent to the customer when their turn comes, and voicemail at max_wait."""

from __future__ import annotations

import logging

import anyio
import pytest
from voicekit import document, rig

from omniroute import events as ev

pytestmark = pytest.mark.anyio

QUEUES = [
    {"name": "support", "offer_timeout": 3, "wrap_up": 0},
    {"name": "billing", "offer_timeout": 3, "wrap_up": 0},
]
MENU = {
    "200": {
        "queue": "support",
        "prompt": "sound:beep",
        "menu_timeout": 1.5,
        "menu": {"1": {"queue": "billing"}, "2": {"queue": "support", "skills": {"french": 2}}},
    }
}


async def test_the_ivr_sets_queue_and_skills_from_a_key(asterisk) -> None:
    async with rig(asterisk, document(asterisk, queues=QUEUES, numbers=MENU)) as r:
        await r.call("200", keys=((600, "2"),), hold_ms=1500)
        queued = await r.wait_for(ev.InteractionQueued)
        assert queued.interaction.queue == "support"
        assert queued.interaction.skills == {"french": 2}
        assert queued.interaction.attributes["asterisk"]["dialled"] == "200"
        await r.wait_for(ev.Abandoned)
        await r.call("200", keys=((600, "1"),), hold_ms=1500)
        billing = await r.until(
            lambda: [e for e in r.of(ev.InteractionQueued) if e.interaction.queue == "billing"]
        )
        assert billing[0].interaction.skills == {}


async def test_no_key_in_time_takes_the_numbers_own_queue(asterisk) -> None:
    async with rig(asterisk, document(asterisk, queues=QUEUES, numbers=MENU)) as r:
        await r.call("200", keys=((4000, "1"),), hold_ms=4500)  # too late: menu is over
        queued = await r.wait_for(ev.InteractionQueued)
        assert queued.interaction.queue == "support" and queued.interaction.skills == {}


async def test_waiting_callers_hear_their_place_in_line(asterisk, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="omniroute.asterisk")
    prompts = {"announce_next": ["sound:beep"], "announce_place": ["digits:{ahead}"]}
    async with rig(asterisk, document(asterisk, announce_every=1, **prompts)) as r:
        # They wait (the rig hangs up on them at the end) until Asterisk has played each
        # its announcement to the end: no hold time to outlast, however busy the machine.
        await r.call(caller="5550001", hold_ms=60_000)
        await r.call(caller="5550002", hold_ms=60_000)
        await r.until(lambda: len(r.of(ev.InteractionQueued)) == 2)
        first, second = (
            e.interaction.attributes["asterisk"]["channel"] for e in r.of(ev.InteractionQueued)
        )

        def heard(media: str, channel: str) -> bool:
            return any(
                "PlaybackFinished" in m
                and "announce-" in m
                and f"media_uri='{media}'" in m
                and f"target_uri='channel:{channel}'" in m
                and "state='done'" in m
                for m in caplog.messages
            )

        # The first in line is next; the second has one caller ahead.
        await r.until(lambda: heard("sound:beep", first) and heard("digits:1", second), 20)


async def test_a_callback_keeps_the_place_and_connects_agent_and_customer(asterisk) -> None:
    queues = [
        {
            "name": "support",
            "offer_timeout": 5,
            "wrap_up": 0,
            "escalation": [{"after": 1, "callback": True}],
        }
    ]
    async with rig(asterisk, document(asterisk, queues=queues)) as r:
        # "1" at 2 s and again at 5 s: the first press may come before a busy machine
        # has offered the callback (a press before the offer does nothing).
        caller = await r.call(caller="5557777", keys=((2000, "1"), (3000, "1")), hold_ms=60_000)
        queued = await r.wait_for(ev.InteractionQueued)
        ix = queued.interaction
        await r.wait_for(ev.CallbackOffered, interaction_id=ix.id)
        requested = await r.wait_for(ev.CallbackRequested, interaction_id=ix.id)
        assert requested.number == "5557777"
        with anyio.fail_after(10):  # we hung up on them: they keep their place
            assert await caller.wait() == 0
        assert not r.of(ev.Abandoned)
        r.phone("ana", "answer", ring_ms=100)
        r.phone("customer", "answer", ring_ms=100, talk_ms=1500)
        await r.app.set_presence("ana", "ready")
        await r.wait_for(ev.Assigned, interaction_id=ix.id, agent_id="ana")
        offer = r.of(ev.Offered)[-1]
        await r.bridged(f"omni-offer-{offer.offer_id}-{ix.id}", f"omni-callback-{ix.id}")
        done = await r.wait_for(ev.Completed, interaction_id=ix.id)
        assert done.agent_id == "ana"
        assigned = r.of(ev.Assigned)[-1]
        assert assigned.at > requested.at
        # The original place: the interaction kept its first enqueue time.
        assert r.app.conversations is not None
        assert [e.interaction.enqueued_at for e in r.of(ev.InteractionQueued)] == [queued.at]


async def test_max_wait_ends_in_a_voicemail_that_becomes_an_interaction(asterisk) -> None:
    queues = [
        {
            "name": "support",
            "offer_timeout": 3,
            "wrap_up": 0,
            "channels": ["voice", "voicemail"],
            "max_wait": 1,
            "on_max_wait": {"action": "voicemail"},
        }
    ]
    config = document(asterisk, queues=queues, voicemail_prompt=["sound:beep"])
    async with rig(asterisk, config) as r:
        await r.call(caller="5558888", hold_ms=5000)
        queued = await r.wait_for(ev.InteractionQueued)
        closed = await r.wait_for(ev.Closed, interaction_id=queued.interaction.id)
        assert closed.reason == "voicemail"
        voicemail = await r.until(
            lambda: [e for e in r.of(ev.InteractionQueued) if e.interaction.channel == "voicemail"]
        )
        ix = voicemail[0].interaction
        assert ix.queue == "support" and ix.attributes["voicemail_of"] == queued.interaction.id
        file = r.asterisk.recordings / ix.attributes["asterisk"]["file"]
        assert file.exists() and file.stat().st_size > 44  # a WAV header and some audio
        assert ix.customer is not None and ix.customer.id == "voice:5558888"

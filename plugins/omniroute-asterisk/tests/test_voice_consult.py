"""Consultative transfer, three-way conference and the expected wait, against a real
Asterisk with sipp phones: the agents' controls go through the web API, and what
happened is checked in omniroute's events and in Asterisk's own bridges."""

from __future__ import annotations

import logging

import httpx
import pytest
from test_voice_in_call import agent_leg, talking
from voicekit import auth, document, rig, with_users

from omniroute import events as ev

pytestmark = pytest.mark.anyio


async def test_a_consultative_transfer_to_a_colleague_from_the_api(asterisk) -> None:
    config = with_users(document(asterisk))
    async with rig(asterisk, config, ready=("ana", "bob"), web=True) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("bob", "answer", ring_ms=300)
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        base = f"/voice/calls/{ix}/consult"
        async with httpx.AsyncClient(base_url=r.url) as http:
            refused = await http.post(base, json={"agent": "bob"}, headers=auth("bob"))
            assert refused.status_code == 403  # not bob's call
            bad = await http.post(
                base, json={"agent": "bob", "queue": "support"}, headers=auth("ana")
            )
            assert bad.status_code == 409 and "exactly one" in bad.text
            started = await http.post(base, json={"agent": "bob"}, headers=auth("ana"))
            assert started.status_code == 200, started.text
            leg = started.json()["channel"]
            # ana and bob talk in the call's bridge; the caller is out of it, on music
            await r.bridged(agent_leg(offer), leg)
            status = await http.get(base, headers=auth("ana"))
            assert status.json()["state"] == "talking"
            assert r.app.router.interaction(ix).agent == "ana"
            done = await http.post(f"{base}/complete", headers=auth("ana"))
            assert done.status_code == 200, done.text
            await r.bridged(caller, leg)  # the caller with bob; ana hung up
            assert r.app.router.interaction(ix).agent == "bob"
            transferred = await r.wait_for(ev.Transferred, interaction_id=ix)
            assert (transferred.from_agent, transferred.to_agent) == ("ana", "bob")
            await r.wait_for(ev.Assigned, interaction_id=ix, agent_id="bob", offer_id=None)
            channels = {c["id"] for c in await r.ari("channels")}
            assert agent_leg(offer) not in channels
            # now bob's call: bob holds it, ana may not
            assert (
                await http.post(f"/voice/calls/{ix}/hold", headers=auth("ana"))
            ).status_code == 403
            hold = await http.post(f"/voice/calls/{ix}/hold", headers=auth("bob"))
            assert hold.status_code == 204, hold.text
            await r.bridged(leg)
        assert not r.of(ev.Completed) and len(await r.bridges()) == 1


async def test_a_colleague_who_declines_or_does_not_answer_returns_the_caller(asterisk) -> None:
    config = with_users(document(asterisk, consult_ring=2))
    async with rig(asterisk, config, ready=("ana", "bob"), web=True) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("bob", "reject", ring_ms=300)
        r.phone("cy", "ring")  # rings until the time-out
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        base = f"/voice/calls/{ix}/consult"
        async with httpx.AsyncClient(base_url=r.url) as http:
            # to the queue: the router picks bob (ana has the call, cy is not ready)
            started = await http.post(base, json={"queue": "support"}, headers=auth("ana"))
            assert started.status_code == 200, started.text
            assert started.json()["agent"] == "bob"
            await r.bridged(caller, agent_leg(offer))  # bob declined: back to the caller
            status = (await http.get(base, headers=auth("ana"))).json()
            assert status["state"] == "declined"
            await r.app.set_presence("cy", "ready")
            started = await http.post(base, json={"agent": "cy"}, headers=auth("ana"))
            assert started.status_code == 200, started.text
            await r.bridged(agent_leg(offer))  # held while cy's phone rings
            await r.bridged(caller, agent_leg(offer), timeout=15)
            status = (await http.get(base, headers=auth("ana"))).json()
            assert status["state"] == "no answer"
        assert r.app.router.interaction(ix).agent == "ana"
        assert not r.of(ev.Transferred)
        notes = [e.data["state"] for e in r.of(ev.Note) if e.kind == "asterisk.consult"]
        assert notes == ["ringing", "declined", "ringing", "no answer"]


async def test_a_consultation_cancelled_returns_the_caller(asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana", "bob")) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("bob", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        leg = (await r.voice.consults.consult(ix, agent="bob"))["channel"]
        await r.bridged(agent_leg(offer), leg)
        await r.voice.consults.cancel(ix)
        await r.bridged(caller, agent_leg(offer))
        await r.until(lambda: _gone(r, leg))
        assert r.app.router.interaction(ix).agent == "ana"


async def test_a_three_way_conference_with_an_outside_number(asterisk) -> None:
    config = with_users(document(asterisk))
    async with rig(asterisk, config, ready=("ana",), web=True) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("customer", "answer", ring_ms=100, talk_ms=4000)  # the outside party
        r.phone("bob", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        path = f"/voice/calls/{ix}/conference"
        async with httpx.AsyncClient(base_url=r.url) as http:
            added = await http.post(path, json={"number": "5559999"}, headers=auth("ana"))
            assert added.status_code == 200, added.text
            guest = added.json()["channel"]
            await r.bridged(caller, agent_leg(offer), guest)  # three in one bridge
            await r.bridged(caller, agent_leg(offer))  # the outside party hung up
            assert not r.of(ev.Completed)
            added = await http.post(path, json={"agent": "bob"}, headers=auth("ana"))
            assert added.status_code == 200, added.text
            bob = added.json()["channel"]
            await r.bridged(caller, agent_leg(offer), bob)
            drop = f"{path}/drop"
            refused = await http.post(drop, json={"channel": bob}, headers=auth("bob"))
            assert refused.status_code == 403
            dropped = await http.post(drop, json={"channel": bob}, headers=auth("ana"))
            assert dropped.status_code == 204, dropped.text
            await r.bridged(caller, agent_leg(offer))  # ana let bob go
            added = await http.post(path, json={"agent": "bob"}, headers=auth("ana"))
            await r.bridged(caller, agent_leg(offer), added.json()["channel"])
        await r.voice.ari.delete(f"channels/{agent_leg(offer)}")  # ana hangs up: rule "end"
        done = await r.wait_for(ev.Completed, interaction_id=ix)
        assert done.agent_id == "ana"
        await r.no_bridges()
        notes = [e.data["state"] for e in r.of(ev.Note) if e.kind == "asterisk.conference"]
        assert notes[:3] == ["ringing", "joined", "left"]


async def test_with_the_stay_rule_the_customer_and_guest_talk_on(asterisk) -> None:
    config = document(asterisk, conference_agent_hangup="stay")
    async with rig(asterisk, config, ready=("ana",)) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("bob", "answer", ring_ms=100)
        await r.call(hold_ms=12_000)
        ix, caller, offer = await talking(r)
        guest = (await r.voice.consults.conference(ix, agent="bob"))["channel"]
        await r.bridged(caller, agent_leg(offer), guest)
        await r.voice.ari.delete(f"channels/{agent_leg(offer)}")
        done = await r.wait_for(ev.Completed, interaction_id=ix)
        assert done.agent_id == "ana"  # ana wraps up at once
        await r.bridged(caller, guest)  # the customer and bob talk on
        await r.until(lambda: _gone(r, guest), timeout=20)  # the caller hung up: all end
        await r.no_bridges()


async def test_waiting_callers_hear_the_expected_wait(asterisk, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="omniroute.asterisk")
    async with rig(asterisk, document(asterisk, announce_every=1), ready=("ana",)) as r:
        played: list[list[str]] = []
        play = r.voice._play

        async def spy(call, media: list[str], kind: str) -> None:
            played.append(media)
            await play(call, media, kind)

        r.voice._play = spy  # type: ignore[method-assign]
        r.phone("ana", "answer", ring_ms=100)
        await r.call(caller="5550001", hold_ms=1500)  # answered and done: a handle time
        await r.wait_for(ev.WrapUpEnded)
        await r.call(caller="5550002", hold_ms=60_000)  # ana takes it
        await r.until(lambda: len(r.of(ev.Assigned)) == 2)  # the first one's is kept
        await r.call(caller="5550003", hold_ms=60_000)  # waits: hears place and wait

        def played_to_the_end() -> bool:  # Asterisk has the files (the rig hangs up)
            return any(
                "PlaybackFinished" in m and "announce-" in m and "state='done'" in m
                for m in caplog.messages
            )

        await r.until(played_to_the_end, timeout=25)
    wait = ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]
    assert played and played[0] == ["sound:queue-youarenext", *wait]


async def _gone(r, channel_id: str) -> bool:
    return channel_id not in {c["id"] for c in await r.ari("channels")}

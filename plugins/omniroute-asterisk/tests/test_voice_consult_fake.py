"""The fast tier for consultative transfer, three-way conference and the expected wait
in the waiting announcements: the plugin against the fake ARI, the calls' own legs
replayed from a recorded call, the new legs' events made in the same shape."""

from __future__ import annotations

from typing import Any

import pytest
from fake_ari import FakeAri, recorded
from omniroute_asterisk import channel as channel_module
from omniroute_asterisk.calls import CallError, CallState
from omniroute_asterisk.channel import VoiceChannel
from test_voice_fake import config, of, replay, running, until
from voicekit import build

from omniroute import events as ev
from omniroute.actions import ActionError
from omniroute.app import App, RouterError
from omniroute.store import MemoryStore

pytestmark = pytest.mark.anyio


class Call:
    """A recorded call brought to the point where ana talks with the caller."""

    def __init__(self, app: App, fake: FakeAri) -> None:
        self.events = recorded("answered")
        self.caller = self.events[0]["channel"]["id"]
        self.ix = f"voice-{self.caller}"
        self.agent = f"omni-offer-o1-{self.ix}"
        self.bridge = f"omni-{self.ix}"
        self.app, self.fake = app, fake
        voice = app.channels["asterisk"]
        assert isinstance(voice, VoiceChannel)
        self.voice = voice

    async def talking(self) -> Call:
        types = [e["type"] for e in self.events]
        await replay(self.fake, self.events[: types.index("ChannelHangupRequest")])
        await until(lambda: self.fake.seen("POST", f"bridges/{self.bridge}/addChannel"))
        return self

    def event(self, kind: str, channel_id: str, **extra: Any) -> dict[str, Any]:
        """An event about a leg, in the shape Asterisk gives an agent's leg."""
        base = next(e for e in self.events if e["type"] == "StasisStart" and e["args"])
        event = {"type": kind, "timestamp": base["timestamp"], **extra}
        event["channel"] = {**base["channel"], "id": channel_id}
        return event

    async def answers(self, channel_id: str) -> None:
        await until(lambda: originated(self.fake, channel_id))
        await self.fake.push(self.event("StasisStart", channel_id, args=["consult", self.ix]))

    async def hangs_up(self, channel_id: str, cause: int = 16) -> None:
        await until(lambda: originated(self.fake, channel_id))
        await self.fake.push(self.event("ChannelDestroyed", channel_id, cause=cause))

    def added(self, channel_id: str) -> bool:
        adds = self.fake.seen("POST", f"bridges/{self.bridge}/addChannel")
        return any(channel_id in r.params["channel"].split(",") for r in adds)

    def notes(self, seen: list[ev.Event], kind: str = "asterisk.consult") -> list[str]:
        return [e.data["state"] for e in of(seen, ev.Note) if e.kind == kind]


def deleted(fake: FakeAri, path: str) -> bool:
    return any(r.path == path for r in fake.seen("DELETE", path))


def originated(fake: FakeAri, channel_id: str) -> Any:
    return next(
        (r for r in fake.seen("POST", "channels") if r.params.get("channelId") == channel_id), None
    )


async def test_a_consultation_completed_hands_the_call_to_the_colleague() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("bob", "ready")
        call = await Call(app, fake).talking()
        started = await call.voice.consults.consult(call.ix, agent="bob")
        leg = started["channel"]
        assert started["agent"] == "bob"
        # The caller is held (out of the bridge, music), bob's phone rings.
        (removed,) = fake.seen("POST", f"bridges/{call.bridge}/removeChannel")
        assert removed.params["channel"] == call.caller
        assert fake.seen("POST", f"channels/{call.caller}/moh")
        assert originated(fake, leg).params["endpoint"] == "PJSIP/bob"
        with pytest.raises(CallError, match="has not answered yet"):
            await call.voice.consults.complete(call.ix)
        await call.answers(leg)
        await until(lambda: call.added(leg))  # ana and bob talk; the caller hears music
        assert (
            not call.added(call.caller)
            or len(fake.seen("POST", f"bridges/{call.bridge}/addChannel")) == 2
        )
        assert app.router.interaction(call.ix).agent == "ana"  # still ana's
        await call.voice.consults.complete(call.ix)
        transferred, assigned = of(seen, ev.Transferred)[0], of(seen, ev.Assigned)[-1]
        assert (transferred.from_agent, transferred.to_agent) == ("ana", "bob")
        assert (assigned.agent_id, assigned.offer_id) == ("bob", None)
        assert app.router.interaction(call.ix).agent == "bob"
        assert app.router.agent("ana").work == set()
        assert deleted(fake, f"channels/{call.agent}")  # ana's phone hangs up
        assert fake.seen("DELETE", f"channels/{call.caller}/moh")
        await until(
            lambda: (
                call.added(call.caller)
                and len(fake.seen("POST", f"bridges/{call.bridge}/addChannel")) == 3
            )
        )
        live = call.voice.calls[call.ix]
        assert live.state is CallState.TALKING and live.agent is not None
        assert live.agent.who == "bob" and live.agent.channel_id == leg
        await until(lambda: call.notes(seen) == ["ringing", "talking", "completed"])
        assert not fake.seen("DELETE", f"bridges/{call.bridge}")  # not sent back in line
        assert not of(seen, ev.Offered)[1:]  # bob was never offered it: no re-routing
        # bob hangs up: the call completes with bob, who wraps up
        await call.hangs_up(leg)
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].agent_id == "bob"


async def in_effect(app: App, ix: str, caller: str | None = "ana") -> Any:
    """What the inbox asks on opening the call (the status path of Consult and
    Conference), as the route asks it of the channel for agent `caller`."""
    payload = {"interaction_id": ix} if caller is None else {"interaction_id": ix, "caller": caller}
    return await app.channel_call("asterisk", "in_effect", payload)


async def test_the_pages_learn_what_consult_and_conference_started_that_goes_on() -> None:
    """A reload mid-consultation: the status says the consultation (so Complete and
    Cancel show again) and the conference party Drop lets go; nothing once over."""
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("bob", "ready")
        call = await Call(app, fake).talking()
        assert await in_effect(app, call.ix) == {}
        leg = (await call.voice.consults.consult(call.ix, agent="bob"))["channel"]
        consult = {"agent": "bob", "channel": leg, "state": "ringing"}
        assert await in_effect(app, call.ix) == {"consult": consult}
        await call.answers(leg)
        await until(lambda: call.added(leg))
        assert await in_effect(app, call.ix) == {"consult": {**consult, "state": "talking"}}
        with pytest.raises(ActionError, match="is not your call") as refused:
            await in_effect(app, call.ix, caller="bob")  # an agent asks of their own calls
        assert refused.value.status == 403
        assert await in_effect(app, call.ix, caller=None) == {
            "consult": {**consult, "state": "talking"}
        }
        await call.voice.consults.cancel(call.ix)
        assert await in_effect(app, call.ix) == {}  # Complete and Cancel hide

        guest = (await call.voice.consults.conference(call.ix, number="+15559999"))["channel"]
        party = {"party": "+15559999", "channel": guest}
        assert await in_effect(app, call.ix) == {"conference": {**party, "state": "ringing"}}
        await call.answers(guest)
        await until(lambda: call.added(guest))
        joined = {"conference": {**party, "state": "joined"}}
        assert await in_effect(app, call.ix) == joined
        bob = (await call.voice.consults.conference(call.ix, agent="bob"))["channel"]
        rung = {"party": "bob", "channel": bob, "state": "ringing"}
        assert await in_effect(app, call.ix) == {"conference": rung}  # the last one added
        await call.hangs_up(bob, cause=19)
        await until(lambda: "no answer" in call.notes(seen, "asterisk.conference"))
        assert await in_effect(app, call.ix) == joined  # Drop lets the number go
        await call.voice.consults.drop(call.ix, guest)
        assert await in_effect(app, call.ix) == {}
        assert await in_effect(app, "voice-none") == {}  # no live call: nothing goes on


async def test_a_colleague_who_declines_sends_the_agent_back_to_the_caller() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("bob", "ready")
        call = await Call(app, fake).talking()
        leg = (await call.voice.consults.consult(call.ix, agent="bob"))["channel"]
        await call.hangs_up(leg, cause=21)  # rejected
        await until(
            lambda: call.added(call.caller) and call.voice.calls[call.ix].state is CallState.TALKING
        )
        assert call.voice.consults.status[call.ix]["state"] == "declined"
        assert await in_effect(app, call.ix) == {}  # Complete would be refused: hidden
        await until(lambda: call.notes(seen) == ["ringing", "declined"])
        assert app.router.interaction(call.ix).agent == "ana"
        assert not of(seen, ev.Transferred)
        with pytest.raises(CallError, match="no consultation"):
            await call.voice.consults.complete(call.ix)


async def test_a_queue_consultation_rings_who_the_router_picks_and_can_be_cancelled() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        call = await Call(app, fake).talking()
        with pytest.raises(CallError, match="no agent of queue"):
            await call.voice.consults.consult(call.ix, queue="support")  # only ana is ready
        assert call.voice.calls[call.ix].state is CallState.TALKING
        await app.set_presence("cy", "ready")
        started = await call.voice.consults.consult(call.ix, queue="support")
        assert started["agent"] == "cy"
        await call.answers(started["channel"])
        await until(lambda: call.added(started["channel"]))
        await call.voice.consults.cancel(call.ix)
        assert deleted(fake, f"channels/{started['channel']}")
        live = call.voice.calls[call.ix]
        assert live.state is CallState.TALKING and live.consult is None
        assert call.added(call.caller)
        await call.hangs_up(started["channel"])  # its end changes nothing now
        await until(lambda: call.notes(seen) == ["ringing", "talking", "cancelled"])
        assert app.router.interaction(call.ix).agent == "ana"


async def test_the_colleague_s_capacity_is_respected() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, _):
        call = await Call(app, fake).talking()
        with pytest.raises(CallError, match='agent "bob" cannot take a call now'):
            await call.voice.consults.consult(call.ix, agent="bob")  # offline
        await app.set_presence("bob", "ready")
        leg = (await call.voice.consults.consult(call.ix, agent="bob"))["channel"]
        await call.answers(leg)
        await until(lambda: call.added(leg))
        await app.set_presence("bob", "not_ready")  # meanwhile bob went not ready
        with pytest.raises(RouterError, match='"bob" cannot take a voice interaction now'):
            await call.voice.consults.complete(call.ix)
        assert call.voice.calls[call.ix].state is CallState.CONSULTING  # still talking
        assert app.router.interaction(call.ix).agent == "ana"
        await app.set_presence("bob", "ready")
        await call.voice.consults.complete(call.ix)
        assert app.router.interaction(call.ix).agent == "bob"


async def test_the_agent_hanging_up_in_a_consultation_completes_the_transfer() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("bob", "ready")
        call = await Call(app, fake).talking()
        leg = (await call.voice.consults.consult(call.ix, agent="bob"))["channel"]
        await call.answers(leg)
        await until(lambda: call.added(leg))
        await fake.push(call.event("ChannelDestroyed", call.agent, cause=16))
        await until(lambda: app.router.interaction(call.ix).agent == "bob")
        await until(
            lambda: call.added(call.caller) and call.voice.calls[call.ix].state is CallState.TALKING
        )
        assert not of(seen, ev.Completed)


async def test_a_conference_adds_a_number_and_ends_when_the_agent_hangs_up() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        call = await Call(app, fake).talking()
        with pytest.raises(CallError, match="digits only"):
            await call.voice.consults.conference(call.ix, number="x; DROP")
        added = await call.voice.consults.conference(call.ix, number="+15559999")
        guest = added["channel"]
        assert originated(fake, guest).params["endpoint"] == "PJSIP/+15559999@trunk"
        await call.answers(guest)
        await until(lambda: call.added(guest))  # three in one bridge
        bob = await call.voice.consults.conference(call.ix, agent="bob")
        await call.hangs_up(bob["channel"], cause=19)  # no answer: nothing else changes
        await until(lambda: "no answer" in call.notes(seen, "asterisk.conference"))
        assert call.voice.calls[call.ix].guests[0].channel_id == guest
        await fake.push(call.event("ChannelDestroyed", call.agent, cause=16))  # ana leaves
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].agent_id == "ana"
        await until(lambda: deleted(fake, f"channels/{guest}"))  # rule "end"
        assert deleted(fake, f"channels/{call.caller}")


async def test_with_the_stay_rule_the_customer_and_third_party_talk_on() -> None:
    async with (
        FakeAri().serving() as fake,
        running(fake, conference_agent_hangup="stay") as (
            app,
            seen,
        ),
    ):
        call = await Call(app, fake).talking()
        guest = (await call.voice.consults.conference(call.ix, number="5559999"))["channel"]
        await call.answers(guest)
        await until(lambda: call.added(guest))
        await fake.push(call.event("ChannelDestroyed", call.agent, cause=16))
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].agent_id == "ana"  # ana wraps up at once
        assert not deleted(fake, f"channels/{guest}")
        assert not deleted(fake, f"channels/{call.caller}")
        await fake.push(call.event("StasisEnd", call.caller))  # the customer leaves
        await until(lambda: deleted(fake, f"channels/{guest}"))
        await until(lambda: fake.seen("DELETE", f"bridges/{call.bridge}"))


async def test_a_guest_leaving_leaves_the_call_going() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        call = await Call(app, fake).talking()
        guest = (await call.voice.consults.conference(call.ix, agent="bob"))["channel"]
        assert originated(fake, guest).params["endpoint"] == "PJSIP/bob"
        await call.answers(guest)
        await until(lambda: call.added(guest))
        await call.hangs_up(guest)
        await until(lambda: "left" in call.notes(seen, "asterisk.conference"))
        assert call.voice.calls[call.ix].state is CallState.TALKING
        assert not of(seen, ev.Completed)
        with pytest.raises(CallError, match="exactly one"):
            await call.voice.consults.conference(call.ix)


async def test_waiting_callers_hear_their_expected_wait() -> None:
    async with FakeAri().serving() as fake, running(fake, announce_every=0.2) as (app, seen):
        events = recorded("answered")
        await replay(fake, events)  # one call answered and completed: a handle time
        await until(lambda: of(seen, ev.WrapUpEnded))
        await app.set_presence("ana", "not_ready")

        def caller(channel_id: str) -> dict[str, Any]:
            return {**events[0], "channel": {**events[0]["channel"], "id": channel_id}}

        def plays(channel_id: str) -> list[Any]:
            return fake.seen("POST", f"channels/{channel_id}/play")

        await fake.push(caller("2.0"))
        await until(lambda: plays("2.0"), timeout=3)
        # Nobody is ready to serve the queue: no figure is promised, the place only.
        assert plays("2.0")[0].params["media"] == "sound:queue-youarenext"
        await app.set_presence("bob", "ready")  # bob's phone rings for 2.0
        await until(lambda: of(seen, ev.Offered)[1:])
        await fake.push(caller("3.0"))  # waits for bob, the one agent serving
        await until(lambda: plays("3.0"), timeout=3)
        media = plays("3.0")[0].params["media"].split(",")
        assert media == [
            "sound:queue-youarenext",
            "sound:queue-holdtime",  # the replayed call took well under a minute
            "sound:queue-less-than",
            "number:1",
            "sound:queue-minute",
        ]


async def test_the_expected_wait_is_said_in_minutes_rounded_up(monkeypatch) -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, _):
        voice = Call(app, fake).voice
        call = channel_module.Call("voice-x", None, "", "support")
        monkeypatch.setattr(channel_module, "estimate", lambda router, ix: 121.0)
        assert voice._expected_wait(call) == [
            "sound:queue-holdtime",
            "number:3",
            "sound:queue-minutes",
        ]
        monkeypatch.setattr(channel_module, "estimate", lambda router, ix: None)
        assert voice._expected_wait(call) == []


async def test_after_a_restart_a_handed_over_call_stays_with_the_colleague() -> None:
    store = MemoryStore(encode=True)
    async with FakeAri().serving() as fake:
        first = build(config(fake), store)
        async with first.running():
            await until(lambda: fake.connections == 1)
            await first.set_presence("ana", "ready")
            await first.set_presence("bob", "ready")
            call = await Call(first, fake).talking()
            leg = (await call.voice.consults.consult(call.ix, agent="bob"))["channel"]
            await call.answers(leg)
            await until(lambda: call.added(leg))
            await call.voice.consults.complete(call.ix)
        caller = call.events[0]["channel"]
        bobs = {**call.event("StasisStart", leg)["channel"], "name": "PJSIP/bob-00000009"}
        fake.channels = [caller, bobs]
        fake.respond("GET", f"bridges/{call.bridge}", 200, {"channels": [call.caller, leg]})
        second = build(config(fake), store)
        async with second.running():
            await fake.wait_connections(2)
            voice = second.channels["asterisk"]
            assert isinstance(voice, VoiceChannel)
            await until(lambda: voice.ari.connected.is_set())
            adopted = voice.calls[call.ix]
            assert adopted.agent is not None and adopted.agent.channel_id == leg
            assert adopted.agent.who == "bob" and adopted.state is CallState.TALKING
            assert not deleted(fake, f"channels/{leg}")


async def test_after_a_restart_a_held_caller_can_be_taken_back() -> None:
    store = MemoryStore(encode=True)
    async with FakeAri().serving() as fake:
        first = build(config(fake), store)
        async with first.running():
            await until(lambda: fake.connections == 1)
            await first.set_presence("ana", "ready")
            call = await Call(first, fake).talking()
            await call.voice.hold(call.ix)
        fake.channels = [
            call.events[0]["channel"],
            call.event("StasisStart", call.agent)["channel"],
        ]
        fake.respond("GET", f"bridges/{call.bridge}", 200, {"channels": [call.agent]})
        second = build(config(fake), store)
        async with second.running():
            await fake.wait_connections(2)
            voice = second.channels["asterisk"]
            assert isinstance(voice, VoiceChannel)
            await until(lambda: voice.ari.connected.is_set())
            assert voice.calls[call.ix].state is CallState.HELD
            before = len(fake.seen("POST", f"bridges/{call.bridge}/addChannel"))
            await voice.unhold(call.ix)
            assert len(fake.seen("POST", f"bridges/{call.bridge}/addChannel")) == before + 1

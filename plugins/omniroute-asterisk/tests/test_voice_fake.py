"""The fast tier: the plugin against an in-process fake ARI replaying event sequences
recorded from the real Asterisk (no Asterisk, no SIP), plus config and client errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import anyio
import msgspec
import pytest
from fake_ari import RECORDED, FakeAri, recorded
from omniroute_asterisk.ari import AriClient, AriError, AriUnavailable, events_url
from omniroute_asterisk.ari_models import decode_event
from omniroute_asterisk.channel import VoiceChannel
from omniroute_asterisk.settings import AsteriskSettings
from voicekit import build, document

from omniroute import events as ev
from omniroute.app import App
from omniroute.config import ConfigError
from omniroute.store import MemoryStore

pytestmark = pytest.mark.anyio


def config(fake: FakeAri, **extra: Any) -> dict[str, Any]:
    server = SimpleNamespace(url=fake.url, user="omniroute", password="s3cret")
    return document(server, **extra)


@asynccontextmanager
async def running(fake: FakeAri, **extra: Any) -> AsyncIterator[tuple[App, list[ev.Event]]]:
    app = build(config(fake, **extra))
    seen: list[ev.Event] = []
    async with app.running(), anyio.create_task_group() as tg:
        stream = app.subscribe()

        async def collect() -> None:
            with stream:
                async for event in stream:
                    seen.append(event)

        tg.start_soon(collect)
        voice = app.channels["asterisk"]
        assert isinstance(voice, VoiceChannel)
        with anyio.fail_after(5):
            await voice.ari.connected.wait()
        await app.set_presence("ana", "ready")
        yield app, seen
        tg.cancel_scope.cancel()


async def replay(fake: FakeAri, events: list[dict[str, Any]]) -> None:
    """Push recorded events in order; an event about a leg omniroute creates waits
    until omniroute asked Asterisk for that leg, as it would be in real life."""
    for event in events:
        channel = event.get("channel", {}).get("id", "")
        if channel.startswith("omni-"):
            with anyio.fail_after(5):
                while not any(r.params.get("channelId") == channel for r in fake.requests):
                    await anyio.sleep(0.01)
        await fake.push(event)


async def until(check: Any, timeout: float = 5.0) -> Any:
    with anyio.fail_after(timeout):
        while not (result := check()):
            await anyio.sleep(0.01)
        return result


def of(seen: list[ev.Event], kind: type) -> list[Any]:
    return [e for e in seen if isinstance(e, kind)]


# ------------------------------------------------------------------ recordings


def test_every_recorded_event_decodes() -> None:
    files = sorted(RECORDED.glob("*.jsonl"))
    assert files
    for file in files:
        for line in file.read_text().splitlines():
            event = decode_event(line)
            assert event is not None, line[:80]


async def test_a_replayed_answered_call_is_queued_rung_bridged_and_completed() -> None:
    events = recorded("answered")
    caller = events[0]["channel"]["id"]
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await replay(fake, events)
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].agent_id == "ana"
        (queued,) = of(seen, ev.InteractionQueued)
        assert queued.interaction.id == f"voice-{caller}"
        assert queued.interaction.customer.id == "voice:5550001"
        assert fake.requests[0].path == "channels"  # re-adoption: what is in Stasis?
        paths = [r.path for r in fake.requests]
        assert paths.index(f"channels/{caller}/answer") < paths.index(f"channels/{caller}/moh")
        originate = next(r for r in fake.requests if r.path == "channels" and r.method == "POST")
        assert originate.params["endpoint"] == "PJSIP/ana"
        assert originate.params["appArgs"] == "agent,o1"
        assert originate.params["app"] == "omniroute"
        assert originate.params["channelId"] == f"omni-offer-o1-voice-{caller}"
        (add,) = fake.seen("POST", f"bridges/omni-voice-{caller}/addChannel")
        assert sorted(add.params["channel"].split(",")) == sorted(
            [caller, originate.params["channelId"]]
        )
        voice = app.channels["asterisk"]
        offered_at, rang_at = voice.ring_times["o1"]  # type: ignore[attr-defined]
        assert rang_at is not None and rang_at >= offered_at
        await until(lambda: fake.seen("DELETE", f"channels/{originate.params['channelId']}"))


async def test_an_offer_accepted_in_the_inbox_connects_when_the_phone_answers() -> None:
    events = recorded("answered")
    caller = events[0]["channel"]["id"]
    answered = next(i for i, e in enumerate(events) if e["type"] == "StasisStart" and e["args"])
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await replay(fake, events[:answered])  # the agent's phone is ringing
        offer = await until(lambda: of(seen, ev.Offered))
        await app.accept(offer[0].offer_id, "ana")  # from the inbox
        await replay(fake, events[answered : answered + 1])  # then picks up the phone
        await until(lambda: fake.seen("POST", f"bridges/omni-voice-{caller}/addChannel"))
        assert not fake.seen("DELETE", f"channels/omni-offer-o1-voice-{caller}")


async def test_a_replayed_rejection_declines_the_offer() -> None:
    async with FakeAri().serving() as fake, running(fake) as (_, seen):
        await replay(fake, recorded("rejected"))
        declined = await until(lambda: of(seen, ev.OfferDeclined))
        assert declined[0].agent_id == "ana" and not of(seen, ev.OfferMissed)
        await until(lambda: of(seen, ev.Abandoned))


async def test_a_caller_gone_before_being_queued_is_an_abandon_not_a_ghost() -> None:
    events = recorded("rejected")
    start, end = events[0], next(e for e in events if e["type"] == "StasisEnd")
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("ana", "not_ready")
        fake.respond("POST", f"channels/{start['channel']['id']}/answer", 404)
        await fake.push(start)
        await fake.push(end)
        await until(lambda: of(seen, ev.Abandoned))
        assert app.router.waiting() == []


async def test_it_reconnects_and_ends_the_calls_asterisk_lost() -> None:
    start = recorded("rejected")[0]
    caller = start["channel"]["id"]
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("ana", "not_ready")
        await fake.push(start)
        await until(lambda: fake.seen("POST", f"channels/{caller}/moh"))
        fake.channels = []  # Asterisk restarted meanwhile: the call is gone
        await fake.drop(code=1011)
        await fake.wait_connections(2)
        abandoned = await until(lambda: of(seen, ev.Abandoned))
        assert abandoned[0].interaction_id == f"voice-{caller}"
        token = base64.b64encode(b"omniroute:s3cret").decode()
        assert fake.headers[-1]["authorization"] == f"Basic {token}"


async def test_a_call_cut_off_by_a_lost_connection_is_answered_after_it() -> None:
    start = recorded("rejected")[0]
    caller = start["channel"]["id"]
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        await app.set_presence("ana", "not_ready")
        fake.drop_on("POST", f"channels/{caller}/answer")
        fake.channels = [start["channel"]]  # still ringing ("Ring") in Stasis
        await fake.push(start)
        await fake.wait_connections(2)
        await until(lambda: len(fake.seen("POST", f"channels/{caller}/answer")) == 2)
        await until(lambda: fake.seen("POST", f"channels/{caller}/moh"))
        assert not of(seen, ev.Abandoned)
        assert [ix.id for ix in app.router.waiting()] == [f"voice-{caller}"]


async def test_after_a_restart_a_ringing_phone_keeps_ringing_and_answers() -> None:
    events = recorded("answered")
    caller = events[0]["channel"]["id"]
    agent_leg = f"omni-offer-o1-voice-{caller}"
    answered = next(i for i, e in enumerate(events) if e["type"] == "StasisStart" and e["args"])
    ringing = next(e for e in events if e["channel"]["id"] == agent_leg)["channel"]
    store = MemoryStore(encode=True)
    async with FakeAri().serving() as fake:
        first = build(config(fake), store)
        async with first.running():
            await until(lambda: fake.connections == 1)
            await first.set_presence("ana", "ready")
            await replay(fake, events[:answered])  # ana's phone rings
            await until(lambda: first.router.agent("ana").offers)
        fake.channels = [events[0]["channel"], ringing]
        second = build(config(fake), store)
        async with second.running():
            await fake.wait_connections(2)
            await until(lambda: second.channels["asterisk"].ari.connected.is_set())
            assert not fake.seen("DELETE", f"channels/{agent_leg}")
            await fake.push(events[answered])  # ana picks up
            await until(lambda: fake.seen("POST", f"bridges/omni-voice-{caller}/addChannel"))
            assert second.router.interaction(f"voice-{caller}").agent == "ana"


async def test_after_a_restart_calls_still_in_stasis_are_adopted() -> None:
    start = recorded("rejected")[0]
    caller = start["channel"]["id"]
    store = MemoryStore(encode=True)
    async with FakeAri().serving() as fake:
        first = build(config(fake), store)
        async with first.running():
            await until(lambda: fake.connections == 1)
            await fake.push(start)
            await until(lambda: first.router.waiting())
        fake.channels = [start["channel"]]
        second = build(config(fake), store)
        async with second.running():
            await fake.wait_connections(2)
            await until(lambda: len(fake.seen("POST", f"channels/{caller}/moh")) == 2)
            assert [ix.id for ix in second.router.waiting()] == [f"voice-{caller}"]


async def test_supervisors_snoop_with_the_right_directions() -> None:
    events = recorded("answered")
    caller = events[0]["channel"]["id"]
    agent = f"omni-offer-o1-voice-{caller}"
    talking = events[: [e["type"] for e in events].index("ChannelHangupRequest")]
    async with FakeAri().serving() as fake, running(fake) as (app, _):
        await replay(fake, talking)
        await until(lambda: fake.seen("POST", f"bridges/omni-voice-{caller}/addChannel"))
        voice = app.channels["asterisk"]
        assert isinstance(voice, VoiceChannel)
        ix = f"voice-{caller}"
        listen = await voice.monitor(ix, "listen", "sam")
        whisper = await voice.monitor(ix, "whisper", "sam")
        barge = await voice.monitor(ix, "barge", "sam")
        snoops = fake.seen("POST", f"channels/{agent}/snoop")
        assert [(s.params["spy"], s.params["whisper"]) for s in snoops] == [
            ("both", "none"),
            ("both", "out"),  # towards the agent only: the customer does not hear
        ]
        assert [s.params["snoopId"] for s in snoops] == [listen["snoop"], whisper["snoop"]]
        assert barge["snoop"] == "" and barge["bridge"] == f"omni-voice-{caller}"
        rung = [r.params["endpoint"] for r in fake.seen("POST", "channels") if r.path == "channels"]
        assert rung.count("PJSIP/sam") == 3
        with pytest.raises(Exception, match="unknown mode"):
            await voice.monitor(ix, "shout", "sam")
        with pytest.raises(Exception, match="no phone for supervisor"):
            await voice.monitor(ix, "listen", "nobody")


# ------------------------------------------------------------------ config and client


def test_config_errors_name_the_path() -> None:
    server = SimpleNamespace(url="http://127.0.0.1:1/ari", user="u", password="p")
    bad = document(server, colour="blue")
    with pytest.raises(ConfigError, match=r'plugins\.asterisk: unknown field "colour"'):
        build(bad)
    bad = document(server, numbers={"100": {"queue": "support", "menu": {"12": {"queue": "x"}}}})
    with pytest.raises(ConfigError, match=r"plugins\.asterisk: .*numbers"):
        build(bad)
    bad = document(server, record_queues=["sales"], numbers={"200": {"queue": "nope"}})
    bad["plugins"]["asterisk"]["agents"]["zed"] = "PJSIP/zed"
    with pytest.raises(ConfigError) as error:
        async_start(bad)
    assert str(error.value).splitlines()[-3:] == [
        'plugins.asterisk.agents."zed": unknown agent',
        'plugins.asterisk.numbers."200".queue: unknown queue "nope"',
        'plugins.asterisk.record_queues: unknown queue "sales"',
    ]


def async_start(config: dict[str, Any]) -> None:
    """Build the app and start it, which builds the channel (and checks its config)."""

    async def start() -> None:
        async with build(config).running():
            pass

    anyio.run(start)


async def test_a_missing_password_variable_is_named() -> None:
    server = SimpleNamespace(url="http://127.0.0.1:1/ari", user="u", password="p")
    app = build(document(server, password_env="OMNIROUTE_NO_SUCH_VARIABLE"))
    with pytest.raises(ValueError, match="OMNIROUTE_NO_SUCH_VARIABLE is not set"):
        async with app.running():
            pass


async def test_the_client_reports_refusals_and_absence() -> None:
    client = AriClient("http://127.0.0.1:1/ari", "u", "p", "omniroute")
    with pytest.raises(AriUnavailable):
        await client.get("channels")
    assert events_url("https://pbx:8089/ari/", "a b") == "wss://pbx:8089/ari/events?app=a+b"
    async with FakeAri().serving() as fake, anyio.create_task_group() as tg:
        fake.respond("DELETE", "channels/", 404, {"message": "Channel not found"})
        client = AriClient(fake.url, "u", "p", "omniroute")

        async def ignore(event: Any) -> None:
            pass

        tg.start_soon(client.run, ignore)
        with anyio.fail_after(5):
            await client.connected.wait()
        with pytest.raises(AriError, match="404 Error: Channel not found") as refused:
            await client.delete("channels/x")
        assert refused.value.status == 404
        assert await client.get("channels") == []
        tg.cancel_scope.cancel()


def test_the_password_comes_from_the_environment_only() -> None:
    with pytest.raises(msgspec.ValidationError, match="password_env"):
        msgspec.convert({"url": "x", "user": "u"}, type=AsteriskSettings)
    with pytest.raises(msgspec.ValidationError, match="password"):
        msgspec.convert(
            {"url": "x", "user": "u", "password_env": "X", "password": "p"},
            type=AsteriskSettings,
        )

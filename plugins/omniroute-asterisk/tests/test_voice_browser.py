"""Call controls from the pages, in a real browser: the agent holds, resumes and consults
on a live call from the inbox, the supervisor listens from the wallboard, and the
requests reach the channel (the fake ARI carries the call, replayed from the real
Asterisk). Playwright drives Debian's Chromium (`scripts/install-browser`).

Set OMNIROUTE_SCREENSHOTS=DIR to keep screenshots of both pages with their controls
(docs/screenshots/inbox-call.png and wallboard-monitor.png come from here)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fake_ari import FakeAri
from omniroute_asterisk.calls import CallState
from omniroute_asterisk.channel import VoiceChannel
from test_voice_consult_fake import Call, originated
from test_voice_fake import until
from test_voice_in_call import agent_leg, talking
from voicekit import build, document, rig

from omniroute.testing import chromium, log_in, serving
from omniroute.web.passwords import hash_password

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
PASSWORD = "correct horse"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config(fake: FakeAri) -> dict[str, Any]:
    return with_passwords(
        document(SimpleNamespace(url=fake.url, user="omniroute", password="s3cret"))
    )


def with_passwords(doc: dict[str, Any]) -> dict[str, Any]:
    """ana and bob (agents) and sam (a supervisor with a phone, PJSIP/sam) log in with a
    password; so does sue, a supervisor without a phone."""
    digest = hash_password(PASSWORD, n=2**10)
    users = [{"id": n, "password_hash": digest} for n in ("ana", "bob", "sam", "sue")]
    users[2]["role"] = users[3]["role"] = "supervisor"
    doc["server"] = {"secret": "a-test-secret-of-enough-length", "users": users}
    return doc


@asynccontextmanager
async def talking_call() -> AsyncIterator[tuple[FakeAri, Any, str, VoiceChannel, Call]]:
    """The scene of the tests below: the fake ARI, a browser, the app served at a URL,
    its voice channel, and a call where ana talks with the caller (bob is ready too)."""
    async with FakeAri().serving() as fake, chromium() as browser:
        app = build(config(fake))
        async with serving(app) as url:
            voice = app.channels["asterisk"]
            assert isinstance(voice, VoiceChannel)
            await until(lambda: voice.ari.connected.is_set())
            await app.set_presence("ana", "ready")
            await app.set_presence("bob", "ready")
            yield fake, browser, url, voice, await Call(app, fake).talking()


async def test_agents_and_supervisors_control_a_live_call_from_the_pages() -> None:
    expect = playwright_api.expect
    shots = os.environ.get("OMNIROUTE_SCREENSHOTS")

    async def login(user: str, landing: str) -> Any:
        return await log_in(browser, url, user, PASSWORD, landing)

    async with talking_call() as (fake, browser, url, voice, call):
        # The agent opens the call in the inbox: the voice channel's buttons show.
        agent = await login("ana", "inbox")
        await agent.locator(f"#work .work[data-id='{call.ix}']").click()
        controls = agent.locator("#conversation .controls")
        await expect(controls.locator("button.control")).to_have_text(
            ["Hold", "Resume", "Consult", "Conference"]
        )

        # Hold: the caller leaves the bridge and hears music on hold.
        music = len(fake.seen("POST", f"channels/{call.caller}/moh"))
        await controls.locator("button[data-control=hold]").click()
        await expect(agent.locator("#error.ok")).to_have_text("On hold: the caller hears music")
        await until(lambda: len(fake.seen("POST", f"channels/{call.caller}/moh")) > music)
        (removed,) = fake.seen("POST", f"bridges/{call.bridge}/removeChannel")
        assert removed.params["channel"] == call.caller
        # Held twice: the channel's refusal (409), in plain words.
        await controls.locator("button[data-control=hold]").click()
        await expect(agent.locator("#error:not(.ok)")).to_have_text(
            f'Hold: Not possible right now: "{call.ix}" is not in a call that can be held'
        )
        await controls.locator("button[data-control=unhold]").click()
        await expect(agent.locator("#error.ok")).to_have_text("Back with the caller")
        await until(lambda: fake.seen("DELETE", f"channels/{call.caller}/moh"))

        # Consult bob: his phone rings, and the consultation's own buttons appear.
        await controls.locator("[data-field='consult.agent']").fill("bob")
        await controls.locator("button[data-control=consult]").click()
        leg = await until(lambda: voice.consults.status.get(call.ix, {}).get("channel"))
        assert originated(fake, leg).params["endpoint"] == "PJSIP/bob"
        await expect(controls.locator("button.control")).to_have_text(
            ["Hold", "Resume", "Consult", "Complete transfer", "Cancel consult", "Conference"]
        )
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            await agent.screenshot(path=f"{shots}/inbox-call.png")
        await controls.locator("button[data-control=consult_cancel]").click()
        await expect(agent.locator("#error.ok")).to_have_text("Back with the caller")
        await expect(controls.locator("button[data-control=consult_cancel]")).to_have_count(0)

        # The supervisor listens from the wallboard: their phone, a silent snoop.
        supervisor = await login("sam", "wallboard")
        row = supervisor.locator(f"#waiting .live-chat[data-id='{call.ix}']")
        await expect(row.locator("button.control")).to_have_text(["Listen", "Whisper", "Barge"])
        await row.locator("button[data-control=listen]").click()
        await expect(supervisor.locator("#error.ok")).to_have_text(
            "Your phone rings: you will hear the call"
        )
        (snoop,) = await until(lambda: fake.seen("POST", f"channels/{call.agent}/snoop"))
        assert (snoop.params["spy"], snoop.params["whisper"]) == ("both", "none")
        rung = [r.params.get("endpoint") for r in fake.seen("POST", "channels")]
        assert "PJSIP/sam" in rung
        await expect(supervisor.locator("#conversation")).to_be_hidden()  # not opened
        if shots:
            await supervisor.screenshot(path=f"{shots}/wallboard-monitor.png")

        # A supervisor without a phone is told why, in plain words.
        sue = await login("sue", "wallboard")
        await sue.locator(f".live-chat[data-id='{call.ix}'] [data-control=whisper]").click()
        await expect(sue.locator("#error")).to_have_text(
            'Whisper: Not possible right now: no phone for supervisor "sue" in '
            "plugins.asterisk.supervisors"
        )
        # An agent is never offered the supervisors' buttons, nor may use them.
        assert "listen" not in await agent.evaluate(
            "async () => (await (await fetch('/api/controls')).json()).map(c => c.name)"
        )


async def test_the_consultation_s_and_conference_s_buttons_come_back_after_a_reload() -> None:
    """The server, not the page, knows a consultation goes on: reloaded, or opened in
    another browser (a new session, nothing remembered), the inbox shows Complete and
    Cancel again and Complete works; the same for Drop, with the party's channel."""
    expect = playwright_api.expect
    async with talking_call() as (fake, browser, url, voice, call):

        async def opened(user: str) -> Any:  # a new browser: nothing in its storage
            page = await log_in(browser, url, user, PASSWORD, "inbox")
            await page.locator(f"#work .work[data-id='{call.ix}']").click()
            return page

        agent = await opened("ana")
        controls = agent.locator("#conversation .controls")
        talking = ["Hold", "Resume", "Consult", "Conference"]
        consulting = ["Hold", "Resume", "Consult", "Complete transfer", "Cancel consult",
                      "Conference"]  # fmt: skip

        async def consult() -> str:
            before = voice.consults.status.get(call.ix, {}).get("channel")
            await controls.locator("[data-field='consult.agent']").fill("bob")
            await controls.locator("button[data-control=consult]").click()
            await expect(agent.locator("#error.ok")).to_have_text(
                "The caller is on hold; ringing your colleague"
            )
            await expect(controls.locator("button.control")).to_have_text(consulting)
            new = voice.consults.status[call.ix]["channel"]  # noted before it answered
            assert new != before
            return new

        async def reload() -> None:
            await agent.reload()
            await agent.locator(f"#work .work[data-id='{call.ix}']").click()

        # bob declines while the page is open: reloaded, it no longer offers Complete.
        await call.hangs_up(await consult(), cause=21)
        await until(lambda: voice.calls[call.ix].state is CallState.TALKING)
        await reload()
        await expect(controls.locator("button.control")).to_have_text(talking)

        leg = await consult()
        await call.answers(leg)
        await until(lambda: call.added(leg))  # ana and bob talk
        await reload()
        await expect(controls.locator("button.control")).to_have_text(consulting)

        elsewhere = await opened("ana")  # another tab or device, same agent
        there = elsewhere.locator("#conversation .controls")
        await expect(there.locator("button.control")).to_have_text(consulting)
        await there.locator("button[data-control=consult_complete]").click()
        await expect(elsewhere.locator("#error.ok")).to_have_text("Transferred to your colleague")
        await until(lambda: call.app.router.interaction(call.ix).agent == "bob")
        await expect(elsewhere.locator(f"#work .work[data-id='{call.ix}']")).to_have_count(0)

        # bob, who has the call now, adds an outside number, then reloads.
        colleague = await opened("bob")
        mine = colleague.locator("#conversation .controls")
        await expect(mine.locator("button.control")).to_have_text(talking)
        await mine.locator("[data-field='conference.number']").fill("+15559999")
        await mine.locator("button[data-control=conference]").click()
        await expect(colleague.locator("#error.ok")).to_have_text("Calling the third party")
        guest = await until(lambda: [g.channel_id for g in voice.calls[call.ix].guests])
        await call.answers(guest[0])
        await until(lambda: call.added(guest[0]))
        again = await opened("bob")
        theirs = again.locator("#conversation .controls")
        await expect(theirs.locator("button[data-control=conference_drop]")).to_have_count(1)
        await theirs.locator("button[data-control=conference_drop]").click()
        await expect(again.locator("#error.ok")).to_have_text("The third party left the call")
        await until(lambda: fake.seen("DELETE", f"channels/{guest[0]}"))
        assert voice.calls[call.ix].guests == []
        await expect(theirs.locator("button[data-control=conference_drop]")).to_have_count(0)


async def test_the_buttons_act_on_a_real_asterisk(asterisk: Any) -> None:
    """The same clicks, with SIP phones on a real Asterisk: Asterisk's own bridges show
    the caller held and back, and the supervisor's snoop on the agent's channel."""
    expect = playwright_api.expect
    config = with_passwords(document(asterisk))
    async with rig(asterisk, config, ready=("ana",), web=True) as r, chromium() as browser:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("sam", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        agent = await log_in(browser, r.url, "ana", PASSWORD, "inbox")
        await agent.locator(f"#work .work[data-id='{ix}']").click()
        controls = agent.locator("#conversation .controls")
        await controls.locator("button[data-control=hold]").click()
        await expect(agent.locator("#error.ok")).to_have_text("On hold: the caller hears music")
        await r.bridged(agent_leg(offer))  # the agent alone; the caller hears music
        await controls.locator("button[data-control=unhold]").click()
        await r.bridged(caller, agent_leg(offer))

        supervisor = await log_in(browser, r.url, "sam", PASSWORD, "wallboard")
        row = supervisor.locator(f"#waiting .live-chat[data-id='{ix}']")
        await row.locator("button[data-control=listen]").click()
        await expect(supervisor.locator("#error.ok")).to_have_text(
            "Your phone rings: you will hear the call"
        )

        async def snooping() -> list[str]:
            return [
                c["id"]
                for c in await r.ari("channels")
                if c["name"].startswith(f"Snoop/{agent_leg(offer)}-")
            ]

        (snoop,) = await r.until(snooping)

        async def monitoring() -> list[str] | None:  # the snoop and sam's phone, together
            found = [b["channels"] for b in await r.bridges() if snoop in b["channels"]]
            return found[0] if found and len(found[0]) == 2 else None

        (sam,) = set(await r.until(monitoring)) - {snoop}
        assert (await r.ari(f"channels/{sam}"))["name"].startswith("PJSIP/sam-")

"""The whole thing in real browsers: a customer chats through the widget, an agent in a
second browser context accepts and replies from the inbox, and the supervisor's wallboard
shows the counts change. Playwright drives Debian's Chromium (`scripts/install-browser`).

Set OMNIROUTE_SCREENSHOTS=DIR to keep screenshots of the inbox and the wallboard (the
ones in docs/ come from here).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from webkit import PASSWORD, document

from omniroute import hookimpl
from omniroute.app import App
from omniroute.model import Customer, Identity, Interaction, Message
from omniroute.plugins import PluginHost
from omniroute.specs import RouteSpec
from omniroute.store import MemoryStore
from omniroute.testing import chromium, log_in, serving

playwright_api = pytest.importorskip("playwright.async_api")
plugin = pytest.importorskip("omniroute_webchat.plugin")

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
TIMEOUT = 10_000  # ms, for every wait


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config() -> dict[str, Any]:
    doc = document()
    doc["queues"][0]["canned"] = ["Happy to help!"]
    doc["queues"][0]["script"] = "Greet the customer by name."
    doc["plugins"] = {"webchat": {"topics": {"Support": "support", "Sales": "sales"}}}
    return doc


@pytest.fixture
async def url() -> AsyncIterator[str]:
    host = PluginHost(entry_points=False)
    host.register(plugin, name="webchat")
    app = App.from_dict(config(), store=MemoryStore(encode=True), host=host)
    async with serving(app) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as running:
        yield running


async def login(browser: Any, url: str, user: str, landing: str) -> Any:
    return await log_in(browser, url, user, PASSWORD, landing)


async def test_chat_from_widget_to_inbox_to_wallboard(browser: Any, url: str) -> None:
    expect = playwright_api.expect
    supervisor = await login(browser, url, "sue", "wallboard")
    support_row = supervisor.locator("#queues tr[data-queue=support]")
    await expect(support_row.locator("td.waiting")).to_have_text("0")

    # The customer opens the business's page and starts a chat.
    customer_context = await browser.new_context()
    customer = await customer_context.new_page()
    customer.set_default_timeout(TIMEOUT)
    await customer.goto(f"{url}/webchat/")
    widget = customer.locator("#omniroute-webchat")
    await widget.locator(".btn").click()
    await widget.locator("input[name=name]").fill("Carla <script>alert(1)</script>")
    await widget.locator("select[name=topic]").select_option("Support")
    await widget.locator(".start button[type=submit]").click()
    await expect(widget.locator(".status")).to_have_text("Waiting, position 1")
    await widget.locator("input[name=text]").fill("Hello, my <b>router</b> is broken")
    await widget.locator(".compose button[type=submit]").click()
    await expect(widget.locator(".msg.me:not(.pending)")).to_have_text(
        "Hello, my <b>router</b> is broken"
    )

    # The wallboard sees it wait.
    await expect(support_row.locator("td.waiting")).to_have_text("1")
    await expect(supervisor.locator("#t-waiting")).to_have_text("1")

    # The agent logs in, gets ready, accepts and replies.
    agent = await login(browser, url, "ana", "inbox")
    await agent.select_option("#presence", "ready")
    offer = agent.locator("#offers .offer")
    await expect(offer).to_contain_text("Carla <script>alert(1)</script>")  # as text
    await offer.locator("button.primary").click()
    await expect(agent.locator("#work .work")).to_contain_text("assigned")
    await agent.locator("#work .work").click()
    await expect(agent.locator(".messages .msg.customer .text")).to_have_text(
        "Hello, my <b>router</b> is broken"
    )
    await expect(agent.locator("#script")).to_have_text("Greet the customer by name.")
    await agent.get_by_role("button", name="Happy to help!").click()
    await agent.get_by_role("button", name="Send").click()
    await expect(agent.locator(".messages .msg.agent .text")).to_have_text("Happy to help!")

    # The customer sees the agent join and the reply arrive.
    await expect(widget.locator(".msg.sys").first).to_have_text("Ana joined the chat")
    await expect(widget.locator(".msg.them")).to_have_text("Ana: Happy to help!")

    # The wallboard: nobody waits, ana is busy, one answered.
    await expect(support_row.locator("td.waiting")).to_have_text("0")
    await expect(supervisor.locator("tr[data-agent=ana] .badge")).to_have_text("busy")
    await expect(support_row.locator("td").nth(8)).to_have_text("1")

    # A reload of the customer's page resumes the same conversation.
    await customer.reload()
    await expect(widget.locator(".msg.them")).to_have_text("Ana: Happy to help!")

    shots = os.environ.get("OMNIROUTE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        await agent.screenshot(path=f"{shots}/inbox.png")
        await supervisor.screenshot(path=f"{shots}/wallboard.png")
        await customer.screenshot(path=f"{shots}/webchat.png")

    # The agent completes and wraps up; the customer is told.
    await agent.get_by_role("button", name="Complete").click()
    await expect(widget.locator(".status")).to_contain_text("ended")
    await agent.get_by_role("button", name="Done").click()
    await expect(agent.locator("#activity")).to_have_text("ready")
    await customer_context.close()


def png() -> bytes:
    """A real 2x2 PNG, so that the browser decodes it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))


class _Files:
    """A channel's file route as plugins write them: guarded by the API's own rule."""

    @hookimpl
    def omniroute_web_routes(self) -> Any:
        from starlette.responses import Response

        from omniroute.web.api import readable

        async def download(request: Any) -> Response:
            app = request.app.state.omniroute
            interaction_id = request.path_params["interaction_id"]
            if readable(app, request.state.principal, interaction_id) is None:
                return Response(status_code=404)
            headers = {"X-Content-Type-Options": "nosniff"}
            return Response(png(), media_type="image/png", headers=headers)

        yield RouteSpec(path="/files/{interaction_id}/{name}", endpoint=download)


async def test_inbox_shows_names_times_subjects_photos_and_earlier_contacts(
    browser: Any,
) -> None:
    expect = playwright_api.expect
    host = PluginHost(entry_points=False)
    host.register(_Files(), name="files")
    doc = document()
    doc["agents"][0]["capacity"]["email"] = 2
    app = App.from_dict(doc, store=MemoryStore(encode=True), host=host)
    carla = Customer(id="email:c@x.es", name="C. D.", identities=[Identity("email", "c@x.es")])
    async with serving(app) as url:
        # An earlier email of Carla's that ana handled, with a photo, then the CRM's name.
        await app.set_presence("ana", "ready")
        old = Interaction(id="mail-1", channel="email", queue="support", subject="Router")
        await app.submit(msgspec.structs.replace(old, customer=carla))
        photo = Message(
            id="m-1", interaction_id="mail-1", sender="customer", text="It blinks red.",
            attachments=["/files/mail-1/router.png"],
            attributes={"email": {"subject": "Router blinks"}},
        )  # fmt: skip
        await app.add_message(photo)
        await app.accept(next(iter(app.router.agent("ana").offers)), "ana")
        await app.complete("mail-1", "ana")
        await app.end_wrap_up("mail-1", "ana")
        crm = Customer(id="crm:1", name="Carla Diaz", identities=[Identity("email", "c@x.es")])
        await app.link_customer("email:c@x.es", crm, "crm")
        new = Interaction(id="mail-2", channel="email", queue="support", subject="Still red")
        await app.submit(msgspec.structs.replace(new, customer=carla))

        agent = await login(browser, url, "ana", "inbox")
        failed: list[str] = []
        agent.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
        agent.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        await agent.reload()
        offer = agent.locator("#offers .offer")
        await expect(offer).to_contain_text("Carla Diaz")  # the CRM's name, not the mail's
        await offer.locator("button.primary").click()
        work = agent.locator("#work .work")
        await expect(work).to_contain_text("Carla Diaz")
        await expect(work.locator(".subject")).to_have_text("Still red")
        await work.click()
        await expect(agent.locator("#conversation .head")).to_contain_text("Carla Diaz")

        # Earlier contacts open read-only, with sender, time, subject and the photo.
        await agent.locator("#history .contact[data-id=mail-1]").click()
        message = agent.locator(".messages .msg.customer")
        await expect(message.locator(".text")).to_have_text("It blinks red.")
        await expect(message.locator(".sender")).to_have_text("Carla Diaz")
        await expect(message.locator("time")).not_to_be_empty()
        await expect(message.locator(".subject")).to_have_text("Router blinks")
        link = message.locator(".attachments a")
        await expect(link).to_have_attribute("href", "/files/mail-1/router.png")
        text = await link.inner_text()
        assert text.strip() == "File: router.png"  # no emoji: Debian's fonts lack them
        preview = message.locator("img.preview")
        await expect(preview).to_have_attribute("src", "/files/mail-1/router.png")
        await agent.wait_for_function(
            "() => document.querySelector('img.preview').naturalWidth === 2"
        )
        await expect(agent.locator("#reply")).to_have_count(0)  # nothing to act on
        await expect(agent.locator(".readonly")).to_contain_text("read only")
        await agent.get_by_role("button", name="Back").click()
        await expect(agent.locator("#reply")).to_be_enabled()
        assert failed == []  # no 404 (a favicon) nor error in the console


async def test_an_agent_calls_a_customer_from_the_inbox(browser: Any) -> None:
    expect = playwright_api.expect
    doc = document()
    doc["agents"][0]["capacity"] = {"webchat": 2, "voice": 1}
    doc["agents"][0]["exclusive"] = []  # she may call while she chats
    app = App.from_dict(doc, store=MemoryStore(encode=True))
    carla = Customer(
        id="carla",
        name="Carla Diaz",
        identities=[Identity("webchat", "w-1"), Identity("voice", "+15550199")],
    )
    async with serving(app) as url:
        await app.set_presence("ana", "ready")
        chat = Interaction(id="chat-1", channel="webchat", queue="support", customer=carla)
        await app.submit(chat)
        await app.accept(next(iter(app.router.agent("ana").offers)), "ana")
        agent = await login(browser, url, "ana", "inbox")
        await agent.locator("#work .work[data-id=chat-1]").click()
        # The customer's phone number has a Call button: the call is hers at once.
        await agent.locator("#customer button.call[data-number='+15550199']").click()
        outbound = agent.locator("#work .work", has_text="outbound +15550199")
        await expect(outbound).to_have_count(1)
        await expect(agent.locator("#conversation .head")).to_contain_text("outbound")
        (call,) = [i for i in app.router.agent("ana").work if i != "chat-1"]
        assert app.router.interaction(call).customer.id == "carla"  # type: ignore[union-attr]
        # A second call from the dial box is refused: her one voice line is taken.
        await agent.fill("#dial", "+1 555 0100")
        await agent.locator("#dial-call").click()
        await expect(agent.locator("#error")).to_contain_text("no free capacity")
        # The call ends busy: wrap-up shows the outcome.
        await app.complete(call, "ana", "busy")
        await expect(outbound).to_contain_text("busy")

"""The whole thing in real browsers: a customer chats through the widget, an agent in a
second browser context accepts and replies from the inbox, and the supervisor's wallboard
shows the counts change. Playwright drives Debian's Chromium (`scripts/install-browser`).

Set OMNIROUTE_SCREENSHOTS=DIR to keep screenshots of the inbox and the wallboard (the
ones in docs/ come from here).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from webkit import PASSWORD, document

from omniroute.app import App
from omniroute.plugins import PluginHost
from omniroute.store import MemoryStore
from omniroute.testing import serving

playwright_api = pytest.importorskip("playwright.async_api")
plugin = pytest.importorskip("omniroute_webchat.plugin")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"{CHROMIUM} is missing: run scripts/install-browser (tox does) as root",
    ),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
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
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        await browser.close()


async def login(browser: Any, url: str, user: str, landing: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(f"{url}/{landing}")
    await page.wait_for_url("**/login**")  # no session yet: the page sends us to log in
    await page.fill("input[name=user]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/{landing}")
    return page


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
    await expect(agent.locator(".messages .msg.customer")).to_have_text(
        "Hello, my <b>router</b> is broken"
    )
    await expect(agent.locator("#script")).to_have_text("Greet the customer by name.")
    await agent.get_by_role("button", name="Happy to help!").click()
    await agent.get_by_role("button", name="Send").click()
    await expect(agent.locator(".messages .msg.agent")).to_have_text("Happy to help!")

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

"""Pytest fixtures for omniroute and its plugin authors.

Installed as the pytest plugin `omniroute` (entry point `pytest11`), so every test run
in an environment with omniroute loads this module. Importing it therefore only defines
classes and fixtures: it registers nothing, reads no environment and starts nothing.

* `plugin_host`: a `PluginHost` with built-ins but no entry points, so tests do not
  depend on what else is installed.
* `register_plugin`: registers a plugin (object or module) on `plugin_host` for one test.
* `echo_channel`: an `EchoChannel`, registered as channel "echo", that a test drives by
  hand.
* `app`: builds an `App` on `plugin_host`, a virtual clock and an encoding memory store.
* `serving(app)`: runs an app with its web server on a free loopback port, for tests of
  web routes and of channels that customers reach over HTTP.
* `chromium()` and `log_in(...)`: Debian's Chromium driven by Playwright, logged in to
  a page, for tests of the pages (the `test` extra installs Playwright).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from . import hookimpl
from .model import Customer, Identity, Interaction, Message
from .plugins import PluginError, PluginHost
from .specs import ChannelSpec

__all__ = [
    "CHROMIUM",
    "EchoChannel",
    "app",
    "chromium",
    "echo_channel",
    "log_in",
    "plugin_host",
    "register_plugin",
    "serving",
]


class EchoChannel:
    """A channel with no transport: a test makes contacts and reads what was delivered.

    `run` only waits until cancelled; `contact()` builds an Interaction on channel "echo"
    (submitting it to the app is the test's move); `deliver` records agents' messages.
    """

    name = "echo"

    def __init__(self) -> None:
        self.app: Any = None
        self.running = False
        self.contacts: list[Interaction] = []
        self.delivered: list[tuple[Interaction, Message]] = []
        self._ids = itertools.count(1)

    async def run(self, app: Any) -> None:
        self.app = app
        self.running = True
        try:
            await anyio.sleep_forever()
        finally:
            self.running = False

    def contact(
        self, queue: str = "default", *, address: str = "customer-1", **fields: Any
    ) -> Interaction:
        """A new inbound interaction from `address`; `fields` go to `Interaction`."""
        number = next(self._ids)
        fields.setdefault("id", f"echo-{number}")
        fields.setdefault(
            "customer", Customer(id=address, identities=[Identity(self.name, address)])
        )
        interaction = Interaction(channel=self.name, queue=queue, **fields)
        self.contacts.append(interaction)
        return interaction

    async def deliver(self, interaction: Interaction, message: Message) -> None:
        self.delivered.append((interaction, message))

    def messages(self, interaction_id: str) -> list[str]:
        """Texts delivered so far for one interaction, in order."""
        return [m.text for i, m in self.delivered if i.id == interaction_id]


class _EchoPlugin:
    """Provides one given EchoChannel instance as channel "echo"."""

    def __init__(self, channel: EchoChannel) -> None:
        self.channel = channel

    @hookimpl
    def omniroute_channels(self) -> Iterator[ChannelSpec]:
        yield ChannelSpec(
            name=self.channel.name,
            factory=lambda config, app: self.channel,
            description="test channel driven by hand",
        )


@pytest.fixture
def plugin_host() -> PluginHost:
    """A PluginHost with the built-ins and no entry-point plugins: hermetic."""
    return PluginHost(entry_points=False)


@pytest.fixture
def register_plugin(plugin_host: PluginHost) -> Iterator[Callable[..., str]]:
    """`register_plugin(plugin, name=None) -> name`: registered on `plugin_host` until the
    test ends."""
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered = plugin_host.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin name {name!r} is blocked on this host")
        names.append(registered)
        return registered

    yield register
    for name in reversed(names):
        plugin_host.unregister(name)


@pytest.fixture
def echo_channel(register_plugin: Callable[..., str]) -> EchoChannel:
    """An EchoChannel, provided to `plugin_host` as channel "echo"."""
    channel = EchoChannel()
    register_plugin(_EchoPlugin(channel), name="omniroute.testing.echo")
    return channel


# ------------------------------------------------------------------ app


@pytest.fixture
def app(plugin_host: PluginHost) -> Callable[..., Any]:
    """`app(config_dict, *, clock=None, store=None) -> App`: an app on `plugin_host`.

    The clock defaults to a fresh `VirtualClock` (move it with `app.clock.advance(s)`)
    and the store to a `MemoryStore(encode=True)`, so every event must survive JSON.
    Pass the same store to a second app to test a restart. Run it for a block:

        async with app(config).running() as running:
            await running.submit(echo_channel.contact("support"))
            await anyio.wait_all_tasks_blocked()  # let timers and observers catch up

    The channel "echo" runs only if the config has a `plugins.echo` table, which needs a
    registered `ConfigSpec(section="echo", ...)`.
    """
    # Imported here: this module loads in every pytest run, and most never build an app.
    from collections.abc import Mapping

    from .app import App
    from .clock import Clock, VirtualClock
    from .store import MemoryStore, Store

    def make_app(
        config: Mapping[str, Any], *, clock: Clock | None = None, store: Store | None = None
    ) -> App:
        return App.from_dict(
            config,
            clock=clock if clock is not None else VirtualClock(),
            store=store if store is not None else MemoryStore(encode=True),
            host=plugin_host,
        )

    return make_app


# ------------------------------------------------------------------ web


@asynccontextmanager
async def serving(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Run `app` and its web server (on `[server]`, but on loopback: a free port unless
    `port` is given, for a URL that must be known in advance, like a webhook's) for the
    duration of the block; yields the base URL, e.g. "http://127.0.0.1:41234".

        async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
            ...
    """
    import msgspec

    from .web.serve import serve_app

    server = msgspec.structs.replace(app.config.server, host="127.0.0.1", port=port)
    ready: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: serve_app(app, server, on_ready=ready.append))
        with anyio.fail_after(10):
            while not ready:
                await anyio.sleep(0.01)
        yield ready[0]
        tg.cancel_scope.cancel()


#: Debian's Chromium (`scripts/install-browser`), which Playwright drives.
CHROMIUM = "/usr/bin/chromium"
_CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless `CHROMIUM` (a Playwright `Browser`) for the duration of the block; the
    test skips, saying why, where Chromium or Playwright is missing."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install-browser (tox does) as root")
    async_playwright = pytest.importorskip("playwright.async_api").async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=_CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(
    browser: Any, url: str, user: str, password: str, landing: str, timeout: float = 10_000
) -> Any:
    """A page of a new browser context, logged in as `user` through the login page that
    `landing` ("inbox", "wallboard") sends a visitor without a session to; every wait
    on it times out after `timeout` ms."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(timeout)
    await page.goto(f"{url}/{landing}")
    await page.wait_for_url("**/login**")  # no session yet: the page sends us to log in
    await page.fill("input[name=user]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/{landing}")
    return page

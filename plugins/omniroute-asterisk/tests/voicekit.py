"""A contact center wired to a real Asterisk for the voice tests: the app with the
plugin, sipp phones for agents and customers, sipp callers, and waiting for events.

The `asterisk` fixture comes from the plugin's pytest plugin (`pytest_plugin.py`); there
is no conftest.py here, because another plugin's tests import their `conftest` by name
and a second one would shadow it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
from omniroute_asterisk import plugin
from omniroute_asterisk.channel import VoiceChannel
from omniroute_asterisk.testing import (
    Asterisk,
    Phone,
    caller_command,
    caller_scenario,
    free_udp_ports,
    phone_scenario,
    write_silence,
)

from omniroute import events as ev
from omniroute.app import App
from omniroute.plugins import PluginHost
from omniroute.store import MemoryStore, Store
from omniroute.testing import serving

E = TypeVar("E", bound=ev.Event)

PASSWORD_ENV = "OMNIROUTE_TEST_ARI_PASSWORD"


def settings(asterisk: Any, **extra: Any) -> dict[str, Any]:
    os.environ[PASSWORD_ENV] = asterisk.password
    return {
        "url": asterisk.url,
        "user": asterisk.user,
        "password_env": PASSWORD_ENV,
        "agents": {"ana": "PJSIP/ana", "bob": "PJSIP/bob", "cy": "PJSIP/cy"},
        "supervisors": {"sam": "PJSIP/sam"},
        "numbers": {"default": {"queue": "support"}},
        "callback_endpoint": "PJSIP/{number}@trunk",
        "announce_every": 0,
        **extra,
    }


def document(asterisk: Any, *, queues: list[dict[str, Any]] | None = None, **extra: Any):
    return {
        "queues": queues or [{"name": "support", "offer_timeout": 3, "wrap_up": 0}],
        "agents": [{"id": "ana"}, {"id": "bob"}, {"id": "cy"}],
        "plugins": {"asterisk": settings(asterisk, **extra)},
    }


#: API tokens of the test users: ana and bob (agents), sue (supervisor).
TOKENS = {name: f"a-long-random-api-token-for-{name}-0123456789" for name in ("ana", "bob", "sue")}


def with_users(config: dict[str, Any]) -> dict[str, Any]:
    """The config with a web server whose users ana, bob (agents) and sue (supervisor)
    log in with `TOKENS` (`auth(name)` makes the header)."""
    from omniroute.web.passwords import hash_token

    users = [{"id": n, "token_hashes": [hash_token(t)]} for n, t in TOKENS.items()]
    users[-1]["role"] = "supervisor"
    return {**config, "server": {"secret": "a-test-secret-of-enough-length", "users": users}}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def build(config: dict[str, Any], store: Store | None = None) -> App:
    host = PluginHost(entry_points=False)
    host.register(plugin, name="asterisk")
    return App.from_dict(
        config, store=store if store is not None else MemoryStore(encode=True), host=host
    )


class Rig:
    """A running app on a real Asterisk; every durable event is kept in `events`."""

    def __init__(self, app: App, asterisk: Asterisk, tg: anyio.abc.TaskGroup) -> None:
        self.app = app
        self.asterisk = asterisk
        self.events: list[ev.Event] = []
        self._changed = anyio.Event()
        self._tg = tg
        self._dir = Path(tempfile.mkdtemp(prefix="omniroute-voice-"))
        self._stack = AsyncExitStack()
        self._stack.callback(shutil.rmtree, self._dir, ignore_errors=True)
        self.url = ""

    @property
    def voice(self) -> VoiceChannel:
        channel = self.app.channels["asterisk"]
        assert isinstance(channel, VoiceChannel)
        return channel

    async def _collect(self, stream: Any) -> None:
        with stream as events:
            async for event in events:
                self.events.append(event)
                self._changed.set()
                self._changed = anyio.Event()

    async def wait_for(self, kind: type[E], timeout: float = 10.0, **fields: Any) -> E:
        """The first event of `kind` (kept or to come) whose fields match."""
        with anyio.fail_after(timeout):
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if isinstance(event, kind) and all(
                        getattr(event, k) == v for k, v in fields.items()
                    ):
                        return event
                seen = len(self.events)
                await self._changed.wait()

    async def until(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll `check` (sync or async) until it returns something truthy."""
        with anyio.fail_after(timeout):
            while True:
                result = check()
                if hasattr(result, "__await__"):
                    result = await result
                if result:
                    return result
                await anyio.sleep(0.05)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    # -- SIP ----------------------------------------------------------------------
    def phone(self, name: str, action: str = "answer", **kw: Any) -> Phone:
        """Start the sipp phone of `name` ("customer" is the trunk's callback phone)."""
        port = self.asterisk.customer_port if name == "customer" else self.asterisk.phones[name]
        phone = Phone(port, phone_scenario(action, **kw)).start()  # type: ignore[arg-type]
        self._stack.callback(phone.stop)
        return phone

    async def call(
        self,
        number: str = "100",
        *,
        caller: str = "5551234",
        keys: tuple[tuple[int, str], ...] = (),
        hold_ms: int = 10_000,
    ) -> anyio.abc.Process:
        """Place one call with a sipp caller; its process ends when the call does."""
        process = await start_caller(
            self.asterisk, self._dir, number, caller=caller, keys=keys, hold_ms=hold_ms
        )
        self._stack.push_async_callback(end_process, process)
        return process

    async def ari(self, path: str) -> Any:
        return await self.voice.ari.get(path)

    async def bridges(self) -> list[dict[str, Any]]:
        bridges: list[dict[str, Any]] = await self.ari("bridges")
        return bridges

    async def bridged(self, *channels: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for a bridge holding exactly these channels (in Asterisk's own state)."""

        async def check() -> dict[str, Any] | None:
            for bridge in await self.bridges():
                if sorted(bridge["channels"]) == sorted(channels):
                    return bridge
            return None

        found: dict[str, Any] = await self.until(check, timeout)
        return found

    async def no_bridges(self) -> bool:
        return await self.until(lambda: _empty(self.bridges()))


async def _empty(request: Any) -> bool:
    return not await request


async def start_caller(
    asterisk: Asterisk,
    folder: Path,
    number: str = "100",
    *,
    caller: str = "5551234",
    keys: tuple[tuple[int, str], ...] = (),
    hold_ms: int = 10_000,
) -> anyio.abc.Process:
    """A sipp caller placing one call; its process ends when the call does."""
    write_silence(folder)
    path = folder / f"caller-{len(list(folder.glob('*.xml')))}.xml"
    path.write_text(caller_scenario(caller=caller, keys=keys, hold_ms=hold_ms))
    (port,) = free_udp_ports(1)
    return await anyio.open_process(
        caller_command(asterisk, path, number=number, port=port), cwd=folder
    )


async def end_process(process: anyio.abc.Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(5):
            await process.wait()
    await process.aclose()


@asynccontextmanager
async def rig(
    asterisk: Asterisk,
    config: dict[str, Any],
    store: Store | None = None,
    ready: tuple[str, ...] = (),
    keep_calls: bool = False,
    web: bool = False,
) -> AsyncIterator[Rig]:
    """A running app on `asterisk`; on leaving, every channel is hung up (unless
    `keep_calls`: the calls stay in Stasis for the next app to adopt). With `web` its
    web server runs too, at `Rig.url`."""
    app = build(config, store)
    async with AsyncExitStack() as running:
        url = await running.enter_async_context(serving(app)) if web else ""
        if not web:
            await running.enter_async_context(app.running())
        async with _rig(app, asterisk, ready, keep_calls) as r:
            r.url = url
            yield r


@asynccontextmanager
async def _rig(
    app: App, asterisk: Asterisk, ready: tuple[str, ...], keep_calls: bool
) -> AsyncIterator[Rig]:
    async with anyio.create_task_group() as tg:
        r = Rig(app, asterisk, tg)
        tg.start_soon(r._collect, app.subscribe(max_buffer=100_000))
        with anyio.fail_after(10):
            await r.voice.ari.connected.wait()
        for agent in ready:
            await app.set_presence(agent, "ready")
        try:
            async with r._stack:
                yield r
        finally:
            if not keep_calls:
                with anyio.CancelScope(shield=True):
                    await _hang_up_everything(r)
        tg.cancel_scope.cancel()


async def _hang_up_everything(r: Rig) -> None:
    """Leave Asterisk as the next test expects it: no channel, no bridge."""
    with anyio.move_on_after(5):
        for channel in await r.ari("channels"):
            await r.voice._hangup(channel["id"])
        for bridge in await r.bridges():
            await r.voice._quietly(r.voice.ari.delete(f"bridges/{bridge['id']}"))
        await r.until(lambda: _empty(r.ari("channels")))

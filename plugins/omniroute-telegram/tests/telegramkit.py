"""Helpers of the Telegram channel's tests: the config of a contact center running the
channel against a local Bot API, and that center with its web server (`running`)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from omniroute_telegram import plugin
from omniroute_telegram.fakeapi import FakeBotApi

from omniroute import events as ev
from omniroute.app import App
from omniroute.plugins import PluginHost
from omniroute.store import Store
from omniroute.testing import serving
from omniroute.web.passwords import hash_token

AGENT_TOKEN = "a-long-random-api-token-for-agent-ana-0123456789"
SUPERVISOR_TOKEN = "a-long-random-api-token-for-supervisor-sue-012345"


def config(api: FakeBotApi, files: Path, **telegram: Any) -> dict[str, Any]:
    return {
        "queues": [{"name": "support"}, {"name": "billing"}],
        "agents": [{"id": "ana", "name": "Ana", "capacity": {"telegram": 3}}],
        "server": {
            "secret": "a-test-secret-of-enough-length",
            "users": [
                {"id": "ana", "token_hashes": [hash_token(AGENT_TOKEN)]},
                {"id": "sue", "role": "supervisor", "token_hashes": [hash_token(SUPERVISOR_TOKEN)]},
            ],
        },
        "plugins": {
            "telegram": {
                "queue": "support",
                "api_url": api.api_url,
                "file_url": api.file_url,
                "files": str(files),
                "poll_timeout": 1,
                "max_backoff": 0.2,
                "stuck_after": 2,
                "max_file_bytes": 100_000,
                **telegram,
            }
        },
    }


class Center:
    """A running contact center with the Telegram channel and its web server."""

    def __init__(self, app: App, url: str) -> None:
        self.app = app
        self.url = url
        self.agent = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}
        )
        self.supervisor = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}
        )

    async def events(self, kind: type[ev.Event]) -> list[Any]:
        return [e async for _, e in self.app.store.read() if isinstance(e, kind)]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                await anyio.sleep(0.01)

    def live(self) -> list[Any]:
        return [
            w
            for w in self.app.router.active.values()
            if w.ix.channel == "telegram" and w.ix.state.value not in ("completed", "abandoned")
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running(
    document: dict[str, Any], store: Store, port: int | None = None
) -> AsyncIterator[Center]:
    host = PluginHost(entry_points=False)
    host.register(plugin, name="telegram")
    app = App.from_dict(document, store=store, host=host)
    async with serving(app, port or 0) as url:
        center = Center(app, url)
        channel = app.channels["telegram"]
        with anyio.fail_after(10):
            await channel.ready.wait()  # type: ignore[attr-defined]
        try:
            yield center
        finally:
            await center.agent.aclose()
            await center.supervisor.aclose()

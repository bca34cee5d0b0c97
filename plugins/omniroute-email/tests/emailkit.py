"""Helpers for the email tests (a plain module, not a conftest: `from emailkit import`): a
real SMTP sink (aiosmtpd) that can refuse, an app with the email channel on a SQLite
store, and smtplib as the customer's mail server."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import anyio
from aiosmtpd.smtp import SMTP, Envelope, Session
from omniroute_email import plugin
from omniroute_email.channel import EmailChannel

from omniroute.app import App
from omniroute.plugins import PluginHost
from omniroute.store.sqlite import SqliteStore
from omniroute.testing import serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """An SMTP server that keeps what it receives; `answer` is what DATA gets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[EmailMessage] = []
        self.answer = "250 OK"
        self._server: asyncio.AbstractServer | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.answer.startswith("250"):
            raw = envelope.original_content or b""
            parsed = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(parsed, EmailMessage)
            self.received.append(parsed)
        return self.answer

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, loop=loop), "127.0.0.1", self.port
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def wait_for(self, count: int, seconds: float = 10) -> list[EmailMessage]:
        with anyio.fail_after(seconds):
            while len(self.received) < count:
                await anyio.sleep(0.02)
        return self.received


def config(tmp_path: Path, sink_port: int, **email: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "default_queue": "support",
        "rules": [
            {"queue": "billing", "to": ["billing@shop.example"]},
            {"queue": "billing", "subject": ["invoice", "refund"]},
            {"queue": "vip", "from_domain": ["bigcorp.example"]},
        ],
        "listen": {"host": "127.0.0.1", "port": 0, "domains": ["shop.example"]},
        "smtp": {
            "host": "127.0.0.1",
            "port": sink_port,
            "security": "none",
            "sender": "Shop support <support@shop.example>",
            "timeout": 5,
        },
        "attachments": str(tmp_path / "attachments"),
        "retry_first": 0.2,
        "retry_max": 0.5,
    }
    settings.update(email)
    return {
        "queues": [
            {"name": "support", "sla": {"seconds": 3600, "measure": "first_response"}},
            {"name": "billing"},
            {"name": "vip"},
        ],
        "agents": [{"id": "ana", "name": "Ana", "capacity": {"email": 5}}],
        "server": {"secret": "a-test-secret-of-enough-length"},
        "plugins": {"email": settings},
    }


def host() -> PluginHost:
    h = PluginHost(entry_points=False)
    h.register(plugin, name="email")
    return h


@asynccontextmanager
async def running(
    cfg: dict[str, Any], db: Path, urls: list[str] | None = None
) -> AsyncIterator[tuple[App, EmailChannel]]:
    """The app on a SQLite store at `db`; with `urls`, its web server too (its base URL
    is appended to `urls`)."""
    store = SqliteStore(db)
    app = App.from_dict(cfg, store=store, host=host())
    try:
        async with AsyncExitStack() as stack:
            if urls is None:
                await stack.enter_async_context(app.running())
            else:
                urls.append(await stack.enter_async_context(serving(app)))
            channel = app.channels["email"]
            assert isinstance(channel, EmailChannel)
            with anyio.fail_after(5):
                await channel.ready.wait()
            yield app, channel
    finally:
        await store.close()


def mail(
    subject: str = "My order",
    body: str = "Where is my order 1234?",
    sender: str = "Carla <carla@example.org>",
    to: str = "support@shop.example",
    **headers: str,
) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content(body)
    return m


async def send(port: int, message: EmailMessage | bytes, *, mail_from: str | None = None,
               to: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Deliver with smtplib, as a mail server would; returns smtplib's refusals."""

    def run() -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            if isinstance(message, bytes):
                return client.sendmail(mail_from or "carla@example.org",
                                       to or ["support@shop.example"], message)  # fmt: skip
            return client.send_message(message, from_addr=mail_from, to_addrs=to)

    return await anyio.to_thread.run_sync(run)

"""Inbound email per second over SMTP, through to a queued, durable interaction.

A real App with the email channel and the SQLite store listens on loopback; client
processes (so that they do not share the server's interpreter) send mail with smtplib
over several connections each, every mail from its own customer. A mail counts when
the listener's 250 came back, which it only sends once the interaction and its message
are committed. `bench/channels.py` prints it beside the Telegram figure.
"""

from __future__ import annotations

import smtplib
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio

from omniroute.app import App
from omniroute.plugins import PluginHost
from omniroute.store.sqlite import SqliteStore

__all__ = ["run_email"]


def run_email(
    emails: int = 3000, processes: int = 2, connections: int = 8, folder: str | None = None
) -> float:
    """Emails per second accepted (250, durable) by the SMTP listener."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        return anyio.run(_run, Path(tmp), emails, processes, connections)


async def _run(tmp: Path, emails: int, processes: int, connections: int) -> float:
    from omniroute_email import plugin
    from omniroute_email.channel import EmailChannel

    host = PluginHost(entry_points=False)
    host.register(plugin, name="email")
    config: dict[str, Any] = {
        "queues": [{"name": "support", "sla": {"seconds": 3600, "measure": "first_response"}}],
        "agents": [{"id": "ana", "capacity": {"email": 5}}],
        "plugins": {
            "email": {
                "default_queue": "support",
                "listen": {"host": "127.0.0.1", "port": 0},
                "smtp": {"host": "127.0.0.1", "port": 9, "sender": "support@shop.example"},
                "attachments": str(tmp / "attachments"),
            }
        },
    }
    store = SqliteStore(tmp / "events.db")
    app = App.from_dict(config, store=store, host=host)
    try:
        async with app.running():
            channel = app.channels["email"]
            assert isinstance(channel, EmailChannel)
            with anyio.fail_after(10):
                await channel.ready.wait()
            assert channel.port is not None
            port = channel.port
            await anyio.to_thread.run_sync(_send_all, port, 20, 1, 2)  # warm up
            started = time.perf_counter()
            sent = await anyio.to_thread.run_sync(_send_all, port, emails, processes, connections)
            elapsed = time.perf_counter() - started
            waiting = len(app.router.waiting())
    finally:
        await store.close()
    if sent != emails or waiting != emails + 20:
        raise RuntimeError(f"sent {sent} of {emails}; {waiting} interactions queued")
    return emails / elapsed


def _send_all(port: int, emails: int, processes: int, connections: int) -> int:
    per = [emails // processes + (1 if i < emails % processes else 0) for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        jobs = [pool.submit(_client, port, i, n, connections) for i, n in enumerate(per)]
        return sum(job.result() for job in jobs)


# Built by hand so that the clients spend their (shared) CPU on SMTP, not on composing.
_MAIL = (
    b"From: %s\r\nTo: support@shop.example\r\nMessage-ID: <%s>\r\nSubject: Order %d\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Where is my order? It was due yesterday.\r\n\r\nThanks,\r\nA customer\r\n"
)


def _client(port: int, process: int, emails: int, connections: int) -> int:
    """One client process: `emails` mails over `connections` SMTP sessions."""
    per = [
        emails // connections + (1 if i < emails % connections else 0) for i in range(connections)
    ]

    def session(conn: int, count: int) -> int:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for n in range(count):
                who = f"c{process}-{conn}-{n}-{time.monotonic_ns()}@example.org"
                smtp.sendmail(
                    who, ["support@shop.example"], _MAIL % (who.encode(), who.encode(), n)
                )
        return count

    with ThreadPoolExecutor(connections) as threads:
        return sum(threads.map(session, range(connections), per))

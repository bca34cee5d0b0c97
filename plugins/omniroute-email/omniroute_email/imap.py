"""Reading an IMAP mailbox (aioimaplib): unseen mail is fetched without marking it
(BODY.PEEK), filed durably, and only then marked \\Seen; a crash in between means the
mail is read again, and the intake recognises it by its Message-ID. Between rounds the
reader waits in IDLE (or sleeps `poll` seconds); a lost connection is retried with
doubling waits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

import aioimaplib
import anyio

from .intake import Intake
from .settings import Mailbox

__all__ = ["read_mailbox"]

logger = logging.getLogger("omniroute.email")

_LITERAL = re.compile(rb"\{\d+\}$")


class ImapError(Exception):
    pass


async def read_mailbox(intake: Intake, box: Mailbox) -> None:
    """Read one mailbox until cancelled, reconnecting after errors."""
    wait = 1.0
    where = f"{box.user}@{box.host}:{box.port}/{box.folder}"
    while True:
        try:
            await _session(intake, box, where)
        except (OSError, TimeoutError, ImapError, aioimaplib.Abort) as exc:
            logger.warning("email: IMAP %s: %s; reconnecting in %.0f s", where, exc, wait)
        await anyio.sleep(wait)
        wait = min(wait * 2, 300.0)


async def _session(intake: Intake, box: Mailbox, where: str) -> None:
    cls = aioimaplib.IMAP4_SSL if box.security == "tls" else aioimaplib.IMAP4
    client = cls(host=box.host, port=box.port, timeout=box.timeout)
    try:
        await client.wait_hello_from_server()
        _ok(await client.login(box.user, box.password), "LOGIN")
        _ok(await client.select(box.folder), f"SELECT {box.folder}")
        idle = box.idle and client.has_capability("IDLE")
        logger.info("email: reading IMAP %s (%s)", where, "IDLE" if idle else "polling")
        while True:
            await _round(client, intake)
            if idle:
                task = await client.idle_start(timeout=box.poll)
                await client.wait_server_push(timeout=box.poll + 5)
                client.idle_done()
                await asyncio.wait_for(task, box.timeout)
            else:
                await anyio.sleep(box.poll)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), 5)


async def _round(client: aioimaplib.IMAP4, intake: Intake) -> None:
    """File every unseen mail, marking each seen only after it is durable."""
    found = await client.uid_search("UNSEEN")
    _ok(found, "SEARCH")
    uids = [u for line in found.lines[:1] for u in line.decode().split() if u.isdigit()]
    for uid in uids:
        fetched = await client.uid("fetch", uid, "(BODY.PEEK[])")
        _ok(fetched, "FETCH")
        raw = _literal(fetched.lines)
        if raw is None:
            continue  # expunged meanwhile
        await intake.take(raw)
        _ok(await client.uid("store", uid, "+FLAGS.SILENT", r"(\Seen)"), "STORE")


def _literal(lines: list[bytes | bytearray]) -> bytes | None:
    """The message body of a FETCH answer: the line after the one ending in {size}."""
    for i, line in enumerate(lines[:-1]):
        if _LITERAL.search(bytes(line)):
            return bytes(lines[i + 1])
    return None


def _ok(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        detail = b" ".join(bytes(x) for x in response.lines).decode(errors="replace")
        raise ImapError(f"{what} failed: {response.result} {detail[:200]}")

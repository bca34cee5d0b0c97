"""The outbox: every agent's message on an email interaction until its mail is sent.

It holds no state of its own that the log lacks: an agent's message is durable
(`MessageAdded`) before the channel hears of it, and the outbox is "agent messages
without an `email.sent` note", folded from the log, so a restart resends what was not
sent. A server that is down or answers 4xx is tried again with doubling waits; a 5xx
refusal marks the mail failed (logged as an error, listed for supervisors, sent again
only when one asks). Nothing leaves the outbox unless it was sent.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import aiosmtplib
import anyio
import msgspec

from omniroute import events as ev
from omniroute.model import Message

from .compose import compose, message_id
from .settings import EmailSettings
from .threads import Threads

__all__ = ["Entry", "Outbox"]

logger = logging.getLogger("omniroute.email")

SENT, FAILED, RETRY = "email.sent", "email.failed", "email.retry"


class Entry(msgspec.Struct, kw_only=True):
    """One mail waiting to go, as supervisors see it."""

    message: str  # the omniroute message id
    interaction_id: str
    to: str
    created_at: float
    status: Literal["queued", "retrying", "failed"] = "queued"
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None


class Outbox:
    def __init__(self, app: Any, settings: EmailSettings, threads: Threads) -> None:
        self.app = app
        self.settings = settings
        self.threads = threads
        self.entries: dict[str, Entry] = {}
        self._messages: dict[str, Message] = {}
        self._sent: set[str] = set()
        self._wake = anyio.Event()

    # -- folding --------------------------------------------------------------------
    def apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageAdded):
            message = event.message
            thread = self.threads.threads.get(message.interaction_id)
            if thread is None or not message.sender.startswith(("agent:", "supervisor:")):
                return
            if message.id in self._sent or message.id in self.entries:
                return
            self._messages[message.id] = message
            self.entries[message.id] = Entry(
                message=message.id,
                interaction_id=message.interaction_id,
                to=thread.address,
                created_at=message.at,
            )
            self._wake.set()
        elif isinstance(event, ev.Note) and event.kind in (SENT, FAILED, RETRY):
            key = str(event.data.get("message", ""))
            if event.kind == SENT:
                self._sent.add(key)
                self.entries.pop(key, None)
                self._messages.pop(key, None)
                return
            entry = self.entries.get(key)
            if entry is None:
                return
            if event.kind == FAILED:
                entry.status = "failed"
                entry.last_error = str(event.data.get("error", ""))
            else:
                entry.status, entry.attempts, entry.next_at = "queued", 0, 0.0
                self._wake.set()

    # -- commands -------------------------------------------------------------------
    async def retry(self, key: str) -> Entry | None:
        """A supervisor asks to send a failed mail again (durably, so a restart agrees)."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        note = await self.app.add_note(RETRY, {"message": key})
        self.apply(note)
        return entry

    # -- sending --------------------------------------------------------------------
    async def run(self) -> None:
        clock = self.app.clock
        while True:
            now = clock.now()
            due = [e for e in self.entries.values() if e.status != "failed" and e.next_at <= now]
            for entry in sorted(due, key=lambda e: e.created_at):
                await self._send(entry)
            waiting = [e.next_at for e in self.entries.values() if e.status != "failed"]
            self._wake = anyio.Event()
            if any(t <= clock.now() for t in waiting):
                continue
            if waiting:
                await clock.sleep_until(min(waiting), self._wake)
            else:
                await self._wake.wait()

    async def _send(self, entry: Entry) -> None:
        message = self._messages[entry.message]
        thread = self.threads.threads[entry.interaction_id]
        smtp = self.settings.smtp
        mail = compose(message, thread, smtp.sender, message.at)
        entry.attempts += 1
        try:
            await aiosmtplib.send(
                mail,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.user,
                password=smtp.password,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                timeout=smtp.timeout,
            )
        except Exception as exc:
            await self._failed(entry, exc)
            return
        note = await self.app.add_note(
            SENT,
            {
                "message": entry.message,
                "interaction_id": entry.interaction_id,
                "to": entry.to,
                "message_id": message_id(message, thread.ticket, smtp.sender),
            },
        )
        self.apply(note)
        logger.info("email %s to %s sent (%s)", entry.message, entry.to, entry.interaction_id)

    async def _failed(self, entry: Entry, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        entry.last_error = error
        if _permanent(exc):
            logger.error(
                "email %s to %s refused for good, kept in the outbox as failed: %s",
                entry.message,
                entry.to,
                error,
            )
            note = await self.app.add_note(FAILED, {"message": entry.message, "error": error})
            self.apply(note)
            return
        wait = min(self.settings.retry_max, self.settings.retry_first * 2 ** (entry.attempts - 1))
        entry.status = "retrying"
        entry.next_at = self.app.clock.now() + wait
        logger.warning(
            "email %s to %s not sent (attempt %d), retrying in %.0f s: %s",
            entry.message,
            entry.to,
            entry.attempts,
            wait,
            error,
        )


def _permanent(exc: Exception) -> bool:
    """A 5xx answer: trying again would get the same."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 500 <= exc.code < 600
    return False

"""One received mail -> an interaction or a message of one, durably; shared by the SMTP
listener and the IMAP reader, which acknowledge (250, \\Seen) only when `take` returned.

A mail that must not become a conversation (a bounce, an auto-reply, one without a
sender) is recorded as an `email.ignored` note with its reason and logged: it is never
answered, and never silently gone either.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import msgspec

from omniroute import events as ev
from omniroute.model import Customer, Identity, Interaction, InteractionState, Message

from .attachments import AttachmentStore, link
from .parse import Mail, Unusable, parse
from .quoting import split_quoted
from .rules import choose_queue
from .settings import EmailSettings
from .threads import CHANNEL, Threads, new_ticket, tag

__all__ = ["Intake", "Outcome"]

logger = logging.getLogger("omniroute.email")

MAX_HTML = 256 * 1024  # sanitised HTML kept with a message, in characters
IGNORED = "email.ignored"
_GOING = (InteractionState.WAITING, InteractionState.OFFERED, InteractionState.ASSIGNED)


class Outcome(msgspec.Struct, kw_only=True):
    kind: Literal["queued", "added", "reopened", "duplicate", "ignored"]
    interaction_id: str | None = None
    reason: str | None = None


class Intake:
    def __init__(
        self, app: Any, settings: EmailSettings, threads: Threads, files: AttachmentStore
    ) -> None:
        self.app = app
        self.settings = settings
        self.threads = threads
        self.files = files
        # Mails from one sender are filed one at a time, so that a quick second mail
        # finds the ticket the first one opened; different senders go in parallel.
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)
        self._holders: defaultdict[str, int] = defaultdict(int)

    async def take(
        self, raw: bytes, *, envelope_from: str | None = None, envelope_to: Sequence[str] = ()
    ) -> Outcome:
        """File one mail; durable when this returns. Raises only when the app cannot
        store (then the sender must try again later)."""
        try:
            mail = parse(raw, envelope_from)
        except Unusable as exc:
            return await self._ignore(str(exc), None, raw)
        except Exception as exc:  # the parser's own bug on a hostile message
            logger.exception("email: a message could not be parsed")
            return await self._ignore(f"unparseable: {type(exc).__name__}: {exc}", None, raw)
        if mail.automatic is not None:
            return await self._ignore(mail.automatic, mail, raw)
        async with self._lock(mail.sender):
            return await self._file(mail, [a.lower() for a in envelope_to])

    # ------------------------------------------------------------------ filing

    async def _file(self, mail: Mail, envelope_to: list[str]) -> Outcome:
        threads = self.threads
        mid = mail.message_id
        if mid in threads.recorded:
            return Outcome(kind="duplicate", interaction_id=threads.recorded[mid])
        opened = threads.opened_by.get(mid)
        if opened is not None and self._live(opened):  # stored, then stopped before its text
            await self._add(opened, mail)
            return Outcome(kind="queued", interaction_id=opened)
        ticket = threads.ticket_of(mail)
        previous = None
        if ticket is not None:
            current = threads.by_ticket[ticket]
            if self._live(current):
                await self._add(current, mail)
                return Outcome(kind="added", interaction_id=current)
            ended = threads.ended.get(current)
            now = self.app.clock.now()
            if ended is not None and now - ended > self.settings.reopen_within:
                ticket = None  # too old to reopen: a new ticket that follows it
            previous = threads.threads[current]
        if ticket is not None and previous is not None:
            n = threads.reopens(ticket) + 1
            ix = self._interaction(f"email-{ticket}-{n}", ticket, mail, previous.queue)
            ix.preferred_agent = previous.agent
            ix.attributes[CHANNEL]["reopens"] = previous.interaction_id
            kind: Literal["queued", "reopened"] = "reopened"
        else:
            ticket = new_ticket()
            queue = choose_queue(self.settings, mail, envelope_to)
            ix = self._interaction(f"email-{ticket}", ticket, mail, queue)
            if previous is not None:
                ix.attributes[CHANNEL]["follows"] = previous.interaction_id
            kind = "queued"
        submitted = await self.app.submit(ix)
        threads.apply(ev.InteractionQueued(at=submitted.enqueued_at, interaction=submitted))
        await self._add(submitted.id, mail)
        logger.info("email from %s: %s %s in %s", mail.sender, kind, ix.id, ix.queue)
        return Outcome(kind=kind, interaction_id=submitted.id)

    def _interaction(self, id: str, ticket: str, mail: Mail, queue: str) -> Interaction:
        subject = mail.subject.replace(tag(ticket), "").strip() or "(no subject)"
        return Interaction(
            id=id,
            channel=CHANNEL,
            queue=queue,
            subject=subject,
            customer=Customer(
                id=f"email:{mail.sender}",
                name=mail.sender_name,
                identities=[Identity(CHANNEL, mail.sender)],
            ),
            attributes={
                CHANNEL: {"ticket": ticket, "message_id": mail.message_id, "address": mail.sender}
            },
        )

    async def _add(self, interaction_id: str, mail: Mail) -> None:
        """The mail as a message of the interaction: its new text (quoted history kept
        aside), its attachments stored first."""
        links: list[str] = []
        for attachment in mail.attachments:
            size = len(attachment.data)
            if size > self.settings.max_attachment:
                links.append(f"{attachment.name} (not kept: {size} bytes)")
                continue
            digest = await self.files.put(attachment.data)
            links.append(link(interaction_id, digest, attachment.name))
        new, quoted = split_quoted(mail.text)
        data: dict[str, Any] = {
            "message_id": mail.message_id,
            "references": _cited(mail),
            "subject": mail.subject,
            "from": mail.sender,
        }
        if quoted:
            data["quoted"] = quoted
        if mail.html is not None and len(mail.html) <= MAX_HTML:
            data["html"] = mail.html
        suffix = hashlib.sha256(mail.message_id.encode()).hexdigest()[:16]
        message = Message(
            id=f"{interaction_id}-{suffix}",
            interaction_id=interaction_id,
            sender="customer",
            text=new,
            attachments=links,
            attributes={CHANNEL: data},
        )
        stored = await self.app.add_message(message)
        self.threads.apply(ev.MessageAdded(at=stored.at, message=stored))

    async def _ignore(self, reason: str, mail: Mail | None, raw: bytes) -> Outcome:
        if mail is None:
            who, subject, mid = "?", "", f"sha256:{hashlib.sha256(raw).hexdigest()[:32]}"
        else:
            who, subject, mid = mail.sender or "<>", mail.subject, mail.message_id
        logger.info("email from %s (%s) not answered: %s", who, mid, reason)
        note = {"reason": reason, "from": who, "subject": subject[:200], "message_id": mid}
        await self.app.add_note(IGNORED, note)
        return Outcome(kind="ignored", reason=reason)

    # ------------------------------------------------------------------ helpers

    def _live(self, interaction_id: str) -> bool:
        """Whether the conversation is still going (a mail after the agent completed it,
        in wrap-up, reopens it instead)."""
        try:
            state = self.app.router.interaction(interaction_id).state
        except Exception:
            return False
        return state in _GOING

    @asynccontextmanager
    async def _lock(self, key: str) -> AsyncIterator[None]:
        self._holders[key] += 1
        try:
            async with self._locks[key]:
                yield
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key]
                del self._locks[key]


def _cited(mail: Mail) -> list[str]:
    """References for a reply: what this mail cited, in order, without repeats."""
    cited = list(dict.fromkeys([*mail.references, *mail.in_reply_to]))
    return cited[-20:]

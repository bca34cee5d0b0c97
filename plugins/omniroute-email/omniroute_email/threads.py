"""Which ticket a mail belongs to, folded from the event log.

A ticket is the customer's matter: `T` and eight hex digits, shown in subjects as
`[#T1A2B3C4D]`. Its first interaction is `email-<ticket>`; a reply after it closed
reopens it as `email-<ticket>-2`, `-3`... A reply finds its ticket by the Message-IDs it
cites (In-Reply-To, References: a customer's earlier mail, or one of our replies, whose
ids carry the ticket), else by the tag in its subject.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from omniroute import events as ev

from .parse import Mail

__all__ = ["Thread", "Threads", "new_ticket", "tag"]

CHANNEL = "email"
_TAG = re.compile(r"\[#(T[0-9A-F]{8})\]")
_OURS = re.compile(r"^<[^<>@]+\.(T[0-9A-F]{8})@[^<>]+>$")


def new_ticket() -> str:
    return "T" + secrets.token_hex(4).upper()


def tag(ticket: str) -> str:
    return f"[#{ticket}]"


def ticket_in_subject(subject: str) -> str | None:
    found = _TAG.search(subject)
    return found.group(1) if found else None


@dataclass
class Thread:
    """What a reply to one interaction needs: whom to write, what to cite."""

    interaction_id: str
    ticket: str
    address: str
    subject: str
    queue: str
    agent: str | None = None  # who answered it last
    #: The parent's References then its Message-ID (RFC 5322 3.6.4), newest last.
    references: list[str] = field(default_factory=list)
    name: str | None = None  # the customer's display name, as their mail gave it


class Threads:
    def __init__(self) -> None:
        self.by_ticket: dict[str, str] = {}  # ticket -> its newest interaction
        self.threads: dict[str, Thread] = {}  # interaction id -> thread
        self.ended: dict[str, float] = {}  # interaction id -> when it ended
        self.opened_by: dict[str, str] = {}  # Message-ID -> interaction it opened
        self.recorded: dict[str, str] = {}  # Message-ID -> interaction holding it

    # -- finding --------------------------------------------------------------------
    def ticket_of(self, mail: Mail) -> str | None:
        for mid in [*mail.in_reply_to, *reversed(mail.references)]:
            known = self.recorded.get(mid) or self.opened_by.get(mid)
            if known is not None and known in self.threads:
                return self.threads[known].ticket
            ours = _OURS.match(mid)
            if ours is not None and ours.group(1) in self.by_ticket:
                return ours.group(1)
        found = ticket_in_subject(mail.subject)
        return found if found in self.by_ticket else None

    def reopens(self, ticket: str) -> int:
        """How many interactions the ticket has had."""
        return sum(1 for t in self.threads.values() if t.ticket == ticket)

    # -- folding --------------------------------------------------------------------
    def apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.InteractionQueued):
            ix = event.interaction
            data = _email(ix.attributes)
            if ix.channel != CHANNEL or data is None:
                return
            ticket = str(data["ticket"])
            self.by_ticket[ticket] = ix.id
            address = str(data.get("address", ""))
            name = ix.customer.name if ix.customer else None
            self.threads.setdefault(
                ix.id, Thread(ix.id, ticket, address, ix.subject or "", ix.queue, name=name)
            )
            if data.get("message_id"):
                self.opened_by[str(data["message_id"])] = ix.id
        elif isinstance(event, ev.MessageAdded):
            message = event.message
            thread = self.threads.get(message.interaction_id)
            data = _email(message.attributes)
            if thread is None or data is None or message.sender != "customer":
                return
            mid = str(data.get("message_id", ""))
            if mid:
                self.recorded[mid] = message.interaction_id
                cited = [str(r) for r in data.get("references", [])]
                thread.references = [*cited, mid][-20:]
        elif isinstance(event, ev.Assigned):
            thread = self.threads.get(event.interaction_id)
            if thread is not None:
                thread.agent = event.agent_id
        elif (
            isinstance(event, ev.Completed | ev.Closed | ev.Abandoned)
            and event.interaction_id in self.threads
        ):
            self.ended[event.interaction_id] = event.at


def _email(attributes: dict[str, Any]) -> dict[str, Any] | None:
    data = attributes.get(CHANNEL)
    return data if isinstance(data, dict) else None

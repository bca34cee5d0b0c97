"""An agent's message -> the email the customer receives, threaded as RFC 5322 says:
In-Reply-To the customer's last mail, References that mail's References followed by its
Message-ID; the ticket's tag in the subject, and a Message-ID that carries the ticket
(so a reply to it finds the ticket even if the subject was edited). It is addressed to
the customer by name, as their mail named them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

from omniroute.model import Message

from .threads import Thread, tag

__all__ = ["compose", "message_id"]

_RE = re.compile(r"^((re|aw|sv|antw|ref|rif|fw|fwd|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def message_id(message: Message, ticket: str, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "omniroute.invalid"
    return f"<{message.id}.{ticket}@{domain}>"


def compose(message: Message, thread: Thread, sender: str, at: float) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = formataddr((thread.name or "", thread.address))
    subject = _RE.sub("", thread.subject.replace(tag(thread.ticket), "")).strip()
    mail["Subject"] = f"Re: {subject} {tag(thread.ticket)}".replace("  ", " ")
    mail["Date"] = format_datetime(datetime.fromtimestamp(at, UTC))  # +0000: UTC, known
    mail["Message-ID"] = message_id(message, thread.ticket, sender)
    if thread.references:
        mail["In-Reply-To"] = thread.references[-1]
        mail["References"] = " ".join(thread.references)
    mail.set_content(message.text or "")
    return mail

"""An agent's message -> the email the customer receives, threaded: In-Reply-To the
customer's last mail, References the whole chain, the ticket's tag in the subject, and a
Message-ID that carries the ticket (so a reply to it finds the ticket even if the
subject was edited)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

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
    mail["To"] = thread.address
    subject = _RE.sub("", thread.subject.replace(tag(thread.ticket), "")).strip()
    mail["Subject"] = f"Re: {subject} {tag(thread.ticket)}".replace("  ", " ")
    mail["Date"] = formatdate(at, localtime=False)
    mail["Message-ID"] = message_id(message, thread.ticket, sender)
    if thread.references:
        mail["In-Reply-To"] = thread.references[-1]
        mail["References"] = " ".join(thread.references)
    mail.set_content(message.text or "")
    return mail

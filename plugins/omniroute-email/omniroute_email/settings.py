"""`[plugins.email]`: where mail comes in (an SMTP listener, IMAP mailboxes), how replies
go out, and the rules that pick a queue."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["EmailSettings", "Listener", "Mailbox", "Outbound", "Rule"]

Port = Annotated[int, msgspec.Meta(gt=0, lt=65536)]
Bytes = Annotated[int, msgspec.Meta(gt=0)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Rule(_Section, kw_only=True):
    """A new email goes to `queue` when every criterion given matches (any one value of a
    list is enough). Rules are tried in order; the first that matches wins."""

    queue: str
    #: Recipient addresses ("billing@example.com"), To or Cc or the SMTP envelope.
    to: list[str] = []
    #: Sender domains; a parent domain matches its subdomains ("example.com").
    from_domain: list[str] = []
    #: Keywords in the subject, case-insensitive.
    subject: list[str] = []
    #: Keywords in the body, case-insensitive.
    body: list[str] = []


class Listener(_Section, kw_only=True):
    """An SMTP server the business's mail server forwards to."""

    host: str = "127.0.0.1"
    #: 0 picks a free port (tests).
    port: Annotated[int, msgspec.Meta(ge=0, lt=65536)] = 2525
    #: Recipient domains accepted; others are refused at RCPT (550). Empty: any.
    domains: list[str] = []
    #: The name the listener greets with.
    hostname: str | None = None


class Mailbox(_Section, kw_only=True):
    """An IMAP mailbox to read; a message is marked seen once it is durable."""

    host: str
    port: Port = 993
    #: "tls" (implicit TLS, port 993) or "none" (plain, for loopback only).
    security: Literal["tls", "none"] = "tls"
    user: str
    password: str
    folder: str = "INBOX"
    #: Wait for new mail with IMAP IDLE; without it (or if the server lacks it), poll.
    idle: bool = True
    #: Seconds between polls, and the longest an IDLE lasts before a fresh search.
    poll: Seconds = 60.0
    timeout: Seconds = 30.0


class Outbound(_Section, kw_only=True):
    """The SMTP server replies are sent through (aiosmtplib)."""

    host: str
    port: Port = 587
    #: "starttls" (587), "tls" (implicit TLS, 465) or "none" (loopback relays only).
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    #: The From address of replies ("Support <support@example.com>").
    sender: str
    timeout: Seconds = 30.0


class EmailSettings(_Section, kw_only=True):
    #: The queue of a new email no rule picks.
    default_queue: str
    rules: list[Rule] = []
    listen: Listener | None = None
    imap: list[Mailbox] = []
    smtp: Outbound
    #: A customer's reply to a ticket closed at most this long ago reopens it (seconds);
    #: an older ticket's reply starts a new one.
    reopen_within: Annotated[float, msgspec.Meta(ge=0)] = 7 * 86400.0
    #: The largest email accepted, in bytes (larger: 552 at the listener).
    max_message: Bytes = 25 * 1024 * 1024
    #: Attachments larger than this are listed but not kept.
    max_attachment: Bytes = 10 * 1024 * 1024
    #: Folder for attachments (relative to the current folder).
    attachments: str = "email-attachments"
    #: Outbox retry backoff: first wait, doubling up to `retry_max` (seconds).
    retry_first: Seconds = 30.0
    retry_max: Seconds = 3600.0

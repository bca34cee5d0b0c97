"""The SMTP listener (aiosmtpd) a business's mail server forwards to.

It runs on omniroute's own event loop and answers the end of DATA with 250 only once
the mail is durable (an interaction or a message of one, or an `email.ignored` note);
if the store cannot take it, 451 tells the sending server to try again later, as SMTP
servers do. Recipients outside `domains` are refused at RCPT; it relays nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from .intake import Intake
from .settings import Listener

__all__ = ["serve_smtp"]

logger = logging.getLogger("omniroute.email")


class _Handler:
    def __init__(self, intake: Intake, domains: list[str]) -> None:
        self.intake = intake
        self.domains = {d.lower() for d in domains}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if self.domains and domain not in self.domains:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            outcome = await self.intake.take(
                raw, envelope_from=envelope.mail_from, envelope_to=envelope.rcpt_tos
            )
        except Exception:
            logger.exception("email from %s not stored; the sender will retry", envelope.mail_from)
            return "451 4.3.0 not stored, try again later"
        if outcome.kind == "ignored":
            return "250 2.0.0 accepted (not answered: automatic mail)"
        return f"250 2.0.0 accepted as {outcome.interaction_id}"


async def serve_smtp(
    intake: Intake, settings: Listener, max_message: int, *, started: Any = None
) -> None:
    """Listen until cancelled. `started`, if given, is called with the bound port."""
    loop = asyncio.get_running_loop()
    handler = _Handler(intake, settings.domains)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=max_message,
            enable_SMTPUTF8=True,
            hostname=settings.hostname,
            ident="omniroute",
            loop=loop,
        )

    server = await loop.create_server(protocol, settings.host, settings.port)
    port = server.sockets[0].getsockname()[1]
    logger.info("email: SMTP listener on %s:%d", settings.host, port)
    if started is not None:
        started(port)
    try:
        await asyncio.Future()  # until cancelled
    finally:
        server.close()

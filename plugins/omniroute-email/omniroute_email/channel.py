"""The email channel: the listener and mailboxes in, the outbox out, and the ticket
index both use, folded from the event log at start and kept current from then on."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import anyio

from omniroute import events as ev
from omniroute.config import ConfigError
from omniroute.model import Interaction, Message

from .attachments import AttachmentStore
from .imap import read_mailbox
from .intake import IGNORED, Intake
from .listener import serve_smtp
from .outbox import Outbox
from .settings import EmailSettings
from .threads import Threads

__all__ = ["EmailChannel", "problems"]

logger = logging.getLogger("omniroute.email")


class EmailChannel:
    name = "email"

    def __init__(self, settings: EmailSettings, app: Any) -> None:
        _check(settings, set(app.router.queues))
        self.settings = settings
        self.app = app
        self.threads = Threads()
        self.files = AttachmentStore(settings.attachments)
        self.intake = Intake(app, settings, self.threads, self.files)
        self.outbox = Outbox(app, settings, self.threads)
        #: The most recent mails not answered (bounces, auto-replies), newest last.
        self.ignored: deque[dict[str, Any]] = deque(maxlen=500)
        #: The listener's port once it listens (the configured one, or the one given
        #: for port 0).
        self.port: int | None = None
        self.ready = anyio.Event()

    async def run(self, app: Any) -> None:
        with app.subscribe(max_buffer=1_000_000) as events:
            async for _, event in app.store.read():  # what happened before this start
                self._apply(event)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._follow, events)
                tg.start_soon(self.outbox.run)
                if self.settings.listen is not None:
                    tg.start_soon(self._listen)
                for box in self.settings.imap:
                    tg.start_soon(read_mailbox, self.intake, box)
                if self.settings.listen is None:
                    self.ready.set()

    async def deliver(self, interaction: Interaction, message: Message) -> None:
        """An agent's message: into the outbox (it is durable already); the outbox sends
        it, now or after retries. An interaction this channel did not open has no address
        to write to: refused loudly (the API answers 502), never dropped.

        On a follower node of a cluster the channel does not run: the leader's outbox
        takes the message from the committed log, as it takes every agent's reply."""
        if self.app.role != "leader":
            return
        if interaction.id not in self.threads.threads:
            raise LookupError(f"{interaction.id} has no email thread (it was not received as mail)")
        self.outbox.apply(ev.MessageAdded(at=message.at, message=message))

    async def _listen(self) -> None:
        assert self.settings.listen is not None

        def started(port: int) -> None:
            self.port = port
            self.ready.set()

        await serve_smtp(self.intake, self.settings.listen, self.settings.max_message,
                         started=started)  # fmt: skip

    async def _follow(self, events: Any) -> None:
        async for event in events:
            self._apply(event)

    def _apply(self, event: ev.Event) -> None:
        self.threads.apply(event)
        self.outbox.apply(event)
        if isinstance(event, ev.Note) and event.kind == IGNORED:
            self.ignored.append({"at": event.at, **event.data})


def problems(settings: EmailSettings, config: Any) -> list[str]:
    """What the section's types cannot see, each naming its path (`ConfigSpec.check`:
    `omniroute check` and the start run it)."""
    return _problems(settings, {q.name for q in config.queues})


def _check(settings: EmailSettings, queues: set[str]) -> None:
    errors = _problems(settings, queues)
    if errors:
        raise ConfigError(errors)


def _problems(settings: EmailSettings, queues: set[str]) -> list[str]:
    errors = []
    if settings.default_queue not in queues:
        errors.append(f'plugins.email.default_queue: unknown queue "{settings.default_queue}"')
    for i, rule in enumerate(settings.rules):
        if rule.queue not in queues:
            errors.append(f'plugins.email.rules[{i}].queue: unknown queue "{rule.queue}"')
        if not (rule.to or rule.from_domain or rule.subject or rule.body):
            errors.append(
                f"plugins.email.rules[{i}]: give at least one of to, from_domain, subject, body"
            )
    if settings.listen is None and not settings.imap:
        errors.append("plugins.email: give [plugins.email.listen] or [[plugins.email.imap]]")
    return errors

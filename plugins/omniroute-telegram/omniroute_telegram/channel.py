"""The Telegram channel: updates in (polling or webhook), agents' messages and queue
news out, and the end of conversations (`/stop`, or silence).

Nothing the customer sent is lost: an update is confirmed to Telegram (the next
getUpdates offset, or the webhook's 200) only after what it carried is durable in the
event log. Everything an update causes carries its update id, so after a crash the
updates Telegram sends again are recognised (see `recovery`) and not applied twice.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import anyio
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from omniroute import events as ev
from omniroute.model import TERMINAL_STATES, Interaction, InteractionState, Message

from .files import Files, original_name
from .inbound import Inbound
from .outbox import Outbox, Outgoing
from .recovery import recover
from .retry import backoff, retry_after
from .settings import TelegramSettings

__all__ = ["TelegramChannel", "problems"]

WAITING = InteractionState.WAITING

logger = logging.getLogger("omniroute.telegram")

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_PHOTO = (".jpg", ".jpeg", ".png", ".webp")
_VOICE = (".oga", ".ogg", ".opus")


class TelegramChannel:
    name = "telegram"

    def __init__(self, settings: TelegramSettings, app: Any) -> None:
        self.settings = settings
        self.app = app
        self.token, self.secret = _check(settings, set(app.router.queues))
        self.bot = Bot(
            self.token,
            base_url=settings.api_url,
            base_file_url=settings.file_url,
            request=HTTPXRequest(connection_pool_size=16, read_timeout=15, write_timeout=30),
            get_updates_request=HTTPXRequest(read_timeout=settings.poll_timeout + 10),
        )
        self.files = Files(Path(settings.files), settings.max_file_bytes)
        self.outbox = Outbox(
            app,
            self._send_part,
            _parts,
            max_backoff=settings.max_backoff,
            stuck_after=settings.stuck_after,
        )
        self.inbound = Inbound(self)
        self.ready = anyio.Event()  # set once the log is read back and updates flow
        self.last_heard: dict[str, float] = {}  # interaction -> customer's last message
        self._told: dict[str, tuple[int, float]] = {}  # interaction -> position, when
        self._greet: dict[str, str] = {}  # interaction -> greeting due on the next tick

    # ------------------------------------------------------------------ the adapter

    async def run(self, app: Any) -> None:
        await self._initialize()
        state = await recover(app)
        self.inbound.restore(state)
        for item in state.unsent:
            self.outbox.put(item)
        now = app.clock.now()
        for chat, interaction_id in self.inbound.live.items():
            self.last_heard[interaction_id] = now
            for said in self.inbound.pending.pop(chat, []):  # picked just before a crash
                await self.inbound.add(said)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.outbox.run)
            tg.start_soon(self._follow_events)
            tg.start_soon(self._every_second)
            if self.settings.mode == "polling":
                await self._call(self.bot.delete_webhook)
                tg.start_soon(self._poll)
            else:
                await self._call(
                    self.bot.set_webhook,
                    self.settings.webhook_url,
                    secret_token=self.secret,
                    max_connections=40,
                    allowed_updates=["message", "callback_query"],
                )
            self.ready.set()

    async def deliver(self, interaction: Interaction, message: Message) -> None:
        """An agent's message, durable already. The routing node's channel sends it (it
        follows every durable message, wherever it was written) through the outbox,
        retrying until Telegram takes it; here only its files are checked."""
        for url in message.attachments:
            found = self.files.from_url(url)
            if found is None or found[0] != interaction.id:
                raise ValueError(f"{url}: not a file of this conversation (upload it first)")

    def _send_later(self, message: Message, chat: int) -> None:
        self.outbox.put(
            Outgoing(
                chat=chat,
                text=message.text,
                files=list(message.attachments),
                message_id=message.id,
                interaction_id=message.interaction_id,
            )
        )

    def say(self, chat: int, text: str, **fields: Any) -> None:
        """A line from the bot (greeting, place in line): not kept in the log."""
        self.outbox.put(Outgoing(chat=chat, text=text, **fields))

    def menu(self) -> InlineKeyboardMarkup:
        buttons = [
            [InlineKeyboardButton(label, callback_data=f"topic:{index}")]
            for index, label in enumerate(self.settings.topics)
        ]
        return InlineKeyboardMarkup(buttons)

    # ------------------------------------------------------------------ updates in

    async def _poll(self) -> None:
        """getUpdates until cancelled; the offset moves past an update only once it is
        durable (a failure keeps it, so Telegram sends the update again)."""
        offset = 0
        failures = 0
        clock = self.app.clock
        while True:
            try:
                updates = await self.inbound.fetch(offset, self.settings.poll_timeout)
                await self.inbound.handle_batch(updates)
            except Exception as exc:
                failures += 1
                wait = retry_after(exc) or backoff(failures, self.settings.max_backoff)
                logger.warning("telegram: getUpdates failed (%s); again in %.1f s", exc, wait)
                await clock.sleep_until(clock.now() + wait)
                continue
            failures = 0
            if updates:
                offset = max(update_id for update_id, _ in updates) + 1

    def authentic(self, secret: str | None) -> bool:
        """Whether a webhook post carries the secret token set with the webhook."""
        return self.secret is not None and secret is not None and _same(secret, self.secret)

    async def receive(self, body: bytes) -> int:
        """One update posted by Telegram (its secret checked already): the HTTP status to
        answer (200 only once it is durable; Telegram posts it again after anything else).
        Runs on the node that runs the channel (the leader)."""
        if not self.ready.is_set():
            return 503
        try:
            update = self.inbound.parse_one(body)
            await self.inbound.handle_batch([update])
        except Exception:
            logger.exception("telegram: a webhook update could not be stored; Telegram retries")
            return 503
        return 200

    # ------------------------------------------------------------------ sending

    async def _send_part(self, item: Outgoing, part: int) -> None:
        if item.callback is not None and part == 0:
            try:
                await self.bot.answer_callback_query(item.callback)
            except TelegramError as exc:  # expired after 15 minutes: not worth a retry
                if retry_after(exc) is not None:
                    raise
            return
        part -= item.callback is not None
        if not item.files:
            await self.bot.send_message(item.chat, item.text, reply_markup=item.markup)
            return
        url = item.files[part]
        found = self.files.from_url(url)
        if found is None:
            raise FileNotFoundError(url)
        path = found[1]
        caption = (item.text or None) if part == 0 else None
        content = await anyio.Path(path).read_bytes()
        name = original_name(path.name)
        suffix = path.suffix.lower()
        if suffix in _PHOTO:
            await self.bot.send_photo(item.chat, content, caption=caption, filename=name)
        elif suffix in _VOICE:
            await self.bot.send_voice(item.chat, content, caption=caption, filename=name)
        else:
            await self.bot.send_document(item.chat, content, caption=caption, filename=name)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """A Bot API call retried until it succeeds (start-up calls)."""
        attempt = 0
        clock = self.app.clock
        while True:
            try:
                return await method(*args, **kwargs)
            except TelegramError as exc:
                attempt += 1
                wait = retry_after(exc) or backoff(attempt, self.settings.max_backoff)
                logger.warning("telegram: %s failed (%s); again in %.1f s", method, exc, wait)
                await clock.sleep_until(clock.now() + wait)

    async def _initialize(self) -> None:
        await self._call(self.bot.initialize)

    # ------------------------------------------------------------------ news for customers

    async def _follow_events(self) -> None:
        """Agents' messages to send, and news for customers. A subscription dropped for
        reading too slowly is taken again, and what it missed is read from the log."""
        while True:
            await self._follow_subscription()
            logger.error("telegram: fell behind the event stream; reading the log again")
            pending = {item.message_id for item in self.outbox.pending()}
            for item in (await recover(self.app)).unsent:
                if item.message_id not in pending:
                    self.outbox.put(item)

    async def _follow_subscription(self) -> None:
        with self.app.subscribe(max_buffer=100_000) as events:
            async for event in events:
                interaction_id = getattr(event, "interaction_id", None)
                if isinstance(event, ev.MessageAdded):
                    interaction_id = event.message.interaction_id
                chat = self.inbound.chat_of(interaction_id) if interaction_id else None
                if chat is None:
                    continue
                if isinstance(event, ev.MessageAdded):
                    if event.message.sender.split(":")[0] in ("agent", "supervisor"):
                        self._send_later(event.message, chat)
                elif isinstance(event, ev.Assigned):
                    name = self._agent_name(event.agent_id)
                    self.say(chat, f"{name} joined the conversation.")
                elif isinstance(event, ev.Completed | ev.Abandoned | ev.Closed):
                    text = getattr(event, "message", None) or "The conversation has ended."
                    self.say(chat, text)
                    self.inbound.ended(interaction_id)
                    self.last_heard.pop(interaction_id, None)
                    self._told.pop(interaction_id, None)

    async def _every_second(self) -> None:
        """Greetings with the place in line for newcomers, new places for those waiting
        (at most every `position_every`), and the end of conversations gone silent."""
        clock = self.app.clock
        every = self.settings.position_every
        while True:
            await clock.sleep_until(clock.now() + 1.0)
            now = clock.now()
            lines: dict[str, dict[str, int]] = {}  # queue -> interaction -> place
            for chat, interaction_id in list(self.inbound.live.items()):
                ix = self._live(interaction_id)
                if ix is None:
                    continue
                if now - self.last_heard.get(interaction_id, now) > self.settings.silence:
                    await self.end(interaction_id, "The customer went silent.")
                    continue
                greeting = self._greet.pop(interaction_id, None)
                told, when = self._told.get(interaction_id, (0, now))
                if greeting is None and (now - when < every or ix.state is not WAITING):
                    continue
                if ix.queue not in lines:  # one pass over a queue, not one per customer
                    waiting = self.app.router.waiting(ix.queue)
                    lines[ix.queue] = {w.id: place for place, w in enumerate(waiting, 1)}
                position = lines[ix.queue].get(interaction_id, 0)
                if greeting is not None:
                    self._told[interaction_id] = (position, now)
                    suffix = f" You are number {position} in line." if position else ""
                    self.say(chat, greeting + suffix)
                elif position and position != told:
                    self._told[interaction_id] = (position, now)
                    self.say(chat, f"You are number {position} in line.")

    def greet(self, interaction_id: str, text: str) -> None:
        """Say `text` with the customer's place in line, on the next tick."""
        self._greet[interaction_id] = text

    async def end(self, interaction_id: str, why: str) -> None:
        """End a conversation for the customer: abandoned if nobody answered yet, else
        completed (the agent's wrap-up starts), with a line saying why."""
        ix = self._live(interaction_id)
        if ix is None:
            return
        if ix.state in (InteractionState.WAITING, InteractionState.OFFERED):
            await self.app.abandon(interaction_id)
        elif ix.state is InteractionState.ASSIGNED:
            await self.app.complete(interaction_id, None)
        logger.info("telegram: %s ended: %s", interaction_id, why)

    # ------------------------------------------------------------------ bookkeeping

    def _live(self, interaction_id: str) -> Interaction | None:
        try:
            ix: Interaction = self.app.router.interaction(interaction_id)
        except Exception:
            return None
        return None if ix.state in TERMINAL_STATES else ix

    def _agent_name(self, agent_id: str) -> str:
        if agent_id not in self.app.router.agents:
            return "An agent"
        config = self.app.router.agent(agent_id).config
        return str(config.name or config.id)


def _parts(item: Outgoing) -> int:
    return (item.callback is not None) + (len(item.files) or (1 if item.text else 0))


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def problems(settings: TelegramSettings, config: Any) -> list[str]:
    """What the section's types cannot see (queues, the token's variable), each naming
    its path (`ConfigSpec.check`: `omniroute check` and the start run it)."""
    return _problems(settings, {q.name for q in config.queues})[0]


def _check(settings: TelegramSettings, queues: set[str]) -> tuple[str, str | None]:
    """The token (and webhook secret) from the environment; every mistake named."""
    from omniroute.config import ConfigError

    errors, token, secret = _problems(settings, queues)
    if errors:
        raise ConfigError(errors)
    return token, secret


def _problems(settings: TelegramSettings, queues: set[str]) -> tuple[list[str], str, str | None]:
    errors = []
    token = os.environ.get(settings.token_env, "")
    if not token:
        errors.append(
            f"plugins.telegram.token_env: the environment variable {settings.token_env} "
            "holds no bot token (BotFather gives one)"
        )
    if settings.topics:
        errors += [
            f'plugins.telegram.topics."{label}": unknown queue "{queue}"'
            for label, queue in settings.topics.items()
            if queue not in queues
        ]
    elif settings.queue is None:
        errors.append("plugins.telegram.queue: name the queue chats join (or give topics)")
    if settings.queue is not None and settings.queue not in queues:
        errors.append(f'plugins.telegram.queue: unknown queue "{settings.queue}"')
    secret = None
    if settings.mode == "webhook":
        if not settings.webhook_url:
            errors.append("plugins.telegram.webhook_url: webhook mode needs the public URL")
        secret = os.environ.get(settings.secret_env, "")
        if not _SECRET.fullmatch(secret):
            errors.append(
                f"plugins.telegram.secret_env: the environment variable {settings.secret_env} "
                "must hold 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
    return errors, token, secret

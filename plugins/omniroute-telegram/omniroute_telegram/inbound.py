"""What a customer's update does: start a conversation, add to one, pick a topic from
the menu, or end one with /stop. Every effect is durable before the update is confirmed
and carries the update's id (interaction `telegram-<chat>-<update>`, message
`tg-<update>`), so an update Telegram sends again after a crash changes nothing twice.

Updates of one chat are handled in order; chats of one batch in parallel (their events
share group commits).
"""

from __future__ import annotations

import json
import logging
import warnings
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from telegram import Message as TgMessage
from telegram import Update, User
from telegram.error import TelegramError
from telegram.warnings import PTBUserWarning

from omniroute.model import Customer, Identity, Interaction, Message

from .files import FileTooLarge
from .outbox import Outgoing
from .recovery import PENDING, REJECTED, Recovered
from .retry import backoff, is_permanent, retry_after

if TYPE_CHECKING:
    from .channel import TelegramChannel

__all__ = ["Inbound"]

logger = logging.getLogger("omniroute.telegram")

ALLOWED = ["message", "callback_query"]
#: (update id or None, Update, or the raw JSON that is not a valid update)
Item = tuple[int | None, Any]


class Inbound:
    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        self.app = channel.app
        self.settings = channel.settings
        self.live: dict[int, str] = {}  # chat -> its live interaction
        self._chats: dict[str, int] = {}  # interaction -> chat
        self.seen: dict[int, int] = {}  # chat -> newest update with a durable effect
        self.pending: dict[int, list[Message]] = {}  # chat -> written before picking a topic
        self._locks: dict[int, anyio.Lock] = {}

    def restore(self, state: Recovered) -> None:
        self.live = dict(state.live)
        self._chats = {ix: chat for chat, ix in state.live.items()}
        self.seen = dict(state.seen)
        self.pending = {chat: list(ms) for chat, ms in state.pending.items()}

    def chat_of(self, interaction_id: str) -> int | None:
        return self._chats.get(interaction_id)

    def ended(self, interaction_id: str) -> None:
        chat = self._chats.pop(interaction_id, None)
        if chat is not None and self.live.get(chat) == interaction_id:
            del self.live[chat]

    # ------------------------------------------------------------------ reading updates

    async def fetch(self, offset: int, timeout: int) -> list[Item]:
        """The next updates from getUpdates, confirming those before `offset`."""
        bot = self.channel.bot
        try:
            updates = await bot.get_updates(offset=offset, timeout=timeout, allowed_updates=ALLOWED)
        except TelegramError:
            raise
        except Exception as exc:  # one update python-telegram-bot cannot read: one by one
            logger.warning("telegram: an update could not be read (%r); reading raw", exc)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PTBUserWarning)
                raw = await bot.do_api_request(
                    "getUpdates", api_kwargs={"offset": offset, "timeout": 0}
                )
            return [self._parse(item) for item in raw or []]
        return [(u.update_id, u) for u in updates]

    def parse_one(self, body: bytes) -> Item:
        try:
            data = json.loads(body)
        except ValueError:
            return None, body[:2000].decode(errors="replace")
        return self._parse(data)

    def _parse(self, data: Any) -> Item:
        update_id = data.get("update_id") if isinstance(data, dict) else None
        update_id = update_id if isinstance(update_id, int) else None
        try:
            update = Update.de_json(data, self.channel.bot)
        except Exception:
            return update_id, data
        return (update_id, update) if isinstance(update, Update) else (update_id, data)

    # ------------------------------------------------------------------ handling

    async def handle_batch(self, items: list[Item]) -> None:
        """Make every update of a batch durable (or record why it was refused)."""
        by_chat: dict[int, list[tuple[int, Update]]] = {}
        for update_id, update in items:
            if not isinstance(update, Update) or update_id is None:
                await self._reject(update_id, update, "not a valid update")
                continue
            chat = _chat_id(update)
            if chat is None:
                logger.info("telegram: update %s is not from a private chat; ignored", update_id)
                continue
            by_chat.setdefault(chat, []).append((update_id, update))
        if len(by_chat) == 1:
            [(chat, updates)] = by_chat.items()
            await self._chat_updates(chat, updates)
            return
        async with anyio.create_task_group() as tg:
            for chat, updates in by_chat.items():
                tg.start_soon(self._chat_updates, chat, updates)

    async def _chat_updates(self, chat: int, updates: list[tuple[int, Update]]) -> None:
        lock = self._locks.setdefault(chat, anyio.Lock())
        async with lock:
            for update_id, update in updates:
                if update_id < self.seen.get(chat, -1):
                    continue  # already durable before a restart: Telegram sent it again
                await self._one(chat, update_id, update)
                self.seen[chat] = max(self.seen.get(chat, -1), update_id)

    async def _one(self, chat: int, update_id: int, update: Update) -> None:
        if update.callback_query is not None:
            query = update.callback_query
            self.channel.outbox.put(Outgoing(chat=chat, callback=query.id))
            await self._picked(chat, update_id, query.from_user, query.data or "")
            return
        message = update.message
        if message is None or message.from_user is None:
            return  # edits, reactions...: not part of the conversation
        text = (message.text or message.caption or "").strip()
        command = text.split()[0].split("@")[0].lower() if text.startswith("/") else None
        live = self.live.get(chat)
        if command == "/stop":
            await self._stop(chat, update_id, live)
            return
        if command == "/start" and len(text.split()) == 1:
            await self._hello(chat, update_id, message.from_user, live)
            return
        pending = self.pending.get(chat, [])
        target = live or (pending[0].interaction_id if pending else _new_id(chat, update_id))
        body, attachments = await self._content(message, text, target)
        said = Message(
            id=f"tg-{update_id}",
            interaction_id=target,
            sender="customer",
            text=body,
            attachments=attachments,
            attributes={"telegram": {"chat": chat, "update": update_id}},
        )
        if live is not None:
            await self.add(said)
            self.channel.last_heard[live] = self.app.clock.now()
        elif self.settings.topics:
            await self._wait_for_topic(chat, said)
        else:
            await self._start(chat, update_id, message.from_user, self._queue(), None, [said])

    async def _hello(self, chat: int, update_id: int, user: User, live: str | None) -> None:
        if live is not None:
            self.channel.say(chat, "We are here: write your message.")
        elif self.settings.topics:
            self.channel.say(chat, self.settings.greeting)
            self.channel.say(chat, self.settings.menu_text, markup=self.channel.menu())
        else:
            await self._start(chat, update_id, user, self._queue(), None, [])

    async def _wait_for_topic(self, chat: int, said: Message) -> None:
        """Before a topic is picked there is no interaction: the message is kept as a
        note in the log, and joins the interaction once the customer picks."""
        pending = self.pending.setdefault(chat, [])
        if any(m.id == said.id for m in pending):
            return
        await self.app.add_note(PENDING, {"chat": chat, "message": msgspec.to_builtins(said)})
        pending.append(said)
        if len(pending) == 1:
            self.channel.say(chat, self.settings.greeting)
            self.channel.say(chat, self.settings.menu_text, markup=self.channel.menu())

    async def _picked(self, chat: int, update_id: int, user: User, data: str) -> None:
        labels = list(self.settings.topics)
        index = data.removeprefix("topic:")
        if not index.isdigit() or int(index) >= len(labels):
            return  # a button of an older menu
        if self.live.get(chat) is not None:
            self.channel.say(chat, "You are already in line; an agent will answer here.")
            return
        label = labels[int(index)]
        pending = self.pending.get(chat, [])
        interaction_id = pending[0].interaction_id if pending else _new_id(chat, update_id)
        queue = self.settings.topics[label]
        await self._start(chat, update_id, user, queue, label, pending, interaction_id)

    async def _stop(self, chat: int, update_id: int, live: str | None) -> None:
        if live is None:
            if self.pending.pop(chat, None):
                await self.app.add_note(PENDING, {"chat": chat, "dropped": update_id})
            self.channel.say(chat, "There is no conversation to end.")
            return
        line = Message(
            id=f"tg-{update_id}",
            interaction_id=live,
            sender="system",
            text="The customer ended the conversation (/stop).",
            attributes={"telegram": {"chat": chat, "update": update_id}},
        )
        await self.add(line)
        await self.channel.end(live, "/stop")

    async def _start(
        self,
        chat: int,
        update_id: int,
        user: User,
        queue: str,
        subject: str | None,
        messages: list[Message],
        interaction_id: str | None = None,
    ) -> None:
        interaction_id = interaction_id or _new_id(chat, update_id)
        attributes: dict[str, Any] = {"telegram": {"chat": chat, "update": update_id}}
        if user.username:
            attributes["telegram"]["username"] = user.username
        ix = Interaction(
            id=interaction_id,
            channel="telegram",
            queue=queue,
            subject=subject,
            customer=Customer(
                id=f"telegram:{user.id}",
                name=user.full_name,
                identities=[Identity("telegram", str(user.id))],
            ),
            attributes=attributes,
        )
        if self.channel._live(interaction_id) is None:
            # Durable with its first messages: only now may the update be confirmed.
            await self.app.submit(ix, messages)
        else:  # the update came again after a restart: add what is missing
            for message in messages:
                await self.add(message)
        self.live[chat] = interaction_id
        self._chats[interaction_id] = chat
        self.channel.last_heard[interaction_id] = self.app.clock.now()
        self.pending.pop(chat, None)
        greeting = "Thank you." if self.settings.topics else self.settings.greeting
        self.channel.greet(interaction_id, greeting)

    async def add(self, message: Message) -> None:
        known = self.app.conversations.messages(message.interaction_id)
        if any(m.id == message.id for m in known):
            return
        await self.app.add_message(message)

    def _queue(self) -> str:
        assert self.settings.queue is not None  # checked at start-up
        return self.settings.queue

    # ------------------------------------------------------------------ files

    async def _content(
        self, message: TgMessage, text: str, interaction_id: str
    ) -> tuple[str, list[str]]:
        """The text and the files (downloaded, kept) of a customer's message."""
        files: list[tuple[Any, str]] = []
        if message.photo:
            files.append((message.photo[-1], "photo.jpg"))
        if message.document:
            files.append((message.document, message.document.file_name or "document"))
        if message.voice:
            files.append((message.voice, "voice.ogg"))
        if message.audio:
            files.append((message.audio, message.audio.file_name or "audio.mp3"))
        lines = [text] if text else []
        urls: list[str] = []
        limit = self.settings.max_file_bytes
        for item, name in files:
            size = item.file_size or 0
            try:
                if size > limit:
                    raise FileTooLarge(f"{name}: {size} bytes, over {limit}")
                content = await self._download(item.file_id)
                urls.append(await self.channel.files.save(interaction_id, name, content))
            except FileTooLarge as exc:
                lines.append(f"[a file was not kept: {exc}]")
        if not lines and not urls:
            kind = next((k for k in _KINDS if getattr(message, k, None)), "message")
            lines.append(f"[a {kind.replace('_', ' ')}, which the inbox cannot show]")
        return "\n".join(lines), urls

    async def _download(self, file_id: str) -> bytes:
        """A file from Telegram, retried on passing failures; what keeps failing
        raises, so the update is not confirmed and comes again."""
        clock = self.app.clock
        attempt = 0
        while True:
            try:
                found = await self.channel.bot.get_file(file_id)
                return bytes(await found.download_as_bytearray())
            except TelegramError as exc:
                attempt += 1
                if is_permanent(exc) or attempt >= 5:
                    raise
                wait = retry_after(exc) or backoff(attempt, self.settings.max_backoff)
                await clock.sleep_until(clock.now() + wait)

    async def _reject(self, update_id: int | None, raw: Any, why: str) -> None:
        """An update that cannot be understood is kept in the log with the reason."""
        logger.warning("telegram: update %s refused: %s", update_id, why)
        text = raw if isinstance(raw, str) else json.dumps(raw, default=str)[:2000]
        await self.app.add_note(REJECTED, {"update_id": update_id, "reason": why, "update": text})


_KINDS = ("sticker", "video", "video_note", "location", "contact", "poll", "animation")


def _new_id(chat: int, update_id: int) -> str:
    return f"telegram-{chat}-{update_id}"


def _chat_id(update: Update) -> int | None:
    chat = update.effective_chat
    if chat is None or chat.type != "private":
        return None
    return int(chat.id)

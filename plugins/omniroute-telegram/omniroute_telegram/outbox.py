"""Everything the bot sends, through one retrying path: nothing is dropped silently.

An agent's message is durable before it reaches here (the app stored it); the outbox
sends it, retrying passing failures with backoff and honouring 429's `retry_after`,
and records `telegram.sent` once Telegram took it, so that a restart sends again only
what was never confirmed. A message that keeps failing is announced in its conversation
(agents and supervisors see it) while attempts go on; one Telegram refuses for good
(the customer blocked the bot) is announced and recorded as `telegram.failed`.

Messages to one chat keep their order: chats are spread over a few lanes, each sending
one message at a time.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec

from omniroute.model import Message

from .retry import backoff, is_permanent, retry_after

__all__ = ["Outbox", "Outgoing"]

logger = logging.getLogger("omniroute.telegram")

SENT, FAILED = "telegram.sent", "telegram.failed"


class Outgoing(msgspec.Struct, kw_only=True):
    """One thing to send to a chat. `message_id` marks an agent's (durable) message."""

    chat: int
    text: str = ""
    files: list[str] = []  # URLs of this channel's files
    markup: Any = None  # an inline keyboard
    callback: str | None = None  # a callback query to answer first
    message_id: str | None = None
    interaction_id: str | None = None
    attempts: int = 0
    error: str = ""
    since: float = 0.0
    parts_done: int = 0
    stuck_told: bool = False


#: Sends one part (index) of an item; raises what python-telegram-bot raised.
Sender = Callable[[Outgoing, int], Awaitable[None]]


class Outbox:
    def __init__(
        self,
        app: Any,
        send: Sender,
        parts: Callable[[Outgoing], int],
        *,
        max_backoff: float,
        stuck_after: int,
        lanes: int = 8,
    ) -> None:
        self.app = app
        self._send = send
        self._parts = parts
        self.max_backoff = max_backoff
        self.stuck_after = stuck_after
        self._lanes: list[deque[Outgoing]] = [deque() for _ in range(lanes)]
        self._wake = [anyio.Event() for _ in range(lanes)]
        self._paused_until = 0.0  # a 429 pauses every lane
        self.sent = 0

    def put(self, item: Outgoing) -> None:
        item.since = item.since or self.app.clock.now()
        lane = item.chat % len(self._lanes)
        self._lanes[lane].append(item)
        self._wake[lane].set()

    def pending(self) -> list[Outgoing]:
        """What waits to be sent, oldest first per lane (supervisors see it)."""
        return [item for lane in self._lanes for item in lane]

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for lane in range(len(self._lanes)):
                tg.start_soon(self._lane, lane)

    async def _lane(self, lane: int) -> None:
        items = self._lanes[lane]
        clock = self.app.clock
        while True:
            if not items:
                self._wake[lane] = anyio.Event()
                await self._wake[lane].wait()
                continue
            if clock.now() < self._paused_until:
                await clock.sleep_until(self._paused_until)
            item = items[0]
            try:
                for part in range(item.parts_done, self._parts(item)):
                    await self._send(item, part)
                    item.parts_done = part + 1
            except Exception as exc:
                if is_permanent(exc):
                    items.popleft()
                    await self._failed(item, exc)
                    continue
                await self._retry_later(item, exc)
                continue
            items.popleft()
            self.sent += 1
            if item.message_id is not None:
                await self._remember(SENT, {"message": item.message_id})

    async def _retry_later(self, item: Outgoing, exc: Exception) -> None:
        item.attempts += 1
        item.error = f"{type(exc).__name__}: {exc}"
        clock = self.app.clock
        wait = retry_after(exc)
        if wait is not None:
            self._paused_until = max(self._paused_until, clock.now() + wait)
        else:
            wait = backoff(item.attempts, self.max_backoff)
        logger.warning(
            "telegram: sending to chat %s failed (%s, attempt %d); again in %.1f s",
            item.chat,
            item.error,
            item.attempts,
            wait,
        )
        if item.attempts >= self.stuck_after and not item.stuck_told:
            item.stuck_told = True
            await self._tell(
                item,
                f"Telegram has not accepted a message yet ({item.error}); omniroute keeps trying.",
            )
        await clock.sleep_until(clock.now() + wait)

    async def _failed(self, item: Outgoing, exc: Exception) -> None:
        logger.error("telegram: chat %s refused a message for good: %s", item.chat, exc)
        if item.message_id is None:
            return
        await self._remember(FAILED, {"message": item.message_id, "error": str(exc)})
        await self._tell(item, f"Not delivered to Telegram: {exc}")

    async def _tell(self, item: Outgoing, text: str) -> None:
        """A system line in the conversation: the agent and supervisors see it."""
        if item.interaction_id is None:
            return
        note = Message(
            id=f"{item.interaction_id}-tg-{secrets.token_hex(4)}",
            interaction_id=item.interaction_id,
            sender="system",
            text=text,
        )
        try:
            await self.app.add_message(note)
        except Exception:  # the conversation ended: the log and the outbox route show it
            logger.warning("telegram: %s (conversation %s is over)", text, item.interaction_id)

    async def _remember(self, kind: str, data: dict[str, Any]) -> None:
        try:
            await self.app.add_note(kind, data)
        except Exception:  # stopping: after a restart it is sent again (at least once)
            logger.warning("telegram: could not record %s %s", kind, data)

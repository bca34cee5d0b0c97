"""What the channel knew before a restart, read back from the event log: which chat each
live conversation belongs to, the newest update of each chat that was made durable (so
updates Telegram sends again are recognised), messages written before a topic was
picked, and agents' messages Telegram never confirmed (sent again).

It reads the whole log once at start-up, before any update is taken.
"""

from __future__ import annotations

from typing import Any

import msgspec

from omniroute import events as ev
from omniroute.model import TERMINAL_STATES, Message

from .outbox import FAILED, SENT, Outgoing

__all__ = ["PENDING", "REJECTED", "Recovered", "recover"]

PENDING, REJECTED = "telegram.pending", "telegram.rejected"


class Recovered(msgspec.Struct, kw_only=True):
    live: dict[int, str] = {}
    seen: dict[int, int] = {}
    pending: dict[int, list[Message]] = {}
    unsent: list[Outgoing] = []


async def recover(app: Any) -> Recovered:
    chats: dict[str, int] = {}  # telegram interaction -> chat
    seen: dict[int, int] = {}
    pending: dict[int, dict[str, Message]] = {}
    unsent: dict[str, Message] = {}  # agents' messages not confirmed yet

    def saw(chat: int, update: Any) -> None:
        if isinstance(update, int) and update > seen.get(chat, -1):
            seen[chat] = update

    async for _, event in app.store.read():
        if isinstance(event, ev.InteractionQueued):
            ix = event.interaction
            tg = ix.attributes.get("telegram")
            if ix.channel == "telegram" and isinstance(tg, dict) and "chat" in tg:
                chats[ix.id] = int(tg["chat"])
                saw(int(tg["chat"]), tg.get("update"))
        elif isinstance(event, ev.MessageAdded):
            m = event.message
            tg = m.attributes.get("telegram")
            if isinstance(tg, dict) and "chat" in tg:
                chat = int(tg["chat"])
                saw(chat, tg.get("update"))
                pending.get(chat, {}).pop(m.id, None)
            elif m.interaction_id in chats and m.sender.split(":")[0] in ("agent", "supervisor"):
                unsent[m.id] = m
        elif isinstance(event, ev.Note):
            data = event.data
            if event.kind in (SENT, FAILED):
                unsent.pop(str(data.get("message")), None)
            elif event.kind == PENDING and "message" in data:
                said = msgspec.convert(data["message"], Message)
                chat = int(data["chat"])
                pending.setdefault(chat, {})[said.id] = said
                saw(chat, said.attributes.get("telegram", {}).get("update"))
            elif event.kind == PENDING and "dropped" in data:
                pending.pop(int(data["chat"]), None)
                saw(int(data["chat"]), data["dropped"])

    live: dict[int, str] = {}
    for interaction_id, chat in chats.items():
        try:
            ix = app.router.interaction(interaction_id)
        except Exception:
            continue
        if ix.state not in TERMINAL_STATES:
            live[chat] = interaction_id
    return Recovered(
        live=live,
        seen=seen,
        pending={chat: list(ms.values()) for chat, ms in pending.items() if ms},
        unsent=[
            Outgoing(
                chat=chats[m.interaction_id],
                text=m.text,
                files=list(m.attachments),
                message_id=m.id,
                interaction_id=m.interaction_id,
            )
            for m in unsent.values()
        ],
    )

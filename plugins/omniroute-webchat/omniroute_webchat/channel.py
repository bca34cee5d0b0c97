"""The web chat channel: customers' sockets in, agents' messages and queue news out.

A customer's browser holds a signed session naming its interaction, so a page reload
(or a server restart, when `[server] secret` is set) resumes the same conversation.
Nothing a customer sends is acknowledged before it is durable: the widget shows a
message as sent only when the `ack` for it arrives.

Everything a customer is told (agents' messages included) comes from the committed
event stream, so with several nodes the node holding the customer's socket tells them,
whichever node the agent uses.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from typing import Any

import anyio
import msgspec
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.websockets import WebSocket, WebSocketDisconnect

from omniroute import events as ev
from omniroute.model import (
    TERMINAL_STATES,
    Customer,
    Identity,
    Interaction,
    InteractionState,
    Message,
)
from omniroute.store import StoreError

from .settings import WebchatSettings

__all__ = ["WebchatChannel"]

logger = logging.getLogger("omniroute.webchat")


class _Start(msgspec.Struct, tag="start", forbid_unknown_fields=True):
    name: str
    topic: str | None = None


class _Resume(msgspec.Struct, tag="resume", forbid_unknown_fields=True):
    session: str


class _Say(msgspec.Struct, tag="message", forbid_unknown_fields=True):
    text: str
    id: str | None = None  # the widget's own id, echoed in the ack


class _Typing(msgspec.Struct, tag="typing", forbid_unknown_fields=True):
    pass


class _End(msgspec.Struct, tag="end", forbid_unknown_fields=True):
    pass


_Opening = _Start | _Resume
_Inbound = _Say | _Typing | _End
_opening = msgspec.json.Decoder(_Opening)
_inbound = msgspec.json.Decoder(_Inbound)


class Refused(Exception):
    """Ends a customer's socket with a close code and a reason the widget can show."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebchatChannel:
    name = "webchat"

    def __init__(self, settings: WebchatSettings, app: Any) -> None:
        queues = set(app.router.queues)
        unknown = {topic: q for topic, q in settings.topics.items() if q not in queues}
        if not settings.topics or unknown:
            from omniroute.config import ConfigError

            raise ConfigError(
                [
                    f'plugins.webchat.topics."{topic}": unknown queue "{queue}"'
                    for topic, queue in unknown.items()
                ]
                or ["plugins.webchat.topics: name at least one topic and its queue"]
            )
        self.settings = settings
        self.app = app
        secret = app.config.server.secret or secrets.token_urlsafe(32)
        self._sessions = URLSafeSerializer(secret, salt="omniroute-webchat")
        self._sockets: dict[str, set[WebSocket]] = {}  # interaction id -> customer sockets
        self._away_since: dict[str, float] = {}  # waiting interactions nobody watches
        self._positions: dict[str, int] = {}  # last position told, per interaction
        self._per_address: dict[str, int] = {}
        self._chats: dict[str, deque[float]] = {}  # address -> when its chats started
        self._sent: dict[str, deque[float]] = {}  # interaction -> its customer's messages

    # ------------------------------------------------------------------ the adapter

    async def run(self, app: Any) -> None:
        """Tell customers what happens to their chats, and notice who left for good."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._follow_events)
            tg.start_soon(self._every_second)

    async def deliver(self, interaction: Interaction, message: Message) -> None:
        """Nothing to do here: an agent's message reaches the customer's open pages from
        the event stream once it is committed (`_follow_events`), on the node that holds
        them (none open is fine: the conversation is sent again when a page comes back)."""

    # ------------------------------------------------------------------ the socket

    async def socket(self, websocket: WebSocket) -> None:
        """The public endpoint the widget connects to."""
        address = websocket.client.host if websocket.client else ""
        origin = websocket.headers.get("origin")
        allowed = self.settings.allowed_origins
        await websocket.accept()  # refusals below close with a code the widget can read
        if allowed and origin not in allowed:
            await _close(websocket, 4403, "this page may not open the chat")
            return
        if self._per_address.get(address, 0) >= self.settings.connections_per_address:
            await _close(websocket, 4429, "too many chats open from your address")
            return
        self._per_address[address] = self._per_address.get(address, 0) + 1
        interaction_id: str | None = None
        try:
            interaction_id = await self._open(websocket, address)
            await self._converse(websocket, interaction_id)
        except Refused as exc:
            await _close(websocket, exc.code, exc.reason)
        except StoreError:  # nothing was acknowledged; the widget may reconnect and resend
            await _close(websocket, 1013, "try again in a moment")
        except WebSocketDisconnect:
            pass
        finally:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
            if interaction_id is not None:
                self._detach(interaction_id, websocket)

    async def _open(self, websocket: WebSocket, address: str) -> str:
        """The first message starts a chat or resumes one; answers its interaction id."""
        await websocket.send_json(
            {
                "type": "hello",
                "greeting": self.settings.greeting,
                "topics": list(self.settings.topics),
            }
        )
        with anyio.move_on_after(30) as waited:  # a socket that never starts a chat
            raw = await _receive(websocket, self.settings.max_message)
        if waited.cancelled_caught:
            raise Refused(4408, "no chat was started")
        opening = _decode(_opening, raw)
        if isinstance(opening, _Resume):
            return await self._resume(websocket, opening.session)
        return await self._start(websocket, opening, address)

    async def _start(self, websocket: WebSocket, start: _Start, address: str) -> str:
        name = " ".join(start.name.split())[:100]
        if not name:
            raise Refused(4400, "tell us your name")
        topics = self.settings.topics
        topic = start.topic if start.topic is not None else next(iter(topics))
        if topic not in topics:
            raise Refused(4400, f"unknown topic {topic!r}")
        self._check_chat_rate(address)
        session_id = secrets.token_urlsafe(12)
        ix = Interaction(
            id=f"webchat-{secrets.token_hex(8)}",
            channel=self.name,
            queue=topics[topic],
            subject=topic,
            customer=Customer(
                id=f"webchat:{session_id}",
                name=name,
                identities=[Identity(self.name, session_id)],
            ),
            attributes={"webchat": {"address": address}},
        )
        submitted = await self.app.submit(ix)  # durable: only now is the chat "started"
        self._attach(submitted.id, websocket)
        await websocket.send_json(
            {
                "type": "started",
                "session": self._sessions.dumps(submitted.id),
                "interaction": submitted.id,
            }
        )
        await self._tell_state(websocket, submitted.id)
        return submitted.id

    async def _resume(self, websocket: WebSocket, session: str) -> str:
        try:
            interaction_id = self._sessions.loads(session)
        except BadSignature:
            raise Refused(4401, "this chat cannot be resumed; start a new one") from None
        ix = self._live(interaction_id)
        if ix is None:
            raise Refused(4410, "this chat has ended")
        self._attach(interaction_id, websocket)
        history = [
            _outgoing(m, self._agent_name(m.sender))
            for m in self.app.conversations.messages(interaction_id)
        ]
        await websocket.send_json(
            {"type": "resumed", "interaction": interaction_id, "messages": history}
        )
        await self._tell_state(websocket, interaction_id)
        return interaction_id

    async def _converse(self, websocket: WebSocket, interaction_id: str) -> None:
        limit = self.settings.messages_per_minute
        # One count per chat, whatever the number of its open pages.
        sent = self._sent.setdefault(interaction_id, deque())
        typed = 0.0  # when the agent was last told the customer types
        while True:
            inbound = _decode(_inbound, await _receive(websocket, self.settings.max_message))
            if isinstance(inbound, _End):
                await self._customer_left(interaction_id)
                raise Refused(1000, "chat ended")
            if isinstance(inbound, _Typing):
                if time.monotonic() - typed > 2.0:  # at most one announcement in 2 s
                    typed = time.monotonic()
                    now = self.app.clock.now()
                    typing = ev.Typing(at=now, interaction_id=interaction_id, sender="customer")
                    self.app.announce(typing)
                continue
            text = inbound.text.strip()
            if not text:
                continue
            if len(text) > self.settings.max_message:
                raise Refused(
                    4413, f"messages are limited to {self.settings.max_message} characters"
                )
            now = time.monotonic()
            while sent and sent[0] < now - 60:
                sent.popleft()
            if len(sent) >= limit:
                await websocket.send_json(
                    {"type": "error", "id": inbound.id, "error": "slow down: too many messages"}
                )
                continue
            if (
                len(self.app.conversations.messages(interaction_id))
                >= self.settings.messages_per_chat
            ):
                raise Refused(4413, "this chat is too long; please start a new one")
            sent.append(now)
            if self._live(interaction_id) is None:
                raise Refused(4410, "this chat has ended")
            # The widget resends what was not acknowledged (after a reload, say): its id
            # makes the resend harmless.
            suffix = _client_id(inbound.id) or secrets.token_hex(6)
            message_id = f"{interaction_id}-c-{suffix}"
            if inbound.id and any(
                m.id == message_id for m in self.app.conversations.messages(interaction_id)
            ):
                await websocket.send_json({"type": "ack", "id": inbound.id})
                continue
            message = Message(
                id=message_id, interaction_id=interaction_id, sender="customer", text=text
            )
            # Under its id as the key, a resend during a failover is stored once.
            with self.app.idempotent(f"webchat:{message_id}"):
                stored = await self.app.add_message(message)  # durable before the ack
            await websocket.send_json({"type": "ack", "id": inbound.id, "at": stored.at})

    async def _customer_left(self, interaction_id: str) -> None:
        """The customer closed the chat: abandon it if nobody answered yet, else tell the
        agent (who completes it)."""
        ix = self._live(interaction_id)
        if ix is None:
            return
        if ix.state in (InteractionState.WAITING, InteractionState.OFFERED):
            await self.app.abandon(interaction_id)
        else:
            await self.app.add_message(
                Message(
                    id=f"{interaction_id}-left-{secrets.token_hex(4)}",
                    interaction_id=interaction_id,
                    sender="system",
                    text="The customer left the chat.",
                )
            )

    # ------------------------------------------------------------------ news for customers

    async def _follow_events(self) -> None:
        with self.app.subscribe(max_buffer=10_000) as events:
            async for event in events:
                if isinstance(event, ev.MessageAdded):
                    interaction_id = event.message.interaction_id
                else:
                    interaction_id = getattr(event, "interaction_id", None)
                if interaction_id is None or interaction_id not in self._sockets:
                    continue
                if isinstance(event, ev.Typing):
                    if event.sender != "customer":
                        name = self._agent_name(event.sender)
                        await self._send(interaction_id, {"type": "typing", "name": name})
                elif isinstance(event, ev.MessageAdded):
                    message = event.message
                    if message.sender.partition(":")[0] in ("agent", "supervisor"):
                        name = self._agent_name(message.sender)
                        await self._send(interaction_id, _outgoing(message, name))
                elif isinstance(event, ev.Assigned):
                    name = self._agent_name(f"agent:{event.agent_id}")
                    await self._send(interaction_id, {"type": "agent_joined", "name": name})
                elif isinstance(event, ev.Transferred | ev.Requeued):
                    await self._send(interaction_id, {"type": "transferred"})
                elif isinstance(event, ev.Completed | ev.Abandoned | ev.Closed):
                    text = getattr(event, "message", None)
                    await self._send(interaction_id, {"type": "ended", "message": text})

    async def _every_second(self) -> None:
        """Positions for those waiting; abandon chats whose page stayed closed."""
        clock = self.app.clock
        while True:
            await clock.sleep_until(clock.now() + 1.0)
            now = clock.now()
            for interaction_id in [i for i in self._sent if self._live(i) is None]:
                del self._sent[interaction_id]  # the chat is over: its count too
            for interaction_id in list(self._sockets):
                ix = self._live(interaction_id)
                if ix is None:
                    continue
                position = self.app.router.position(interaction_id)
                if position != self._positions.get(interaction_id):
                    self._positions[interaction_id] = position
                    if position:
                        await self._send(interaction_id, {"type": "position", "position": position})
            for interaction_id, since in list(self._away_since.items()):
                if now - since < self.settings.abandon_after:
                    continue
                del self._away_since[interaction_id]
                ix = self._live(interaction_id)
                if ix is not None and ix.state in (
                    InteractionState.WAITING,
                    InteractionState.OFFERED,
                ):
                    logger.info("web chat %s: the customer left while waiting", interaction_id)
                    await self.app.abandon(interaction_id)

    async def _tell_state(self, websocket: WebSocket, interaction_id: str) -> None:
        ix = self._live(interaction_id)
        if ix is None:
            return
        if ix.agent and ix.state is InteractionState.ASSIGNED:
            name = self._agent_name(f"agent:{ix.agent}")
            await websocket.send_json({"type": "agent_joined", "name": name})
        else:
            position = self.app.router.position(interaction_id)
            self._positions[interaction_id] = position
            await websocket.send_json({"type": "position", "position": position or 1})

    # ------------------------------------------------------------------ bookkeeping

    def _attach(self, interaction_id: str, websocket: WebSocket) -> None:
        self._sockets.setdefault(interaction_id, set()).add(websocket)
        self._away_since.pop(interaction_id, None)

    def _detach(self, interaction_id: str, websocket: WebSocket) -> None:
        sockets = self._sockets.get(interaction_id)
        if sockets is None:
            return
        sockets.discard(websocket)
        if not sockets:
            del self._sockets[interaction_id]
            self._positions.pop(interaction_id, None)
            if self._live(interaction_id) is not None:
                self._away_since[interaction_id] = self.app.clock.now()

    async def _send(self, interaction_id: str, data: dict[str, Any]) -> None:
        for websocket in list(self._sockets.get(interaction_id, ())):
            try:
                await websocket.send_json(data)
            except Exception:  # the page went away mid-send: it resumes later
                self._detach(interaction_id, websocket)

    def _live(self, interaction_id: str) -> Interaction | None:
        try:
            ix: Interaction = self.app.router.interaction(interaction_id)
        except Exception:
            return None
        return None if ix.state in TERMINAL_STATES else ix

    def _agent_name(self, sender: str) -> str | None:
        kind, _, who = sender.partition(":")
        if kind not in ("agent", "supervisor") or who not in self.app.router.agents:
            return None
        config = self.app.router.agent(who).config
        return config.name or config.id

    def _check_chat_rate(self, address: str) -> None:
        now = time.monotonic()
        if len(self._chats) > 10_000:  # forget addresses idle for an hour
            self._chats = {a: t for a, t in self._chats.items() if t and t[-1] > now - 3600}
        times = self._chats.setdefault(address, deque())
        while times and times[0] < now - 3600:
            times.popleft()
        if len(times) >= self.settings.chats_per_hour:
            raise Refused(4429, "too many chats from your address; try again later")
        times.append(now)


def _client_id(value: str | None) -> str | None:
    """The widget's message id, if it is a plain short token."""
    if value and len(value) <= 40 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return None


def _outgoing(message: Message, name: str | None) -> dict[str, Any]:
    sender = "customer" if message.sender == "customer" else message.sender.partition(":")[0]
    return {
        "type": "message",
        "from": sender,
        "name": name,
        "text": message.text,
        "at": message.at,
        "id": message.id,
    }


async def _receive(websocket: WebSocket, max_message: int) -> bytes:
    """One message from the customer; oversized ones end the connection."""
    data = await websocket.receive()
    if data["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(data.get("code", 1000))
    raw = data.get("bytes") or (data.get("text") or "").encode()
    if len(raw) > 4 * max_message + 1000:
        raise Refused(4413, f"messages are limited to {max_message} characters")
    return raw


def _decode(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise Refused(4400, f"not understood: {exc}") from None


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.send_json({"type": "closed", "reason": reason})
        await websocket.close(code=code, reason=reason)
    except Exception:
        pass

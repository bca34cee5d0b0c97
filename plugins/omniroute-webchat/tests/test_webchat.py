"""The web chat from the customer's side of the socket, against a real server: starting,
acknowledgements after durability, the agent joining and replying, resuming after a
reload, and the limits of the public endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import websockets
from omniroute_webchat import plugin
from websockets.asyncio.client import ClientConnection

from omniroute import events as ev
from omniroute.app import App
from omniroute.config import ConfigError
from omniroute.plugins import PluginHost
from omniroute.store import MemoryStore
from omniroute.testing import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config(**webchat: Any) -> dict[str, Any]:
    return {
        "queues": [{"name": "billing"}, {"name": "support"}],
        "agents": [{"id": "ana", "name": "Ana", "capacity": {"webchat": 2}}],
        "server": {"secret": "a-test-secret-of-enough-length"},
        "plugins": {
            "webchat": {
                "topics": {"Billing": "billing", "Support": "support"},
                "messages_per_minute": 5,
                "connections_per_address": 3,
                "chats_per_hour": 4,
                "max_message": 50,
                **webchat,
            }
        },
    }


class Chat:
    def __init__(self, app: App, url: str) -> None:
        self.app = app
        self.url = url.replace("http", "ws") + "/webchat/socket"

    async def open(self, **headers: str) -> ClientConnection:
        socket = await websockets.connect(self.url, additional_headers=headers)
        hello = await receive(socket)
        assert hello["type"] == "hello" and hello["topics"] == ["Billing", "Support"]
        return socket

    async def start(
        self, name: str = "Carla", topic: str = "Billing"
    ) -> tuple[ClientConnection, dict[str, Any]]:
        socket = await self.open()
        await send(socket, {"type": "start", "name": name, "topic": topic})
        started = await receive(socket)
        assert started["type"] == "started", started
        return socket, started


async def send(socket: ClientConnection, data: dict[str, Any]) -> None:
    await socket.send(json.dumps(data))


async def receive(socket: ClientConnection, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    with anyio.fail_after(5):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] not in skip:
                return message


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    host = PluginHost(entry_points=False)
    host.register(plugin, name="webchat")
    app = App.from_dict(config(), store=MemoryStore(encode=True), host=host)
    async with serving(app) as url:
        yield Chat(app, url)


async def test_a_customer_starts_a_chat_and_waits_in_line(chat: Chat) -> None:
    socket, started = await chat.start()
    ix = chat.app.router.interaction(started["interaction"])
    assert ix.queue == "billing" and ix.channel == "webchat" and ix.subject == "Billing"
    assert ix.customer is not None and ix.customer.name == "Carla"
    assert await receive(socket) == {"type": "position", "position": 1}
    second, _ = await chat.start("Dino", "Billing")
    assert await receive(second) == {"type": "position", "position": 2}


async def test_messages_are_acknowledged_once_durable(chat: Chat) -> None:
    socket, started = await chat.start()
    await send(socket, {"type": "message", "text": "  my invoice is wrong ", "id": "w1"})
    ack = await receive(socket, skip=("position",))
    assert ack["type"] == "ack" and ack["id"] == "w1"
    stored = [e async for _, e in chat.app.store.read() if isinstance(e, ev.MessageAdded)]
    assert [m.message.text for m in stored] == ["my invoice is wrong"]
    await send(socket, {"type": "message", "text": "my invoice is wrong", "id": "w1"})
    assert (await receive(socket, skip=("position",)))["id"] == "w1"  # a resend: no copy
    assert len(chat.app.conversations.messages(started["interaction"])) == 1


async def test_the_agent_joins_and_replies(chat: Chat) -> None:
    socket, started = await chat.start()
    interaction_id = started["interaction"]
    await chat.app.set_presence("ana", "ready")
    offer = next(iter(chat.app.router.agent("ana").offers))
    await chat.app.accept(offer, "ana")
    assert await receive(socket, skip=("position",)) == {"type": "agent_joined", "name": "Ana"}
    await chat.app.send_message(interaction_id, "agent:ana", "Hi Carla, <b>how</b> can I help?")
    reply = await receive(socket)
    assert reply["type"] == "message" and reply["from"] == "agent" and reply["name"] == "Ana"
    assert (
        reply["text"] == "Hi Carla, <b>how</b> can I help?"
    )  # text; the widget never renders HTML
    await chat.app.complete(interaction_id, "ana")
    assert (await receive(socket))["type"] == "ended"


async def test_a_reload_resumes_the_conversation(chat: Chat) -> None:
    socket, started = await chat.start()
    await send(socket, {"type": "message", "text": "first", "id": "a"})
    await receive(socket, skip=("position",))
    await socket.close()
    again = await chat.open()
    await send(again, {"type": "resume", "session": started["session"]})
    resumed = await receive(again)
    assert resumed["type"] == "resumed" and resumed["interaction"] == started["interaction"]
    assert [m["text"] for m in resumed["messages"]] == ["first"]
    assert chat.app.router.interaction(started["interaction"]).state == "waiting"


async def test_a_forged_session_is_refused(chat: Chat) -> None:
    socket = await chat.open()
    await send(socket, {"type": "resume", "session": "webchat-123.forged"})
    closed = await receive(socket)
    assert closed["type"] == "closed" and "cannot be resumed" in closed["reason"]
    with pytest.raises(websockets.ConnectionClosed) as info:
        await socket.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401


async def test_ending_while_waiting_abandons(chat: Chat) -> None:
    socket, started = await chat.start()
    await send(socket, {"type": "end"})
    with anyio.fail_after(5):
        while True:
            try:
                chat.app.router.interaction(started["interaction"])
            except Exception:
                break
            if chat.app.router.interaction(started["interaction"]).state == "abandoned":
                break
            await anyio.sleep(0.01)
    assert chat.app.router.queue_stats("billing").abandoned == 1


async def test_limits_of_the_public_socket(chat: Chat) -> None:
    socket, _ = await chat.start()
    await send(socket, {"type": "message", "text": "x" * 51, "id": "big"})
    closed = await receive(socket, skip=("position",))
    assert closed == {"type": "closed", "reason": "messages are limited to 50 characters"}

    socket, _ = await chat.start()
    for i in range(6):
        await send(socket, {"type": "message", "text": f"m{i}", "id": f"m{i}"})
    answers = [await receive(socket, skip=("position",)) for _ in range(6)]
    assert [a["type"] for a in answers] == ["ack"] * 5 + ["error"]
    assert "slow down" in answers[-1]["error"]

    socket = await chat.open()
    await send(socket, {"type": "start", "name": "   ", "topic": "Billing"})
    assert "name" in (await receive(socket))["reason"]
    socket = await chat.open()
    await send(socket, {"type": "start", "name": "Eve", "topic": "Refunds"})
    assert "unknown topic" in (await receive(socket))["reason"]
    socket = await chat.open()
    await send(socket, {"type": "start", "name": "Eve", "topic": "Billing", "html": "<x>"})
    assert "not understood" in (await receive(socket))["reason"]


async def test_too_many_chats_from_one_address(chat: Chat) -> None:
    for _ in range(2):  # the fixture's limit is 4 an hour, and 3 open at once
        socket, _ = await chat.start()
        await socket.close()
    keep = [await chat.start() for _ in range(2)]
    socket = await chat.open()
    await send(socket, {"type": "start", "name": "Fay", "topic": "Billing"})
    assert "too many chats" in (await receive(socket))["reason"]
    assert len(keep) == 2


async def test_the_widget_and_demo_page_are_served(chat: Chat) -> None:
    base = chat.url.replace("ws", "http").removesuffix("/webchat/socket")
    async with httpx.AsyncClient(base_url=base) as client:
        widget = await client.get("/webchat/widget.js")
        assert widget.status_code == 200 and "text/javascript" in widget.headers["content-type"]
        assert (
            "textContent" in widget.text
            and "innerHTML = " not in widget.text.split("root.innerHTML")[1]
        )
        page = await client.get("/webchat/")
        assert '<script src="/webchat/widget.js"' in page.text


async def test_unknown_topic_queue_is_a_config_error() -> None:
    host = PluginHost(entry_points=False)
    host.register(plugin, name="webchat")
    app = App.from_dict(
        config(topics={"Billing": "billing", "Refunds": "refunds"}),
        store=MemoryStore(),
        host=host,
    )
    with pytest.raises(
        ConfigError, match=r'plugins\.webchat\.topics\."Refunds": unknown queue "refunds"'
    ):
        async with app.running():
            pass


async def test_typing_goes_both_ways_but_is_never_stored(chat: Chat) -> None:
    socket, started = await chat.start()
    interaction_id = started["interaction"]
    await chat.app.set_presence("ana", "ready")
    await chat.app.accept(next(iter(chat.app.router.agent("ana").offers)), "ana")
    await receive(socket, skip=("position",))  # agent_joined
    with chat.app.subscribe() as events:
        await send(socket, {"type": "typing"})
        with anyio.fail_after(5):
            seen = await events.receive()
        assert isinstance(seen, ev.Typing) and seen.sender == "customer"
    now = chat.app.clock.now()
    chat.app.announce(ev.Typing(at=now, interaction_id=interaction_id, sender="agent:ana"))
    assert await receive(socket) == {"type": "typing", "name": "Ana"}
    stored = [e async for _, e in chat.app.store.read()]
    assert not any(isinstance(e, ev.Typing) for e in stored)


async def test_the_message_rate_is_per_chat_not_per_page(chat: Chat) -> None:
    first, started = await chat.start()
    second = await chat.open()
    await send(second, {"type": "resume", "session": started["session"]})
    await receive(second)  # resumed
    answers = []
    for i in range(6):  # the fixture allows 5 a minute
        page = first if i % 2 else second
        await send(page, {"type": "message", "text": f"m{i}", "id": f"m{i}"})
        answers.append((await receive(page, skip=("position",)))["type"])
    assert answers == ["ack"] * 5 + ["error"]

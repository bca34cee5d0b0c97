"""The Telegram channel's routes on a follower node: two nodes on the real PostgreSQL,
the leader running the (leader-only) channel against the local Bot API in webhook mode,
with the webhook pointing at the follower's web server; the follower hands the updates
to the leader's channel, and its supervisors' outbox is the leader's."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from omniroute_telegram import plugin
from omniroute_telegram.channel import TelegramChannel
from omniroute_telegram.fakeapi import FakeBotApi
from omniroute_telegram.plugin import outbox_items
from telegramkit import AGENT_TOKEN, SUPERVISOR_TOKEN, config, free_port

from omniroute import events as ev
from omniroute.actions import ActionError
from omniroute.cluster import Node
from omniroute.plugins import PluginHost
from omniroute.web.serve import serve_web

# The core's helper for the real PostgreSQL (tests/pgkit.py of the repository).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from pgkit import DSN, needs_postgres
from pgkit import schema as schema

pytestmark = [needs_postgres, pytest.mark.anyio]


def telegram(node: Node) -> TelegramChannel:
    channel = node.app.channels["telegram"]
    assert isinstance(channel, TelegramChannel)
    return channel


class Front:
    """The follower node and clients of its web server."""

    def __init__(self, node: Node, url: str) -> None:
        self.node = node
        self.agent = httpx.AsyncClient(base_url=url, headers=_bearer(AGENT_TOKEN))
        self.supervisor = httpx.AsyncClient(base_url=url, headers=_bearer(SUPERVISOR_TOKEN))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def cluster(
    schema: str, bot_api: FakeBotApi, tmp_path: Path
) -> AsyncIterator[tuple[Node, Front]]:
    """The leader running the channel, and the follower whose URL is the webhook's."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hook = url + "/telegram/webhook"
    document = config(bot_api, tmp_path / "files", mode="webhook", webhook_url=hook)

    def node(name: str, **options: Any) -> Node:
        host = PluginHost(entry_points=False)
        host.register(plugin, name="telegram")
        return Node.from_dict(
            document, dsn=DSN, schema=schema, name=name, host=host, election_interval=0.1,
            **options,
        )  # fmt: skip

    async with node("leader").running() as leader, node("front", lead=False).running() as front:
        with anyio.fail_after(10):
            while not leader.is_leader:
                await anyio.sleep(0.02)
            await telegram(leader).ready.wait()
        server = msgspec.structs.replace(front.app.config.server, host="127.0.0.1", port=port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_web, front.app, server)
            with anyio.fail_after(10):  # until the follower's web server answers
                while True:
                    try:
                        async with httpx.AsyncClient() as probe:
                            await probe.get(url + "/login")
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.02)
            client = Front(front, url)
            try:
                yield leader, client
            finally:
                await client.agent.aclose()
                await client.supervisor.aclose()
                tg.cancel_scope.cancel()
        assert not telegram(front).ready.is_set()  # the follower's channel never ran
        assert telegram(front).outbox.pending() == []
        with pytest.raises(ActionError) as refused:  # as a new leader's, before it started
            await outbox_items(telegram(front))
        assert refused.value.status == 503


async def test_updates_posted_to_a_follower_reach_the_leaders_channel(
    cluster: tuple[Node, Front], bot_api: FakeBotApi
) -> None:
    leader, front = cluster
    assert bot_api.webhook is not None and bot_api.webhook[0].startswith(str(front.agent.base_url))
    bot_api.text(11, "hello via the follower")
    await bot_api.wait_for(lambda: bot_api.updates == [])  # answered 200: durable
    assert bot_api.webhook_answers == [200]
    [ix] = front.node.app.router.waiting()  # the follower's own write: in its replica
    assert ix.channel == "telegram" and ix.customer is not None
    # The leader's channel greets the customer: it knows the chat from the update.
    await bot_api.wait_for(lambda: any("number 1 in line" in t for t in bot_api.sent_texts(11)))
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "no"}
    forged = await front.agent.post("/telegram/webhook", json={"update_id": 1}, headers=wrong)
    assert forged.status_code == 403
    messages = [e async for _, e in leader.app.store.read() if isinstance(e, ev.MessageAdded)]
    assert [m.message.text for m in messages] == ["hello via the follower"]


async def test_a_follower_shows_the_leaders_outbox(
    cluster: tuple[Node, Front], bot_api: FakeBotApi
) -> None:
    leader, front = cluster
    bot_api.text(12, "anyone?")
    await bot_api.wait_for(lambda: any("number 1 in line" in t for t in bot_api.sent_texts(12)))
    app = leader.app
    (ix,) = app.router.waiting()
    await app.set_presence("ana", "ready")
    offer = next(iter(app.router.agent("ana").offers))
    await app.accept(offer, "ana")
    await bot_api.wait_for(lambda: "Ana joined the conversation." in bot_api.sent_texts(12))
    bot_api.fail("sendMessage", 502, times=1000)
    message = await app.send_message(ix.id, "agent:ana", "Let me look.")
    channel = telegram(leader)
    await bot_api.wait_for(lambda: any(i.attempts >= 2 for i in channel.outbox.pending()))

    listed = await front.supervisor.get("/telegram/outbox")
    assert listed.status_code == 200, listed.text
    [item] = listed.json()
    assert (item["chat"], item["interaction"], item["message"]) == (12, ix.id, message.id)
    assert item["attempts"] >= 2 and item["error"]
    assert (await front.agent.get("/telegram/outbox")).status_code == 403

    bot_api.faults.clear()
    await bot_api.wait_for(lambda: "Let me look." in bot_api.sent_texts(12))
    with anyio.fail_after(10):
        while (await front.supervisor.get("/telegram/outbox")).json():
            await anyio.sleep(0.05)

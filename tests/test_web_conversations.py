"""Conversations through the API: the customer's messages, the agent's replies going out
through the interaction's own channel, history across channels, script and canned answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from webkit import Site, document, serving

from omniroute import hookimpl
from omniroute.app import App
from omniroute.model import Customer, Identity, Interaction, Message
from omniroute.specs import ConfigSpec
from omniroute.store import MemoryStore
from omniroute.testing import EchoChannel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _EchoSection(msgspec.Struct):
    pass


class _EchoConfig:
    @hookimpl
    def omniroute_config_sections(self) -> Any:
        yield ConfigSpec(section="echo", type=_EchoSection)


def config() -> dict[str, Any]:
    doc = document()
    doc["queues"][0].update(script="Greet, verify the account, solve.", canned=["Hello!"])
    for agent in doc["agents"]:
        agent["capacity"]["echo"] = 2
    doc["plugins"] = {"echo": {}}
    return doc


@pytest.fixture
async def site(
    echo_channel: EchoChannel, plugin_host: Any, register_plugin: Any
) -> AsyncIterator[Site]:
    register_plugin(_EchoConfig(), name="echo-config")
    app = App.from_dict(config(), store=MemoryStore(encode=True), host=plugin_host)
    async with serving(app) as running:
        yield running


async def chat_with_ana(site: Site, echo: EchoChannel, address: str = "+3519") -> Interaction:
    """A contact on the echo channel, accepted by ana."""
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    ix = await site.app.submit(echo.contact("support", address=address))
    offer = (await site.call("ana", "GET", "/api/inbox")).json()["offers"][0]
    assert (await site.call("ana", "POST", f"/api/offers/{offer['id']}/accept")).status_code == 200
    return ix


async def test_messages_flow_both_ways(site: Site, echo_channel: EchoChannel) -> None:
    ix = await chat_with_ana(site, echo_channel)
    await site.app.add_message(
        Message(id="c-1", interaction_id=ix.id, sender="customer", text="my bill is wrong")
    )
    r = await site.call(
        "ana", "POST", f"/api/interactions/{ix.id}/messages", json={"text": "Let me look."}
    )
    assert r.status_code == 201
    assert r.json()["sender"] == "agent:ana"
    assert echo_channel.messages(ix.id) == ["Let me look."]
    view = (await site.call("ana", "GET", f"/api/interactions/{ix.id}/conversation")).json()
    assert [(m["sender"], m["text"]) for m in view["messages"]] == [
        ("customer", "my bill is wrong"),
        ("agent:ana", "Let me look."),
    ]
    assert view["script"] == "Greet, verify the account, solve."
    assert view["canned"] == ["Hello!"] and view["position"] == 0


async def test_an_offer_can_be_read_but_not_answered(site: Site, echo_channel: EchoChannel) -> None:
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    ix = await site.app.submit(echo_channel.contact("support"))
    r = await site.call("ana", "GET", f"/api/interactions/{ix.id}/conversation")
    assert r.status_code == 200
    r = await site.call("ana", "POST", f"/api/interactions/{ix.id}/messages", json={"text": "hi"})
    assert r.status_code == 409 and "accept" in r.json()["error"]
    r = await site.call("bob", "POST", f"/api/interactions/{ix.id}/messages", json={"text": "hi"})
    assert r.status_code == 404
    r = await site.call("ana", "POST", f"/api/interactions/{ix.id}/messages", json={"text": ""})
    assert r.status_code == 422 and r.json()["where"] == "text"
    assert echo_channel.delivered == []


async def test_a_supervisor_joins_a_live_chat(site: Site, echo_channel: EchoChannel) -> None:
    ix = await chat_with_ana(site, echo_channel)
    r = await site.call(
        "sue", "POST", f"/api/interactions/{ix.id}/messages", json={"text": "Sue here."}
    )
    assert r.status_code == 201 and r.json()["sender"] == "supervisor:sue"
    assert echo_channel.messages(ix.id) == ["Sue here."]


async def test_history_follows_the_customer_across_channels(
    site: Site, echo_channel: EchoChannel
) -> None:
    first = await chat_with_ana(site, echo_channel, address="+3519")
    await site.call("ana", "POST", f"/api/interactions/{first.id}/complete")
    later = Interaction(
        id="web-7",
        channel="webchat",
        queue="support",
        customer=Customer(
            id="someone-new", identities=[Identity("echo", "+3519"), Identity("webchat", "s-7")]
        ),
    )
    await site.app.submit(later)
    view = (await site.call("sue", "GET", "/api/interactions/web-7/conversation")).json()
    assert [c["id"] for c in view["history"]] == [first.id]
    assert view["history"][0]["state"] == "completed" and view["history"][0]["agent"] == "ana"
    history = (await site.call("sue", "GET", "/api/customers/+3519/history")).json()
    assert [c["id"] for c in history] == ["web-7", first.id]


async def test_a_message_to_an_ended_interaction_is_refused(
    site: Site, echo_channel: EchoChannel
) -> None:
    ix = await site.app.submit(echo_channel.contact("support"))
    await site.app.abandon(ix.id)
    with pytest.raises(Exception, match=r"ended|no active"):
        await site.app.add_message(
            Message(id="x", interaction_id=ix.id, sender="customer", text="?")
        )


async def test_live_messages_reach_only_the_agents_holding_the_interaction(
    site: Site, echo_channel: EchoChannel
) -> None:
    import json

    import anyio
    import websockets

    await site.login("bob")
    ana_token = (await site.login("ana"))["Authorization"].split()[1]
    bob_token = site.tokens["bob"]
    base = site.url.replace("http", "ws") + "/api/events?token="
    async with (
        websockets.connect(base + ana_token) as ana,
        websockets.connect(base + bob_token) as bob,
    ):
        ix = await chat_with_ana(site, echo_channel)
        await site.app.add_message(
            Message(id="c-9", interaction_id=ix.id, sender="customer", text="still there?")
        )
        seen: list[str] = []
        with anyio.fail_after(5):
            while "message" not in seen:
                seen.append(json.loads(await ana.recv())["type"])
        assert seen[-3:] == ["offered", "assigned", "message"]
        with anyio.move_on_after(0.3):
            other = json.loads(await bob.recv())
            pytest.fail(f"bob saw {other}")


async def test_typing_is_announced_for_own_chats_only(
    site: Site, echo_channel: EchoChannel
) -> None:
    ix = await chat_with_ana(site, echo_channel)
    with site.app.subscribe() as events:
        r = await site.call("ana", "POST", f"/api/interactions/{ix.id}/typing")
        assert r.status_code == 204
        typing = events.receive_nowait()
        assert typing.sender == "agent:ana" and typing.interaction_id == ix.id  # type: ignore[attr-defined]
    assert (await site.call("bob", "POST", f"/api/interactions/{ix.id}/typing")).status_code == 404


async def test_an_agent_links_two_addresses_and_the_histories_merge(
    site: Site, echo_channel: EchoChannel
) -> None:
    earlier = await site.app.submit(
        Interaction(
            id="mail-1",
            channel="email",
            queue="sales",
            customer=Customer(id="mail:c", identities=[Identity("email", "c@example.com")]),
        )
    )
    await site.app.abandon(earlier.id)
    chat = await chat_with_ana(site, echo_channel, address="tg-424242")
    view = (await site.call("ana", "GET", f"/api/interactions/{chat.id}/conversation")).json()
    assert view["history"] == [] and view["customer"]["id"] == "tg-424242"

    # As an agent types it: the email channel records addresses in lower case.
    link = {"channel": "email", "address": " C@Example.COM "}
    path = f"/api/interactions/{chat.id}/customer/addresses"
    linked = await site.call("ana", "POST", path, json=link)
    assert linked.status_code == 200, linked.text
    assert {"channel": "email", "address": "c@example.com"} in linked.json()["identities"]
    view = (await site.call("ana", "GET", f"/api/interactions/{chat.id}/conversation")).json()
    assert [c["id"] for c in view["history"]] == ["mail-1"]
    # Durable: an event in the log says who linked them.
    events = [e async for _, e in site.app.store.read()]
    [event] = [e for e in events if type(e).__name__ == "CustomerLinked"]
    assert event.by == "agent:ana" and event.customer_id == "tg-424242"
    # Either id now answers the same customer.
    history = (await site.call("sue", "GET", "/api/customers/mail:c/history")).json()
    assert [c["id"] for c in history] == [chat.id, "mail-1"]
    other = await site.call("bob", "POST", path, json=link)
    assert other.status_code == 404  # not bob's conversation


async def test_a_supervisor_links_an_address_to_a_customer(
    site: Site, echo_channel: EchoChannel
) -> None:
    chat = await chat_with_ana(site, echo_channel, address="+3519")
    body = {"channel": "telegram", "address": "77"}
    linked = await site.call("sue", "POST", "/api/customers/+3519/addresses", json=body)
    assert linked.status_code == 200
    assert (
        await site.call("ana", "POST", "/api/customers/+3519/addresses", json=body)
    ).status_code == 403
    missing = await site.call("sue", "POST", "/api/customers/nobody/addresses", json=body)
    assert missing.status_code == 404
    bad = await site.call("sue", "POST", "/api/customers/+3519/addresses", json={"channel": ""})
    assert bad.status_code == 422
    later = Interaction(
        id="tg-2",
        channel="telegram",
        queue="support",
        customer=Customer(id="telegram:77", identities=[Identity("telegram", "77")]),
    )
    await site.app.submit(later)
    customer = (await site.call("sue", "GET", "/api/customers/telegram:77")).json()
    assert customer["id"] == "+3519"
    history = (await site.call("sue", "GET", "/api/customers/+3519/history")).json()
    assert [c["id"] for c in history] == ["tg-2", chat.id]


async def test_ended_contacts_are_read_by_who_handled_them_or_serves_the_customer(
    site: Site, echo_channel: EchoChannel
) -> None:
    first = await chat_with_ana(site, echo_channel, address="+3519")
    await site.app.add_message(
        Message(
            id="c-1", interaction_id=first.id, sender="customer", text="bill",
            attachments=["/files/bill.pdf"],
        )
    )  # fmt: skip
    await site.call("ana", "POST", f"/api/interactions/{first.id}/complete")
    await site.call("ana", "POST", f"/api/interactions/{first.id}/wrap-up/end")
    other = await chat_with_ana(site, echo_channel, address="+4400")
    await site.call("ana", "POST", f"/api/interactions/{other.id}/complete")
    await site.call("ana", "POST", f"/api/interactions/{other.id}/wrap-up/end")
    path = f"/api/interactions/{first.id}/conversation"

    # Who handled it reads it, with its messages and attachments; so do supervisors.
    for user in ("ana", "sue"):
        view = (await site.call(user, "GET", path)).json()
        assert view["interaction"]["state"] == "completed"
        assert [(m["text"], m["attachments"]) for m in view["messages"]] == [
            ("bill", ["/files/bill.pdf"])
        ]
    assert (await site.call("sue", "GET", f"/api/interactions/{first.id}")).status_code == 200
    # Another agent does not, until they serve the same customer (an offer is enough).
    assert (await site.call("bob", "GET", path)).status_code == 404
    await site.call("bob", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "offline"})
    again = await site.app.submit(echo_channel.contact("support", address="+3519"))
    offers = (await site.call("bob", "GET", "/api/inbox")).json()["offers"]
    assert [o["interaction"]["id"] for o in offers] == [again.id]
    view = (await site.call("bob", "GET", f"/api/interactions/{again.id}/conversation")).json()
    assert [c["id"] for c in view["history"]] == [first.id]
    assert (await site.call("bob", "GET", path)).status_code == 200
    # ...and only that customer's: another contact of ana's stays hers.
    assert (await site.call("bob", "GET", f"/api/interactions/{other.id}")).status_code == 404
    # Read-only: nobody acts on an ended conversation.
    r = await site.call("ana", "POST", f"/api/interactions/{first.id}/messages", json={"text": "?"})
    assert r.status_code == 409
    r = await site.call("ana", "POST", f"/api/interactions/{first.id}/typing")
    assert r.status_code == 409
    link = {"channel": "email", "address": "x@example.com"}
    r = await site.call(
        "ana", "POST", f"/api/interactions/{first.id}/customer/addresses", json=link
    )
    assert r.status_code == 409
    # Once bob's offer is gone, so is his access.
    offer_id = offers[0]["id"]
    assert (await site.call("bob", "POST", f"/api/offers/{offer_id}/decline")).status_code == 204
    assert (await site.call("bob", "GET", path)).status_code == 404


async def test_an_ended_view_lists_only_the_contacts_the_agent_may_open(
    site: Site, echo_channel: EchoChannel
) -> None:
    earlier = await site.app.submit(echo_channel.contact("sales", address="+3519"))
    await site.app.abandon(earlier.id)
    mine = await chat_with_ana(site, echo_channel, address="+3519")
    await site.call("ana", "POST", f"/api/interactions/{mine.id}/complete")
    await site.call("ana", "POST", f"/api/interactions/{mine.id}/wrap-up/end")
    view = (await site.call("ana", "GET", f"/api/interactions/{mine.id}/conversation")).json()
    assert view["history"] == []  # the abandoned one was never hers
    view = (await site.call("sue", "GET", f"/api/interactions/{mine.id}/conversation")).json()
    assert [c["id"] for c in view["history"]] == [earlier.id]


async def test_a_crm_name_wins_over_the_channel_display_name(
    site: Site, echo_channel: EchoChannel
) -> None:
    crm = Customer(id="crm:c-1", name="Carla Diaz", identities=[Identity("email", "c@x.es")])
    mail = await site.app.submit(
        Interaction(id="mail-1", channel="email", queue="sales", customer=crm)
    )
    await site.app.link_customer("crm:c-1", crm, "crm")
    await site.app.abandon(mail.id)
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    tg = Customer(id="tg:4242", name="User424242", identities=[Identity("echo", "4242")])
    chat = await site.app.submit(
        Interaction(id="tg-1", channel="echo", queue="support", customer=tg)
    )
    # A person links the two: the customer keeps the CRM's name, not the channel's.
    link = {"channel": "email", "address": "c@x.es"}
    r = await site.call("sue", "POST", "/api/customers/tg:4242/addresses", json=link)
    assert r.json()["name"] == "Carla Diaz"
    # A later contact with the channel's display name does not replace it either.
    again = Interaction(id="tg-2", channel="echo", queue="support", customer=tg)
    await site.app.submit(again)
    assert (await site.call("sue", "GET", "/api/customers/tg:4242")).json()["name"] == "Carla Diaz"
    # The inbox's list and header show the customer's name.
    inbox = (await site.call("ana", "GET", "/api/inbox")).json()
    shown = [o["interaction"]["customer"]["name"] for o in inbox["offers"]]
    assert shown and set(shown) == {"Carla Diaz"}
    view = (await site.call("sue", "GET", f"/api/interactions/{chat.id}/conversation")).json()
    assert view["interaction"]["customer"]["name"] == "Carla Diaz"

"""Outbound contacts through the App and the JSON API: an agent starts their own, a
supervisor may start one for an agent, refusals say why; the contact joins the
customer's history, survives a restart from a snapshot, and purging its bodies works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from test_web_api import _events
from webkit import Site, document, serving

from omniroute import events as ev
from omniroute import hookimpl
from omniroute.app import App, RouterError
from omniroute.model import Customer, Direction, Identity, Interaction, InteractionState
from omniroute.plugins import PluginHost
from omniroute.store import MemoryStore
from omniroute.store.retention import PURGED, purge_bodies

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config() -> dict[str, Any]:
    doc = document()
    doc["queues"].insert(0, {"name": "calls", "channels": ["voice"], "wrap_up": 30})
    doc["agents"][0]["capacity"] = {"webchat": 2, "voice": 1}
    return doc


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with serving(App.from_dict(config(), store=MemoryStore(encode=True))) as running:
        yield running


async def test_an_agent_calls_a_number_from_the_dial_box(site: Site) -> None:
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "not_ready"})
    r = await site.call("ana", "POST", "/api/outbound", json={"address": "+1 (555) 010-0"})
    assert r.status_code == 201, r.text
    ix = r.json()
    assert ix["direction"] == "outbound" and ix["state"] == "assigned" and ix["agent"] == "ana"
    assert ix["address"] == "+15550100" and ix["channel"] == "voice"
    assert ix["queue"] == "calls"  # her first queue that takes voice
    assert ix["customer"]["id"] == "voice:+15550100"
    inbox = (await site.call("ana", "GET", "/api/inbox")).json()
    assert [w["id"] for w in inbox["work"]] == [ix["id"]] and inbox["activity"] == "not_ready"
    # Her only voice line is taken: a second call is refused, saying why.
    r = await site.call("ana", "POST", "/api/outbound", json={"address": "5550101"})
    assert r.status_code == 409 and "no free capacity" in r.json()["error"]
    # It completes and wraps up like any contact; the queue's inbound figures ignore it.
    r = await site.call("ana", "POST", f"/api/interactions/{ix['id']}/complete")
    assert r.status_code == 204
    kpis = site.app.router.queue_stats("calls")
    assert kpis.outbound == 1 and kpis.offered == 0 and kpis.answered == 0


async def test_offline_or_not_an_agent_is_refused(site: Site) -> None:
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "offline"})
    r = await site.call("ana", "POST", "/api/outbound", json={"address": "5550100"})
    assert r.status_code == 409 and 'agent "ana" is offline' in r.json()["error"]
    r = await site.call("sue", "POST", "/api/outbound", json={"address": "5550100"})
    assert r.status_code == 403 and "not an agent" in r.json()["error"]


async def test_agents_call_for_themselves_supervisors_for_anyone(site: Site) -> None:
    r = await site.call("ana", "POST", "/api/outbound", json={"address": "1234", "agent": "bob"})
    assert r.status_code == 403 and r.json()["where"] == "agent"
    body = {"address": "x@example.com", "channel": "webchat", "agent": "bob", "queue": "support"}
    await site.app.set_presence("bob", "ready")
    r = await site.call("sue", "POST", "/api/outbound", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["agent"] == "bob" and r.json()["channel"] == "webchat"
    r = await site.call("sue", "POST", "/api/outbound", json={**body, "agent": "zed"})
    assert r.status_code == 404 and r.json()["where"] == "agent"
    r = await site.call("sue", "POST", "/api/outbound", json={**body, "queue": "nope"})
    assert r.status_code == 404 and r.json()["where"] == "queue"
    # bob takes voice nowhere: the error says so
    r = await site.call("sue", "POST", "/api/outbound", json={"address": "1234", "agent": "bob"})
    assert r.status_code == 409 and "bob" in r.json()["error"]


async def test_bad_bodies_name_the_field(site: Site) -> None:
    r = await site.call("ana", "POST", "/api/outbound", json={})
    assert r.status_code == 422 and r.json()["where"] == "address"
    r = await site.call("ana", "POST", "/api/outbound", json={"address": "1", "colour": "red"})
    assert r.status_code == 422
    r = await site.call("ana", "POST", "/api/outbound", json={"customer": "c-nobody"})
    assert r.status_code == 404 and r.json()["where"] == "customer"


async def known_customer(site: Site) -> tuple[str, Interaction]:
    """A chat from a customer whose phone is known, assigned to ana."""
    await site.app.set_presence("ana", "ready")
    chat = await site.submit(
        customer=Customer(
            id="carla",
            name="Carla",
            identities=[Identity("webchat", "w-1"), Identity("voice", "+15550199")],
        )
    )
    offer = next(iter(site.app.router.agent("ana").offers))
    await site.app.accept(offer, "ana")
    return "carla", chat


async def test_call_a_customer_of_a_conversation_by_id(site: Site) -> None:
    customer, chat = await known_customer(site)
    await site.app.complete(chat.id, "ana")
    await site.app.end_wrap_up(chat.id, "ana")
    # The chat ended: ana may still call the customer she served (their history is hers).
    r = await site.call("ana", "POST", "/api/outbound", json={"customer": customer})
    assert r.status_code == 201, r.text
    ix = r.json()
    assert ix["address"] == "+15550199" and ix["customer"]["id"] == "carla"
    assert ix["customer"]["name"] == "Carla"
    view = (await site.call("ana", "GET", f"/api/interactions/{ix['id']}/conversation")).json()
    assert [c["id"] for c in view["history"]] == [chat.id]
    # The customer's history shows the call, as outbound.
    history = (await site.call("sue", "GET", f"/api/customers/{customer}/history")).json()
    assert history[0]["id"] == ix["id"] and history[0]["direction"] == "outbound"
    assert history[0]["address"] == "+15550199"
    # An address that is not the customer's is refused (a call would link it to them).
    await site.app.complete(ix["id"], "ana", "busy")
    await site.app.end_wrap_up(ix["id"], "ana")
    body = {"customer": customer, "address": "999"}
    r = await site.call("ana", "POST", "/api/outbound", json=body)
    assert r.status_code == 422 and r.json()["where"] == "address"
    history = (await site.call("sue", "GET", f"/api/customers/{customer}/history")).json()
    assert history[0]["outcome"] == "busy" and history[0]["state"] == "completed"


async def test_an_agent_cannot_call_a_customer_they_do_not_serve(site: Site) -> None:
    customer, _ = await known_customer(site)
    r = await site.call("bob", "POST", "/api/outbound", json={"customer": customer})
    assert r.status_code == 404  # as if unknown: bob never served carla
    await site.app.set_presence("bob", "ready")
    r = await site.call("sue", "POST", "/api/outbound", json={"customer": customer, "agent": "bob"})
    assert r.status_code == 409  # bob takes no voice; but sue may name any customer


async def test_live_events_reach_the_agent_who_calls(site: Site) -> None:
    await site.app.set_presence("ana", "ready")
    await site.login("ana")
    seen: list[dict[str, Any]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_events, site, "ana", seen, 1)
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.02)
        started = await site.app.start_outbound("ana", "voice", "5550100")
        with anyio.fail_after(5):
            while len(seen) < 2:
                await anyio.sleep(0.02)
    assert seen[1]["type"] == "outbound" and seen[1]["interaction"]["id"] == started.id
    # Her own contact: messages of it reach her socket too.
    assert site.app.router.agent("ana").work == {started.id}


async def test_the_openapi_document_has_the_endpoint(site: Site) -> None:
    doc = (await site.client.get("/api/openapi.json")).json()
    post = doc["paths"]["/api/outbound"]["post"]
    assert "201" in post["responses"]
    assert "OutboundBody" in str(post["requestBody"])


# ------------------------------------------------------------------ the App


class Told:
    """A plugin told of outbound contacts through `omniroute_interaction_outbound`."""

    def __init__(self) -> None:
        self.events: list[ev.OutboundStarted] = []

    @hookimpl
    def omniroute_interaction_outbound(self, event: ev.OutboundStarted, app: Any) -> None:
        self.events.append(event)


async def test_a_plugin_is_told_and_a_restart_from_a_snapshot_keeps_the_call() -> None:
    store = MemoryStore(encode=True)
    told = Told()
    host = PluginHost(entry_points=False)
    host.register(told, name="told")
    doc = {**config(), "store": {"backend": "memory", "snapshot_every": 2}}
    doc.pop("server")
    app = App.from_dict(doc, store=store, host=host)
    async with app.running():
        await app.set_presence("ana", "not_ready", "calls")
        started = await app.start_outbound("ana", "voice", "5550100", subject="renewal")
        assert started.direction is Direction.OUTBOUND
        with pytest.raises(RouterError, match="no free capacity"):
            await app.start_outbound("ana", "voice", "5550101")
        with pytest.raises(RouterError, match="they do not take telegram"):
            await app.start_outbound("ana", "telegram", "42")
        await app.set_presence("bob", "ready")  # more events: a snapshot is due
        with anyio.fail_after(5):
            while not told.events:
                await anyio.sleep(0.01)
    assert [e.interaction.id for e in told.events] == [started.id]
    assert await store.load_snapshot() is not None
    again = App.from_dict(doc, store=store)
    async with again.running():
        ix = again.router.interaction(started.id)
        assert ix.state is InteractionState.ASSIGNED and ix.agent == "ana"
        assert ix.address == "5550100" and ix.subject == "renewal"
        await again.complete(started.id, "ana", "no-answer")
        assert again.router.interaction(started.id).outcome == "no-answer"


def test_purging_bodies_covers_outbound_contacts() -> None:
    ix = Interaction(
        id="voice-out-1",
        channel="voice",
        queue="calls",
        subject="renewal",
        customer=Customer(id="c", name="Carla"),
        address="+15550100",
    )
    purged = purge_bodies(ev.OutboundStarted(at=1.0, interaction=ix, agent_id="ana"))
    assert isinstance(purged, ev.OutboundStarted)
    assert purged.interaction.subject == PURGED
    assert purged.interaction.customer is not None and purged.interaction.customer.name == PURGED
    assert purged.interaction.address == "+15550100"  # an identity: kept, like the others

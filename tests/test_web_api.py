"""The JSON API from the outside: a real uvicorn server on loopback, real HTTP and
WebSocket clients, every role and the refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
import websockets
from webkit import PASSWORD, TOKEN, Site, document, serving

from omniroute.app import App
from omniroute.model import Interaction
from omniroute.store import MemoryStore
from omniroute.web.api import ENDPOINTS

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with serving(App.from_dict(document(), store=MemoryStore(encode=True))) as running:
        yield running


# ------------------------------------------------------------------ sessions


async def test_login_answers_a_token_and_a_cookie(site: Site) -> None:
    r = await site.client.post("/api/login", json={"user": "ana", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == "ana" and body["role"] == "agent" and body["name"] is None
    assert r.cookies["omniroute_session"] == body["token"]
    assert "httponly" in r.headers["set-cookie"].lower()
    me = await site.client.get("/api/me")  # the cookie alone authenticates
    assert me.json()["user"] == "ana"


@pytest.mark.parametrize("user,password", [("ana", "wrong"), ("nobody", PASSWORD), ("crm", "")])
async def test_wrong_credentials_are_refused_alike(site: Site, user: str, password: str) -> None:
    r = await site.client.post("/api/login", json={"user": user, "password": password})
    assert r.status_code == 401
    assert r.json() == {"error": "wrong user or password", "where": None}


async def test_repeated_failures_are_rate_limited(site: Site) -> None:
    for _ in range(5):
        r = await site.client.post("/api/login", json={"user": "ana", "password": "guess"})
        assert r.status_code == 401
    r = await site.client.post("/api/login", json={"user": "ana", "password": PASSWORD})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60


async def test_logout_revokes_the_session(site: Site) -> None:
    headers = await site.login("ana")
    assert (await site.client.post("/api/logout", headers=headers)).status_code == 204
    r = await site.client.get("/api/me", headers=headers)
    assert r.status_code == 401


async def test_an_api_token_authenticates_a_program(site: Site) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = await site.client.get("/api/wallboard", headers=headers)
    assert r.status_code == 200
    bad = await site.client.get("/api/wallboard", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_a_tampered_token_is_refused(site: Site) -> None:
    headers = await site.login("ana")
    forged = headers["Authorization"][:-2] + (
        "AA" if not headers["Authorization"].endswith("AA") else "BB"
    )
    r = await site.client.get("/api/me", headers={"Authorization": forged})
    assert r.status_code == 401


# ------------------------------------------------------------------ roles


def _concrete(path: str) -> str:
    return path.format(
        offer_id="o1", interaction_id="i1", queue="support", agent_id="ana", customer_id="c1"
    )


@pytest.mark.parametrize(
    "method,path", [(e.method, e.path) for e in ENDPOINTS if e.role is not None]
)
async def test_every_endpoint_needs_a_login(site: Site, method: str, path: str) -> None:
    r = await site.call(None, method, _concrete(path), json={})
    assert r.status_code == 401
    assert "log in" in r.json()["error"]


@pytest.mark.parametrize(
    "user,method,path",
    [
        (user, e.method, e.path)
        for e in ENDPOINTS
        if e.role is not None
        for user in ("ana", "sue")
        if (e.role.value, user) in {("supervisor", "ana"), ("admin", "ana"), ("admin", "sue")}
    ],
)
async def test_roles_are_enforced(site: Site, user: str, method: str, path: str) -> None:
    r = await site.call(user, method, _concrete(path), json={})
    assert r.status_code == 403
    assert "role" in r.json()["error"]


async def test_an_agent_reads_only_their_own_interactions(site: Site) -> None:
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    mine = await site.submit()
    offer = (await site.call("ana", "GET", "/api/inbox")).json()["offers"][0]
    assert offer["interaction"]["id"] == mine.id
    assert (await site.call("ana", "GET", f"/api/interactions/{mine.id}")).status_code == 200
    other = await site.submit("sales")  # nobody ready for sales: it waits
    r = await site.call("ana", "GET", f"/api/interactions/{other.id}")
    assert r.status_code == 404
    assert (await site.call("bob", "GET", f"/api/interactions/{mine.id}")).status_code == 404
    assert (await site.call("sue", "GET", f"/api/interactions/{other.id}")).status_code == 200
    r = await site.call("bob", "POST", f"/api/offers/{offer['id']}/accept")
    assert r.status_code == 404  # not bob's offer: as if there were none


# ------------------------------------------------------------------ the agent's day


async def test_an_agent_takes_a_chat_from_offer_to_wrap_up(site: Site) -> None:
    r = await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    assert r.json()["activity"] == "ready"
    ix = await site.submit()
    inbox = (await site.call("ana", "GET", "/api/inbox")).json()
    assert [o["interaction"]["id"] for o in inbox["offers"]] == [ix.id]
    offer_id = inbox["offers"][0]["id"]
    accepted = await site.call("ana", "POST", f"/api/offers/{offer_id}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "assigned" and accepted.json()["agent"] == "ana"
    inbox = (await site.call("ana", "GET", "/api/inbox")).json()
    assert inbox["offers"] == [] and [w["id"] for w in inbox["work"]] == [ix.id]
    assert inbox["load"] == {"webchat": 1} and inbox["activity"] == "busy"
    r = await site.call("ana", "POST", f"/api/interactions/{ix.id}/complete")
    assert r.status_code == 204
    assert site.app.router.interaction(ix.id).state == "wrap_up"
    r = await site.call("ana", "POST", f"/api/interactions/{ix.id}/wrap-up/end")
    assert r.status_code == 204
    inbox = (await site.call("ana", "GET", "/api/inbox")).json()
    assert inbox["work"] == [] and inbox["activity"] == "ready"


async def offer_to_one_of_two(site: Site) -> tuple[Interaction, str, str]:
    """Both agents ready, one chat: (the chat, who it is offered to, the offer id)."""
    for agent in ("ana", "bob"):
        await site.call(agent, "PUT", "/api/inbox/presence", json={"presence": "ready"})
    ix = await site.submit()
    holder = next(a for a in ("ana", "bob") if site.app.router.agent(a).offers)
    return ix, holder, next(iter(site.app.router.agent(holder).offers))


async def test_decline_passes_the_offer_on(site: Site) -> None:
    ix, holder, offer_id = await offer_to_one_of_two(site)
    r = await site.call(holder, "POST", f"/api/offers/{offer_id}/decline")
    assert r.status_code == 204
    other = "bob" if holder == "ana" else "ana"
    offers = (await site.call(other, "GET", "/api/inbox")).json()["offers"]
    assert [o["interaction"]["id"] for o in offers] == [ix.id]


async def test_not_ready_needs_a_valid_presence(site: Site) -> None:
    r = await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "lunch"})
    assert r.status_code == 422
    assert r.json()["where"] == "presence"
    r = await site.call(
        "ana", "PUT", "/api/inbox/presence", json={"presence": "not_ready", "reason": "lunch"}
    )
    assert r.json()["presence"] == "not_ready" and r.json()["reason"] == "lunch"


async def test_transfer_to_a_queue_and_body_checks(site: Site) -> None:
    ix, agent, offer_id = await offer_to_one_of_two(site)
    await site.call(agent, "POST", f"/api/offers/{offer_id}/accept")
    r = await site.call(agent, "POST", f"/api/interactions/{ix.id}/transfer", json={})
    assert r.status_code == 422 and "exactly one" in r.json()["error"]
    r = await site.call(
        agent, "POST", f"/api/interactions/{ix.id}/transfer", json={"to_queue": "sales"}
    )
    assert r.status_code == 204, r.text
    assert site.app.router.interaction(ix.id).queue == "sales"


async def test_bad_bodies_are_refused_with_where(site: Site) -> None:
    headers = await site.login("ana")
    r = await site.client.put(
        "/api/inbox/presence",
        content=b"{not json",
        headers={**headers, "content-type": "application/json"},
    )
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = await site.client.put(
        "/api/inbox/presence", json={"presence": "ready", "mood": "great"}, headers=headers
    )
    assert r.status_code == 422 and "mood" in r.json()["error"]
    big = {"presence": "ready", "reason": "x" * 2_000_000}
    r = await site.client.put("/api/inbox/presence", json=big, headers=headers)
    assert r.status_code == 413


# ------------------------------------------------------------------ supervisors and admins


async def test_the_wallboard_counts_waiting_and_agents(site: Site) -> None:
    board = (await site.call("sue", "GET", "/api/wallboard")).json()
    support = next(q for q in board["queues"] if q["name"] == "support")
    assert support["waiting"] == 0 and support["kpis"]["offered"] == 0
    assert board["agents_by_activity"] == {"offline": 2}
    for _ in range(3):
        await site.submit()
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    board = (await site.call("sue", "GET", "/api/wallboard")).json()
    support = next(q for q in board["queues"] if q["name"] == "support")
    assert support["kpis"]["offered"] == 3
    assert support["waiting"] == 1  # ana has room for two chats: two are offered to her
    assert support["longest_wait"] >= 0
    assert board["agents_by_activity"] == {"offline": 1, "busy": 1}


async def test_a_supervisor_assigns_a_waiting_interaction(site: Site) -> None:
    ix = await site.submit("sales")
    await site.call("bob", "PUT", "/api/inbox/presence", json={"presence": "not_ready"})
    waiting = (await site.call("sue", "GET", "/api/queues/sales/waiting")).json()
    assert [w["id"] for w in waiting] == [ix.id]
    r = await site.call("sue", "POST", f"/api/interactions/{ix.id}/assign", json={"agent": "ghost"})
    assert r.status_code == 404
    r = await site.call("sue", "POST", f"/api/interactions/{ix.id}/assign", json={"agent": "bob"})
    assert r.status_code in (200, 409), r.text
    explain = await site.call("sue", "GET", f"/api/interactions/{ix.id}/explain")
    assert explain.status_code == 200 and explain.json()["interaction"] == ix.id
    assert (await site.call("sue", "GET", "/api/queues/nope/waiting")).status_code == 404


async def test_a_supervisor_changes_an_agents_presence(site: Site) -> None:
    r = await site.call("sue", "PUT", "/api/agents/bob/presence", json={"presence": "ready"})
    assert r.status_code == 200 and r.json()["presence"] == "ready"
    agents = (await site.call("sue", "GET", "/api/agents")).json()
    assert {a["id"]: a["presence"] for a in agents} == {"ana": "offline", "bob": "ready"}


async def test_an_admin_adds_changes_and_removes_an_agent(site: Site) -> None:
    carl = {"id": "carl", "skills": {"sales": 4}, "capacity": {"webchat": 3}}
    r = await site.call("root", "PUT", "/api/agents/carl", json=carl)
    assert r.status_code == 200 and r.json()["capacity"] == {"webchat": 3}
    assert "carl" in site.app.router.agents
    r = await site.call("root", "PUT", "/api/agents/carl", json={**carl, "skills": {"sales": 9}})
    assert r.status_code == 422 and r.json()["where"] == "skills.sales"
    r = await site.call("root", "PUT", "/api/agents/dan", json=carl)
    assert r.status_code == 422 and r.json()["where"] == "id"
    await site.call("sue", "PUT", "/api/agents/carl/presence", json={"presence": "ready"})
    r = await site.call("root", "DELETE", "/api/agents/carl")
    assert r.status_code == 409 and "offline" in r.json()["error"]
    await site.call("sue", "PUT", "/api/agents/carl/presence", json={"presence": "offline"})
    assert (await site.call("root", "DELETE", "/api/agents/carl")).status_code == 204
    assert "carl" not in site.app.router.agents


async def test_queues_are_listed_as_they_run(site: Site) -> None:
    r = await site.call("sue", "GET", "/api/queues")
    assert r.status_code == 200
    assert [q["name"] for q in r.json()] == ["support", "sales"]
    r = await site.call("sue", "GET", "/api/queues/support")
    assert r.status_code == 200 and r.json()["skills"] == {"support": 1}
    assert r.json()["sla"] == {"target": 0.8, "seconds": 20, "measure": "answer"}
    assert (await site.call("sue", "GET", "/api/queues/nope")).status_code == 404


async def test_an_admin_adds_and_changes_a_queue_live(site: Site) -> None:
    vip = {
        "name": "vip",
        "skills": {"support": 3},
        "strategy": "round-robin",
        "priority": 5,
        "sla": {"target": 0.9, "seconds": 10},
        "escalation": [{"after": 30, "relax": 1}, {"after": 60, "overflow": "support"}],
        "max_wait": 600,
        "hours": {"timezone": "Europe/Lisbon", "weekly": {"mon": ["00:00-24:00"]}},
        "wrap_up": 5,
        "script": "Greet by name.",
        "canned": ["One moment, please."],
    }
    r = await site.call("root", "PUT", "/api/queues/vip", json=vip)
    assert r.status_code == 200, r.text
    assert r.json()["escalation"][1]["overflow"] == "support"
    assert site.app.router.queues["vip"].config.priority == 5
    # A chat waiting in sales (bob's skill, bob offline) goes to ana once sales asks for
    # what she has: the change applies to the interaction already waiting.
    await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
    chat = await site.app.submit(Interaction(id="s1", channel="webchat", queue="sales"))
    assert site.app.router.interaction(chat.id).state.value == "waiting"
    r = await site.call("root", "PUT", "/api/queues/sales", json={"name": "sales"})
    assert r.status_code == 200 and r.json()["skills"] == {}
    inbox = (await site.call("ana", "GET", "/api/inbox")).json()
    assert [o["interaction"]["id"] for o in inbox["offers"]] == ["s1"]


@pytest.mark.parametrize(
    "body,where,words",
    [
        ({"sla": {"seconds": "x"}}, "sla.seconds", "expected int, got str"),
        ({"strategy": "nope"}, "strategy", 'unknown strategy "nope"; installed: '),
        ({"escalation": [{"after": 5, "overflow": "nope"}]}, "escalation[0].overflow", "nope"),
        ({"escalation": [{"after": 5}]}, "escalation[0]", "does nothing"),
        ({"hours": {"timezone": "Mars/Olympus"}}, "hours.timezone", "Mars"),
        ({"mood": "calm"}, None, 'unknown field "mood"'),
        ({"name": "other"}, "name", 'the path "vip"'),
    ],
)
async def test_an_invalid_queue_is_refused_naming_the_field(
    site: Site, body: dict[str, Any], where: str | None, words: str
) -> None:
    r = await site.call("root", "PUT", "/api/queues/vip", json={"name": "vip", **body})
    assert r.status_code == 422, r.text
    assert r.json()["where"] == where and words in r.json()["error"], r.json()
    assert "vip" not in site.app.router.queues


async def test_an_unknown_strategy_names_the_installed_ones(site: Site) -> None:
    r = await site.call("root", "PUT", "/api/queues/vip", json={"name": "vip", "strategy": "x"})
    assert "longest-idle" in r.json()["error"] and "round-robin" in r.json()["error"]


async def test_an_admin_removes_a_queue_once_nothing_uses_it(site: Site) -> None:
    assert (await site.call("root", "DELETE", "/api/queues/nope")).status_code == 404
    await site.app.submit(Interaction(id="s1", channel="webchat", queue="sales"))
    r = await site.call("root", "DELETE", "/api/queues/sales")
    assert r.status_code == 409 and "1 live interaction" in r.json()["error"]
    await site.app.abandon("s1")
    overflow = {"name": "support", "escalation": [{"after": 9, "overflow": "sales"}]}
    assert (await site.call("root", "PUT", "/api/queues/support", json=overflow)).is_success
    r = await site.call("root", "DELETE", "/api/queues/sales")
    assert r.status_code == 409 and "overflow target of support" in r.json()["error"]
    assert (
        await site.call("root", "PUT", "/api/queues/support", json={"name": "support"})
    ).is_success
    assert (await site.call("root", "DELETE", "/api/queues/sales")).status_code == 204
    assert (await site.call("sue", "GET", "/api/queues/sales")).status_code == 404


async def test_a_change_that_strands_waiting_chats_is_refused(site: Site) -> None:
    await site.app.submit(Interaction(id="s1", channel="webchat", queue="sales"))
    body = {"name": "sales", "channels": ["voice"]}
    r = await site.call("root", "PUT", "/api/queues/sales", json=body)
    assert r.status_code == 409 and "webchat" in r.json()["error"]


async def test_queue_changes_survive_a_restart(site: Site) -> None:
    body = {"name": "sales", "skills": {"sales": 2}, "sla": {"seconds": 45}}
    assert (await site.call("root", "PUT", "/api/queues/sales", json=body)).is_success
    assert (await site.call("root", "PUT", "/api/queues/new", json={"name": "new"})).is_success
    assert (await site.call("root", "DELETE", "/api/queues/support")).status_code == 204
    again = App.from_dict(document(), store=site.app.store)
    async with again.running():
        queues = again.router.queues
        assert list(queues) == ["sales", "new"]
        assert queues["sales"].config.sla.seconds == 45


# ------------------------------------------------------------------ live events


async def _events(site: Site, user: str, out: list[dict[str, Any]], n: int) -> None:
    token = site.tokens[user]
    url = site.url.replace("http", "ws") + f"/api/events?token={token}"
    async with websockets.connect(url) as socket:
        out.append({"type": "connected"})
        while len(out) < n + 1:
            out.append(json.loads(await socket.recv()))


async def test_live_events_are_filtered_by_role(site: Site) -> None:
    await site.login("ana")
    await site.login("sue")
    ana: list[dict[str, Any]] = []
    sue: list[dict[str, Any]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_events, site, "ana", ana, 2)
        tg.start_soon(_events, site, "sue", sue, 4)
        with anyio.fail_after(5):
            while not (ana and sue):
                await anyio.sleep(0.01)
        await site.submit("sales")  # ana cannot see this one
        await site.call("ana", "PUT", "/api/inbox/presence", json={"presence": "ready"})
        await site.submit("support")
        with anyio.fail_after(5):
            while len(ana) < 3 or len(sue) < 5:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert [e["type"] for e in ana[1:3]] == ["agent_state", "offered"]
    assert [e["type"] for e in sue[1:5]] == ["queued", "agent_state", "queued", "offered"]


async def test_the_event_socket_needs_a_login(site: Site) -> None:
    url = site.url.replace("http", "ws") + "/api/events?token=forged"
    async with websockets.connect(url) as socket:
        with pytest.raises(websockets.ConnectionClosed) as info:
            await socket.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401


async def test_the_event_socket_refuses_other_sites_and_ends_at_logout(site: Site) -> None:
    headers = await site.login("sue")
    token = site.tokens["sue"]
    url = site.url.replace("http", "ws") + f"/api/events?token={token}"
    async with websockets.connect(url, origin="https://evil.example") as socket:  # type: ignore[arg-type]
        with pytest.raises(websockets.ConnectionClosed) as info:
            await socket.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4403
    async with websockets.connect(url) as socket:
        await site.client.post("/api/logout", headers=headers)
        with anyio.fail_after(5), pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await socket.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401


# ------------------------------------------------------------------ the API description


async def test_the_openapi_document_describes_every_endpoint(site: Site) -> None:
    doc = (await site.client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    for e in ENDPOINTS:
        operation = doc["paths"][e.path][e.method.lower()]
        assert operation["summary"]
        if e.role is not None:
            assert {"401", "403"} <= set(operation["responses"])
        if e.body is not None:
            assert operation["requestBody"]["content"]["application/json"]["schema"]
    assert "Interaction" in doc["components"]["schemas"]


# ------------------------------------------------------------------ the command


def test_omniroute_serve_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    doc = document()
    doc["server"]["users"] = doc["server"]["users"][:1]
    config = tmp_path / "omniroute.toml"
    config.write_text(_toml(doc))
    proc = subprocess.Popen(
        [sys.executable, "-m", "omniroute", "serve", str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("omniroute: serving on http://127.0.0.1:"), line
        url = line.split()[3]
        r = httpx.post(f"{url}/api/login", json={"user": "ana", "password": PASSWORD})
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_omniroute_serve_names_config_errors(tmp_path: Path) -> None:
    doc = document()
    doc["server"]["users"].append({"id": "zed", "password_hash": "plain-text"})
    config = tmp_path / "omniroute.toml"
    config.write_text(_toml(doc))
    result = subprocess.run(
        [sys.executable, "-m", "omniroute", "serve", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert 'server.users[5].id: no agent "zed"' in result.stderr
    assert "server.users[5].password_hash: not a hash from `omniroute passwd`" in result.stderr


def _toml(doc: dict[str, Any]) -> str:
    """TOML for the test document (msgspec writes TOML through tomli-w only; keep it
    simple: inline tables are valid TOML for everything here)."""
    lines = []
    for queue in doc["queues"]:
        lines.append("[[queues]]")
        lines.extend(f"{k} = {_value(v)}" for k, v in queue.items())
    for agent in doc["agents"]:
        lines.append("[[agents]]")
        lines.extend(f"{k} = {_value(v)}" for k, v in agent.items())
    lines.append("[server]")
    for k, v in doc["server"].items():
        lines.append(f"{k} = {_value(v)}")
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return msgspec.json.encode(v).decode()


async def test_sessions_expire() -> None:
    doc = document()
    doc["server"]["session_ttl"] = 1
    async with serving(App.from_dict(doc, store=MemoryStore())) as site:
        headers = await site.login("ana")
        assert (await site.client.get("/api/me", headers=headers)).status_code == 200
        await anyio.sleep(2.2)
        assert (await site.client.get("/api/me", headers=headers)).status_code == 401


async def test_cookie_sessions_refuse_other_sites_and_non_json_bodies(site: Site) -> None:
    r = await site.client.post("/api/login", json={"user": "ana", "password": PASSWORD})
    assert r.status_code == 200  # the cookie is set on the client from here on
    evil = {"origin": "https://evil.example"}
    r = await site.client.put("/api/inbox/presence", json={"presence": "ready"}, headers=evil)
    assert r.status_code == 403 and "another site" in r.json()["error"]
    r = await site.client.put(
        "/api/inbox/presence",
        content=b'{"presence": "ready"}',
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 415
    own = {"origin": site.url}
    r = await site.client.put("/api/inbox/presence", json={"presence": "ready"}, headers=own)
    assert r.status_code == 200
    r = await site.client.post("/api/logout")
    assert r.status_code == 204 and 'omniroute_session=""' in r.headers["set-cookie"]

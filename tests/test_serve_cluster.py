"""`omniroute serve` on PostgreSQL, three nodes, every one serving (active/active).

A customer chats through node B's widget socket while an agent works on node C; the
leader A routes. B's wallboard reads its own replica. Then A is killed with `kill -9`
under load (customers starting chats on B and C, agents accepting on B and C): another
node takes over within 5 s, a write made on a follower during the gap is answered,
the chat goes on, and the log holds every acknowledged chat and message once, with no
interaction assigned twice.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
import websockets
from pgkit import DSN, needs_postgres
from pgkit import schema as schema

from omniroute import events as ev
from omniroute.web.passwords import hash_password

pytestmark = [needs_postgres, pytest.mark.slow, pytest.mark.anyio]

BOTS = ["b1", "b2", "b3", "b4"]
TAKEOVER_LIMIT = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config(schema_name: str) -> str:
    password_hash = hash_password("pw", n=2**10)
    users = "".join(
        f'\n[[server.users]]\nid = "{user}"\nrole = "{role}"\npassword_hash = "{password_hash}"\n'
        for user, role in [("ana", "agent"), ("sam", "supervisor")] + [(b, "agent") for b in BOTS]
    )
    bots = "".join(f'\n[[agents]]\nid = "{b}"\ncapacity = {{ webchat = 2 }}\n' for b in BOTS)
    return f"""
[[queues]]
name = "support"
offer_timeout = 5
wrap_up = 0

[[agents]]
id = "ana"
name = "Ana"
capacity = {{ webchat = 1 }}
{bots}
[store]
backend = "postgres"
dsn = "{DSN}"
schema = "{schema_name}"

[plugins.webchat]
topics = {{ "Support" = "support" }}
connections_per_address = 1000
chats_per_hour = 100000

[server]
secret = "a-secret-shared-by-every-node"
{users}"""


def start(path: Path, err: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "omniroute", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
        env={**(env or os.environ), "PYTHONUNBUFFERED": "1"},
    )


def serving_url(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the node did not start serving"
    line = proc.stdout.readline()
    assert line.startswith("omniroute: serving on "), line
    return line.split()[3]


def leadership(schema: str) -> tuple[int, int]:
    """(epoch, pid of the leading node)."""
    with psycopg.connect(DSN) as conn:
        row = conn.execute(f'SELECT epoch, node FROM "{schema}".leader').fetchone()
    assert row is not None and row[1]
    return int(row[0]), int(row[1].rsplit(":", 1)[1])


class Customer:
    """One web chat page: its socket, and everything it was told."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket
        self.interaction = ""

    async def expect(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            while True:
                data = json.loads(await self.socket.recv())
                if data["type"] == kind:
                    return data

    async def say(self, text: str, mid: str, timeout: float = 15) -> dict[str, Any]:
        await self.socket.send(json.dumps({"type": "message", "text": text, "id": mid}))
        return await self.expect("ack", timeout)


async def open_chat(base: str, name: str) -> Customer:
    socket = await websockets.connect(base.replace("http", "ws") + "/webchat/socket")
    customer = Customer(socket)
    await customer.expect("hello")
    await socket.send(json.dumps({"type": "start", "name": name}))
    customer.interaction = (await customer.expect("started", 15))["interaction"]
    return customer


async def login(client: httpx.AsyncClient, base: str, user: str) -> dict[str, str]:
    r = await client.post(f"{base}/api/login", json={"user": user, "password": "pw"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def events(base: str, headers: dict[str, str]) -> websockets.ClientConnection:
    token = headers["Authorization"].split()[1]
    return await websockets.connect(base.replace("http", "ws") + f"/api/events?token={token}")


async def next_event(socket: websockets.ClientConnection, kind: str, **match: Any) -> Any:
    with anyio.fail_after(10):
        while True:
            data = json.loads(await socket.recv())
            if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
                return data


async def until_ok(send: Any, *ok: int) -> httpx.Response:
    """Send until the answer is not a 503 (a failover in progress), as a client should."""
    while True:
        r: httpx.Response = await send()
        if r.status_code != 503:
            assert r.status_code in ok, r.text
            return r
        assert r.headers.get("retry-after"), "a 503 says when to retry"
        await anyio.sleep(0.2)


@pytest.fixture
def nodes(schema: str, tmp_path: Path) -> Any:
    path = tmp_path / "omniroute.toml"
    path.write_text(config(schema))
    with serving_nodes(path, tmp_path) as procs:
        yield procs


@contextmanager
def serving_nodes(
    path: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> Iterator[dict[int, tuple[subprocess.Popen[str], Path, str]]]:
    """Three `omniroute serve` nodes on the config at `path` (its schema migrated
    first), by pid: (process, stderr file, url); stopped after the block."""
    migrate = [sys.executable, "-m", "omniroute", "store", "migrate", str(path)]
    subprocess.run(migrate, check=True, capture_output=True, env=env)
    procs: dict[int, tuple[subprocess.Popen[str], Path, str]] = {}
    try:
        for n in range(3):
            err = tmp_path / f"node{n}.err"
            proc = start(path, err, env)
            try:
                url = serving_url(proc, 30)
            except AssertionError:
                proc.kill()
                raise AssertionError(err.read_text()[-3000:]) from None
            procs[proc.pid] = (proc, err, url)
        yield procs
    finally:
        for proc, *_ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # in case a test froze it
                proc.send_signal(signal.SIGTERM)
        for proc, *_ in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_three_nodes_serve_and_survive_the_leader(nodes: Any, schema: str) -> None:
    epoch, leader_pid = leadership(schema)
    a_proc = nodes[leader_pid][0]
    (b_proc, b_err, b), (c_proc, c_err, c) = [v for pid, v in nodes.items() if pid != leader_pid]
    accepted: list[str] = []  # offers whose acceptance was acknowledged
    started: list[str] = []  # chats whose start was acknowledged
    acked: list[str] = []  # customer messages acknowledged
    stop = anyio.Event()

    async with httpx.AsyncClient(timeout=20) as client, anyio.create_task_group() as tg:
        # the agent works on C, the customer chats on B: A (the leader) routes
        ana = await login(client, c, "ana")
        ana_events = await events(c, ana)
        r = await client.put(f"{c}/api/inbox/presence", json={"presence": "ready"}, headers=ana)
        assert r.status_code == 200 and r.json()["presence"] == "ready"
        carla = await open_chat(b, "Carla")
        offer = await next_event(ana_events, "offered", agent_id="ana")
        assert offer["interaction_id"] == carla.interaction
        accept = f"{c}/api/offers/{offer['offer_id']}/accept"
        keyed = {**ana, "Idempotency-Key": "accept-carla"}
        r = await client.post(accept, headers=keyed)
        assert r.status_code == 200 and r.json()["agent"] == "ana"
        again = await client.post(accept, headers=keyed)  # a client's retry: the same answer
        assert again.status_code == 200 and again.json() == r.json()
        unkeyed = await client.post(accept, headers=ana)
        assert unkeyed.status_code == 404  # as on the leader: no such pending offer
        await carla.expect("agent_joined")
        assert (await carla.say("My order is late", "m1"))["type"] == "ack"
        acked.append("m1")
        ix = carla.interaction
        # typing reaches the other node too (not stored: through a NOTIFY)
        await carla.socket.send(json.dumps({"type": "typing"}))
        typing = await next_event(ana_events, "typing", interaction_id=ix)
        assert typing["sender"] == "customer"
        r = await client.post(f"{c}/api/interactions/{ix}/typing", headers=ana)
        assert r.status_code == 204
        assert (await carla.expect("typing"))["name"] == "Ana"
        r = await client.post(
            f"{c}/api/interactions/{ix}/messages", json={"text": "Let me look"}, headers=ana
        )
        assert r.status_code == 201
        said = await carla.expect("message")
        assert (said["from"], said["name"], said["text"]) == ("agent", "Ana", "Let me look")
        conversation = await client.get(f"{c}/api/interactions/{ix}/conversation", headers=ana)
        assert [m["text"] for m in conversation.json()["messages"]] == [
            "My order is late",
            "Let me look",
        ]

        # B's wallboard, from B's replica: Ana busy with Carla, Dora waiting
        dora = await open_chat(b, "Dora")
        started.append(dora.interaction)
        sam = await login(client, b, "sam")
        board = (await client.get(f"{b}/api/wallboard", headers=sam)).json()
        support = next(q for q in board["queues"] if q["name"] == "support")
        assert support["waiting"] == 1
        agent = next(x for x in board["agents"] if x["id"] == "ana")
        assert agent["load"] == {"webchat": 1} and [w["id"] for w in agent["work"]] == [ix]
        waiting = (await client.get(f"{b}/api/queues/support/waiting", headers=sam)).json()
        assert [w["id"] for w in waiting] == [dora.interaction]
        explained = await client.get(
            f"{b}/api/interactions/{dora.interaction}/explain", headers=sam
        )
        assert explained.status_code == 200 and explained.json()["state"] == "waiting"

        # a logout on B ends the session on C too: its note goes through the log
        assert (await client.get(f"{c}/api/me", headers=sam)).status_code == 200
        assert (await client.post(f"{b}/api/logout", headers=sam)).status_code == 204
        assert (await client.get(f"{b}/api/me", headers=sam)).status_code == 401
        with anyio.fail_after(10):
            while (await client.get(f"{c}/api/me", headers=sam)).status_code != 401:
                await anyio.sleep(0.05)

        # load: agents on B and C take chats, customers keep coming on B and C
        async def bot(base: str, user: str) -> None:
            headers = await login(client, base, user)
            socket = await events(base, headers)
            await until_ok(
                lambda: client.put(
                    f"{base}/api/inbox/presence", json={"presence": "ready"}, headers=headers
                ),
                200,
            )
            async with anyio.create_task_group() as work:
                async for raw in socket:
                    data = json.loads(raw)
                    if data["type"] == "offered" and data["agent_id"] == user:
                        work.start_soon(handle, base, headers, data)
                    if stop.is_set():
                        break
                work.cancel_scope.cancel()
            await socket.close()

        async def handle(base: str, headers: dict[str, str], offer: dict[str, Any]) -> None:
            url = f"{base}/api/offers/{offer['offer_id']}/accept"
            r = await until_ok(lambda: client.post(url, headers=headers), 200, 404, 409)
            if r.status_code != 200:
                return  # the offer expired or was revoked meanwhile
            accepted.append(offer["offer_id"])
            await anyio.sleep(0.3)
            done = f"{base}/api/interactions/{offer['interaction_id']}/complete"
            await until_ok(lambda: client.post(done, headers=headers), 204, 404, 409)

        async def customers(base: str, name: str) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    customer = await open_chat(base, f"{name}{n}")
                except websockets.ConnectionClosed as exc:
                    assert exc.rcvd is not None and exc.rcvd.code == 1013, exc  # try again
                    continue
                started.append(customer.interaction)
                await customer.socket.close()
                await anyio.sleep(0.05)

        for i, user in enumerate(BOTS):
            tg.start_soon(bot, (b, c)[i % 2], user)
        tg.start_soon(customers, b, "B")
        tg.start_soon(customers, c, "C")
        await anyio.sleep(2.0)
        assert started and accepted, "load is running"

        # kill -9 the leader under load; a write on a follower during the gap
        a_proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        killed_at = time.time()
        gap = await carla.say("Still there?", "m2")  # through B, during the gap
        answered = time.monotonic() - killed
        acked.append("m2")
        r = await client.put(f"{c}/api/inbox/presence", json={"presence": "ready"}, headers=ana)
        assert r.status_code in (200, 503), r.text
        new_epoch, new_pid = leadership(schema)
        assert new_epoch > epoch and new_pid in (b_proc.pid, c_proc.pid)
        with psycopg.connect(DSN) as conn:
            since = conn.execute(f'SELECT extract(epoch FROM since) FROM "{schema}".leader')
            led_at = float(since.fetchone()[0])  # type: ignore[index]
        print(
            f"\ntakeover: new leader after {led_at - killed_at:.2f}s; a follower's write"
            f" answered {answered:.2f}s after the kill"
        )
        assert gap["type"] == "ack"
        assert answered < TAKEOVER_LIMIT, f"the write waited {answered:.1f}s"

        # the chat goes on, across B and C, with the new leader
        r = await until_ok(
            lambda: client.post(
                f"{c}/api/interactions/{ix}/messages", json={"text": "Yes!"}, headers=ana
            ),
            201,
        )
        said = await carla.expect("message")
        assert said["text"] == "Yes!"
        await carla.say("Thanks", "m3")
        acked.append("m3")
        await anyio.sleep(1.5)  # load on the new leader
        stop.set()
        await carla.socket.close()
        await ana_events.close()
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()

    for proc, err in ((b_proc, b_err), (c_proc, c_err)):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, err.read_text()[-3000:]
    check_log(schema, started=started, accepted=accepted, acked=acked, carla=ix)


def check_log(
    schema: str,
    *,
    started: list[str],
    accepted: list[str],
    acked: list[str],
    carla: str,
) -> None:
    with psycopg.connect(DSN) as conn:
        rows = conn.execute(
            f'SELECT seq, data::text FROM "{schema}".events ORDER BY seq'
        ).fetchall()
    log = [ev.decode(data) for _, data in rows]
    queued = Counter(e.interaction.id for e in log if isinstance(e, ev.InteractionQueued))
    assert all(n == 1 for n in queued.values())
    assert not [i for i in started if i not in queued], "an acknowledged chat is missing"
    assigned = Counter(e.offer_id for e in log if isinstance(e, ev.Assigned))
    assert all(n == 1 for n in assigned.values())
    assert not [o for o in accepted if assigned[o] != 1], "an acknowledged acceptance is missing"
    holder: dict[str, str] = {}
    for e in log:
        if isinstance(e, ev.Assigned):
            assert e.interaction_id not in holder, f"{e.interaction_id} assigned twice"
            holder[e.interaction_id] = e.agent_id
        elif isinstance(e, ev.Completed | ev.Requeued | ev.Transferred | ev.Abandoned):
            holder.pop(e.interaction_id, None)
    said = Counter(
        e.message.id
        for e in log
        if isinstance(e, ev.MessageAdded) and e.message.interaction_id == carla
    )
    for mid in acked:
        assert said[f"{carla}-c-{mid}"] == 1, f"message {mid}: {said}"

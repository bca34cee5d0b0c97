"""Channel actions relayed to the leader, nodes in one process on the real PostgreSQL:
a follower's call runs on the leader's channel and gets its answer or its error; a key
makes a retry answer the first result; no leader in time is a 503 that says when to
retry; a takeover moves the actions with the channel."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import msgspec
import pytest
import relay_probe
from pgkit import DSN, needs_postgres
from pgkit import schema as schema
from relay_probe import Probe, Where
from test_cluster import leader_and_follower, until_leader
from webkit import PASSWORD, document

from omniroute.actions import ActionError, UnknownAction, decode_outcome
from omniroute.cluster import CommandTimeout, Node
from omniroute.plugins import PluginHost
from omniroute.router.core import RouterError
from omniroute.web.asgi import create_asgi_app

if not importlib.metadata.entry_points(group="pytest11", name="omniroute"):
    pytest_plugins = ["omniroute.testing"]

pytestmark = [needs_postgres, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def probe_node(schema: str, name: str, **options: Any) -> Node:
    """A node with the probe plugin registered on its own host (its own adapter)."""
    host = PluginHost(entry_points=False)
    host.register(relay_probe, name="relay-probe")
    options.setdefault("election_interval", 0.1)
    options.setdefault("poll_interval", 0.5)
    config = {**document(), "plugins": {"probe": {}}}
    return Node.from_dict(config, dsn=DSN, schema=schema, name=name, host=host, **options)


def probe(node: Node) -> Probe:
    adapter = node.app.channels["probe"]
    assert isinstance(adapter, Probe)
    return adapter


@pytest.fixture
async def pair(schema: str) -> AsyncIterator[tuple[Node, Node]]:
    """A leader and a node that never leads."""
    async with (
        probe_node(schema, "leader").running() as leader,
        probe_node(schema, "front", lead=False).running() as front,
    ):
        await until_leader(leader)
        with anyio.fail_after(5):
            while not probe(leader).running:
                await anyio.sleep(0.02)
        yield leader, front


async def test_a_followers_action_runs_on_the_leaders_channel(pair: tuple[Node, Node]) -> None:
    leader, front = pair
    answer = await front.app.channel_call("probe", "where", {"tag": "from the front"})
    assert answer == Where(answer.pid, "leader", True, 1, "from the front")
    assert (probe(leader).count, probe(front).count) == (1, 0)
    assert not probe(front).running  # the follower has the adapter, not running
    # the leader runs its own calls directly
    assert (await leader.app.channel_call("probe", "where")).count == 2
    # what the action wrote is in the follower's replica once the call returns
    seq = await front.app.channel_call("probe", "note", {"text": "hello"})
    assert front.app.seq >= seq == leader.app.seq


async def test_a_relayed_actions_errors_come_back_as_themselves(pair: tuple[Node, Node]) -> None:
    leader, front = pair
    with pytest.raises(ActionError, match="no such call") as caught:
        await front.app.channel_call("probe", "refuse", {"status": 404, "message": "no such call"})
    assert caught.value.status == 404
    with pytest.raises(RouterError, match="i9"):
        await front.app.channel_call("probe", "conflict")
    with pytest.raises(RuntimeError, match=r"probe\.crash failed: KeyError"):
        await front.app.channel_call("probe", "crash")
    # refused on the follower already: never sent
    with pytest.raises(UnknownAction, match='no action "teleport"'):
        await front.app.channel_call("probe", "teleport")
    with pytest.raises(ActionError, match=r"\$\.tag") as bad:
        await front.app.channel_call("probe", "where", {"tag": 7})
    assert bad.value.status == 422
    assert probe(leader).count == 0


async def test_an_action_sent_again_under_its_key_runs_once(pair: tuple[Node, Node]) -> None:
    leader, front = pair
    for app in (front.app, leader.app):  # on the leader too, keyed calls take the table
        with app.idempotent("k1"):
            first = await app.channel_call("probe", "where", {"tag": "k1"})
        with app.idempotent("k1"):
            again = await app.channel_call("probe", "where", {"tag": "k1"})
        assert again == first
    assert probe(leader).count == 1
    with front.app.idempotent("k1"), pytest.raises(RouterError, match="another command"):
        await front.app.channel_call("probe", "where", {"tag": "other"})
    assert await front.app.recall("k1") == (msgspec.to_builtins(first),)


async def test_no_leader_in_time_is_a_503_with_retry_after(schema: str) -> None:
    async with probe_node(schema, "front", lead=False, command_timeout=0.3).running() as front:
        with pytest.raises(CommandTimeout, match="withdrawn") as caught:
            await front.app.channel_call("probe", "where")
        assert caught.value.withdrawn
        web = create_asgi_app(front.app, front.app.config.server)
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as client:
            login = await client.post("/api/login", json={"user": "ana", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            r = await client.post("/probe/where", json={}, headers=headers)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2"
        assert "no routing leader took the command" in r.json()["error"]
    async with probe_node(schema, "late").running() as late:  # withdrawn: never runs
        await until_leader(late)
        await anyio.sleep(0.3)
        assert probe(late).count == 0


async def test_actions_move_with_leadership(schema: str) -> None:
    async with anyio.create_task_group() as tg:
        nodes = (probe_node(schema, "first"), probe_node(schema, "second"))
        first, first_scope, second = await leader_and_follower(tg, schema, nodes)
        assert (await second.app.channel_call("probe", "where")).count == 1
        assert probe(first).count == 1
        first_scope.cancel()
        await until_leader(second)
        answer = await second.app.channel_call("probe", "where")
        assert (answer.role, answer.count) == ("leader", 1)
        assert probe(second).count == 1
        tg.cancel_scope.cancel()


async def test_a_call_the_leader_cannot_read_is_refused_not_fatal(pair: tuple[Node, Node]) -> None:
    _, front = pair
    outcome, _ = await front.relay("channel:probe.where", b'{"channel": 1}')
    with pytest.raises(ValueError, match="not understood"):
        decode_outcome(outcome)
    # a leader without the action (a node of another config) refuses by name
    outcome, _ = await front.relay(
        "channel:probe.fly", b'{"channel": "probe", "action": "fly", "payload": {}}'
    )
    with pytest.raises(ActionError, match=r"probe\.fly: not on the leader"):
        decode_outcome(outcome)
    assert (await front.app.channel_call("probe", "where")).count == 1  # still executing

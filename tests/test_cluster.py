"""Nodes of one cluster in one process, on the real PostgreSQL: leadership, commands
forwarded from a follower, takeover, fencing, exactly-once across a failover."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
import psycopg
import pytest
from pgkit import DSN, needs_postgres
from pgkit import schema as schema

from omniroute import Interaction, hookimpl
from omniroute import events as ev
from omniroute.cluster import CommandTimeout, Node
from omniroute.config import ConfigError, from_dict
from omniroute.model import Agent, InteractionState, Message, Queue
from omniroute.plugins import PluginHost
from omniroute.router.core import RouterError
from omniroute.specs import ChannelSpec, ConfigSpec
from omniroute.store import StoreError
from omniroute.store.postgres import FencedError, PostgresStore

pytestmark = [needs_postgres, pytest.mark.anyio]

CONFIG: dict[str, Any] = {
    "queues": [{"name": "support", "offer_timeout": 30, "wrap_up": 0}],
    "agents": [{"id": "a1", "capacity": {"chat": 1}}, {"id": "a2", "capacity": {"chat": 1}}],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def node(schema: str, name: str, **options: Any) -> Node:
    options.setdefault("election_interval", 0.1)
    options.setdefault("poll_interval", 0.5)
    return Node.from_dict(CONFIG, dsn=DSN, schema=schema, name=name, **options)


def chat(number: int) -> Interaction:
    return Interaction(id=f"i{number}", channel="chat", queue="support")


async def until_leader(*nodes: Node, timeout: float = 5.0) -> Node:
    with anyio.fail_after(timeout):
        while True:
            for n in nodes:
                if n.is_leader:
                    return n
            await anyio.sleep(0.02)


async def leader_and_follower(
    tg: anyio.abc.TaskGroup, schema: str, nodes: tuple[Node, Node] | None = None
) -> tuple[Node, anyio.CancelScope, Node]:
    """A leading node (stopped by cancelling the scope) and a second that may lead."""
    first, second = nodes or (node(schema, "first"), node(schema, "second"))
    first_scope = anyio.CancelScope()

    async def run_first() -> None:
        with first_scope:
            await first.run()

    tg.start_soon(run_first)
    await until_leader(first)
    await tg.start(second.run)
    return first, first_scope, second


@pytest.fixture
async def pair(schema: str) -> AsyncIterator[tuple[Node, Node]]:
    """A leader and a node that never leads."""
    async with (
        node(schema, "leader").running() as leader,
        node(schema, "front", lead=False).running() as front,
    ):
        await until_leader(leader)
        yield leader, front


async def test_one_node_leads_and_a_follower_forwards_commands(
    pair: tuple[Node, Node],
) -> None:
    leader, front = pair
    assert not front.is_leader
    assert (await front.leadership()).node == "leader"
    queued = await front.app.submit(chat(1))
    assert queued.id == "i1" and queued.state is InteractionState.WAITING
    assert leader.app is not None
    assert leader.app.router.interaction("i1").state is InteractionState.WAITING
    await front.app.set_presence("a1", "ready")
    offer = leader.app.router.interaction("i1")
    assert offer.state is InteractionState.OFFERED
    offered = [e async for _, e in leader.store.read() if isinstance(e, ev.Offered)]
    assigned = await front.app.accept(offered[0].offer_id, "a1")
    assert assigned.state is InteractionState.ASSIGNED and assigned.agent == "a1"
    # the follower's replica includes what its commands did once they return
    assert front.app.role == "follower"
    assert front.app.router.interaction("i1").agent == "a1"
    assert front.app.router.agent("a1").work == {"i1"}
    # errors come back as themselves, and leave the command done (not retried)
    with pytest.raises(RouterError, match="i9"):
        await front.app.complete("i9")
    with pytest.raises(ValueError):  # refused on the follower already: never forwarded
        await front.command("set_presence", "a1", "dancing")
    # the leader runs its own commands directly
    await leader.app.complete("i1", "a1")
    async with await psycopg.AsyncConnection.connect(DSN) as conn:
        cur = await conn.execute(
            f'SELECT name, done_at IS NOT NULL, result::text FROM "{leader.store.schema}".commands'
            " ORDER BY n"
        )
        rows = await cur.fetchall()
    assert [(name, done) for name, done, _ in rows] == [
        ("submit", True),
        ("set_presence", True),
        ("accept", True),
        ("complete", True),
    ]
    assert "RouterError" in rows[3][2]


async def test_followers_tail_the_log(pair: tuple[Node, Node]) -> None:
    leader, front = pair
    seen: list[str] = []

    async def follow() -> None:
        async for _, event in front.tail():
            if isinstance(event, ev.InteractionQueued):
                seen.append(event.interaction.id)
                if len(seen) == 3:
                    return

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            for i in range(3):
                await leader.app.submit(chat(i))
    assert seen == ["i0", "i1", "i2"]


async def test_a_command_with_no_leader_times_out_and_is_withdrawn(schema: str) -> None:
    async with node(schema, "front", lead=False, command_timeout=0.3).running() as front:
        with pytest.raises(CommandTimeout, match="withdrawn") as caught:
            await front.app.submit(chat(1))
        assert caught.value.withdrawn
    async with node(schema, "late").running() as late:
        await until_leader(late)
        await anyio.sleep(0.3)  # it would have run a pending command by now
        assert late.app is not None and late.app.router.waiting("support") == []


async def test_takeover_fences_the_old_leader_and_runs_pending_commands_once(
    schema: str,
) -> None:
    async with anyio.create_task_group() as tg:
        first, first_scope, second = await leader_and_follower(tg, schema)
        await first.app.submit(chat(1))
        old_epoch = first.store.epoch

        # a command waits in the table while nobody leads: the next leader runs it
        stale = PostgresStore(dsn=DSN, schema=schema)
        stale.fence(old_epoch)
        first_scope.cancel()  # the first node stops; its session (and lock) goes
        submitted = await second.app.submit(chat(2))
        assert submitted.id == "i2"
        assert await until_leader(second) is second
        assert second.store.epoch == (old_epoch or 0) + 1
        assert second.app is not None
        assert [ix.id for ix in second.app.router.waiting("support")] == ["i1", "i2"]

        # the old leader's epoch is fenced out
        with pytest.raises(FencedError, match="superseded"):
            await stale.append([ev.Note(at=0.0, kind="late")])
        await stale.close()
        tg.cancel_scope.cancel()

    check = PostgresStore(dsn=DSN, schema=schema)
    queued = [
        e.interaction.id async for _, e in check.read() if isinstance(e, ev.InteractionQueued)
    ]
    assert queued == ["i1", "i2"]
    await check.close()


async def test_the_next_leader_runs_unfinished_commands_once_and_done_ones_never(
    schema: str,
) -> None:
    async with (
        node(schema, "first").running() as first,
        node(schema, "front", lead=False).running() as front,
    ):
        await until_leader(first)
        await front.app.submit(chat(1))  # done by the first leader
    # a command the first leader claimed but never finished (it died before committing)
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(
            f'INSERT INTO "{schema}".commands (id, node, name, args, claimed)'
            " VALUES ('c-claimed', 'front', 'submit', %s, 1)",
            ('{"args": [{"id": "i2", "channel": "chat", "queue": "support"}], "kwargs": {}}',),
        )
    async with node(schema, "second").running() as second:
        await until_leader(second)
        with anyio.fail_after(5):
            while True:
                async with await psycopg.AsyncConnection.connect(DSN) as conn:
                    cur = await conn.execute(
                        f'SELECT name, epoch, result::text FROM "{schema}".commands'
                        " WHERE done_at IS NOT NULL ORDER BY n"
                    )
                    done = await cur.fetchall()
                if len(done) == 2:
                    break
                await anyio.sleep(0.05)
        assert [(name, epoch) for name, epoch, _ in done] == [("submit", 1), ("submit", 2)]
        assert '"id":"i2"' in done[1][2]
        assert second.app is not None
        assert [ix.id for ix in second.app.router.waiting("support")] == ["i1", "i2"]
    check = PostgresStore(dsn=DSN, schema=schema)
    queued = [
        e.interaction.id async for _, e in check.read() if isinstance(e, ev.InteractionQueued)
    ]
    await check.close()
    assert queued == ["i1", "i2"]


async def test_a_leader_whose_session_is_cut_stops_and_is_fenced(schema: str) -> None:
    """What a network partition does: the server ends the leader's lock session."""
    # the first node notices late (1 s), so the second one takes over first
    async with node(schema, "first", election_interval=1.0).running() as first:
        await until_leader(first)
        async with node(schema, "second", election_interval=0.05).running() as second:
            await first.app.submit(chat(1))
            key = first.store.lock_key
            async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND granted AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                    " AND classid = %s AND objid = %s",
                    ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
                )
                assert await cur.fetchall() == [(True,)]
            assert await until_leader(second) is second
            with anyio.fail_after(5):
                while first.is_leader:
                    await anyio.sleep(0.02)
            with pytest.raises(FencedError):
                await first.store.append([ev.Note(at=0.0, kind="late")])
            # the old leader is a follower now: its commands reach the new one, and its
            # App (rebuilt from the log as a replica) reads what the new leader wrote
            await first.app.submit(chat(2))
            assert first.app.role == "follower"
            assert [ix.id for ix in first.app.router.waiting("support")] == ["i1", "i2"]
            assert second.app is not None
            assert [ix.id for ix in second.app.router.waiting("support")] == ["i1", "i2"]


async def test_a_command_sent_again_under_its_key_runs_once(pair: tuple[Node, Node]) -> None:
    leader, front = pair
    for app in (front.app, leader.app):  # the leader too sends keyed commands to the table
        with app.idempotent("k1"):
            first = await app.submit(chat(1))
        with app.idempotent("k1"):
            again = await app.submit(chat(1))  # answered, not refused as a duplicate
        assert again == first
    with front.app.idempotent("k2"):  # two commands under one key: each its own
        await front.app.set_presence("a1", "ready")
        await front.app.set_presence("a2", "ready")
    assert leader.app.router.agent("a2").presence == "ready"
    with front.app.idempotent("k1"), pytest.raises(RouterError, match="another command"):
        await front.app.set_presence("a1", "offline")
    log = [e async for _, e in leader.store.read()]
    assert [e.interaction.id for e in log if isinstance(e, ev.InteractionQueued)] == ["i1"]


async def test_a_followers_app_serves_reads_and_sends_writes_to_the_leader(
    pair: tuple[Node, Node],
) -> None:
    leader, front = pair
    app = front.app  # what `omniroute serve` serves on a node that does not lead
    assert app.role == "follower"
    with app.subscribe() as live:
        await app.submit(chat(1))
        await app.upsert_agent(Agent(id="a3", capacity={"chat": 1}))  # an admin change
        await app.set_presence("a3", "ready")
        # the replica has the offer already
        assert app.router.interaction("i1").state is InteractionState.OFFERED
        [offer] = app.router.agent("a3").offers
        await app.accept(offer, "a3")
        said = await app.add_message(Message(id="m1", interaction_id="i1", sender="customer"))
        assert said.at > 0  # stamped by the leader
        assert [m.id for m in app.conversations.messages("i1")] == ["m1"]
        with pytest.raises(RouterError, match="i9"):  # refused by the leader, as itself
            await app.add_message(Message(id="m2", interaction_id="i9", sender="customer"))
        kinds = [type(await live.receive()).__name__ for _ in range(6)]
    assert kinds == [
        "InteractionQueued",
        "AgentConfigured",
        "AgentStateChanged",
        "Offered",
        "Assigned",
        "MessageAdded",
    ]
    assert leader.app.router.interaction("i1").agent == "a3"
    note = await app.add_note("crm.synced", {"customer": 7})  # a plugin's fact, too
    assert (note.kind, note.data) == ("crm.synced", {"customer": 7})
    assert isinstance([e async for _, e in leader.store.read()][-1], ev.Note)
    # the replica decides nothing: no offer of its own, no timer
    assert app.router.outbox == [] and app.router.next_deadline() is None


async def test_a_follower_starts_an_outbound_contact_on_the_leader(
    pair: tuple[Node, Node],
) -> None:
    leader, front = pair
    app = front.app
    assert app.role == "follower"
    await app.set_presence("a1", "not_ready", "calls")
    started = await app.start_outbound("a1", "chat", "+15550100")
    assert started.agent == "a1" and started.state is InteractionState.ASSIGNED
    assert leader.app is not None
    assert leader.app.router.agent("a1").work == {started.id}  # the leader decided it
    assert app.router.agent("a1").work == {started.id}  # and the replica has it
    with pytest.raises(RouterError, match="no free capacity"):  # refused there, as itself
        await app.start_outbound("a1", "chat", "+15550101")
    await app.complete(started.id, "a1", "answered")
    completed = [e async for _, e in leader.store.read() if isinstance(e, ev.Completed)]
    assert completed[-1].outcome == "answered"


async def test_a_followers_queue_changes_run_on_the_leader(pair: tuple[Node, Node]) -> None:
    leader, front = pair
    app = front.app
    await app.upsert_queue(Queue(name="vip", skills={"gold": 2}, priority=3))
    assert leader.app.router.queues["vip"].config.priority == 3
    assert app.router.queues["vip"].config.skills == {"gold": 2}  # the replica has it
    with pytest.raises(ConfigError, match="strategy"):  # checked before it is sent
        await app.upsert_queue(Queue(name="vip", strategy="nope"))
    await app.submit(Interaction(id="i1", channel="chat", queue="vip"))
    with pytest.raises(RouterError, match="1 live interaction"):  # refused by the leader
        await app.remove_queue("vip")
    await app.abandon("i1")
    await app.remove_queue("vip")
    assert "vip" not in leader.app.router.queues and "vip" not in app.router.queues


async def test_the_same_app_leads_after_a_takeover(schema: str) -> None:
    async with anyio.create_task_group() as tg:
        _, first_scope, second = await leader_and_follower(tg, schema)
        app = second.app
        await app.submit(chat(1))
        await app.add_message(Message(id="m1", interaction_id="i1", sender="customer"))
        with app.subscribe() as live:
            first_scope.cancel()
            assert await until_leader(second) is second
            assert app.role == "leader" and app.router.waiting("support")[0].id == "i1"
            await app.set_presence("a1", "ready")  # routed here now, timers armed
            assert app.router.next_deadline() is not None
            assert isinstance(await live.receive(), ev.AgentStateChanged)
        assert [m.id for m in app.conversations.messages("i1")] == ["m1"]
        tg.cancel_scope.cancel()


async def test_a_fenced_leader_follows_again_then_leads_again(schema: str) -> None:
    async with node(schema, "first").running() as first:
        await until_leader(first)
        await first.app.submit(chat(1))
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(f'UPDATE "{schema}".leader SET epoch = epoch + 1')  # a usurper
        with pytest.raises(StoreError, match="failed to append"):
            await first.app.submit(chat(2))  # fenced: refused, not acknowledged
        with anyio.fail_after(5):  # it let the lock go, followed, and took it again
            while not (first.is_leader and first.store.epoch == 3):
                await anyio.sleep(0.02)
        await first.app.submit(chat(2))
        assert [ix.id for ix in first.app.router.waiting("support")] == ["i1", "i2"]


class ProbeSettings(msgspec.Struct):
    pass


class ProbePlugin:
    """A channel that receives on the leader only, and says which nodes run it."""

    def __init__(self, node_name: str, running: set[str]) -> None:
        self.node_name = node_name
        self.running = running

    @hookimpl
    def omniroute_channels(self) -> Any:
        yield ChannelSpec(name="probe", factory=lambda _, app: self, leader_only=True)

    @hookimpl
    def omniroute_config_sections(self) -> Any:
        yield ConfigSpec(section="probe", type=ProbeSettings)

    name = "probe"

    async def run(self, app: Any) -> None:
        self.running.add(self.node_name)
        try:
            await anyio.sleep_forever()
        finally:
            self.running.discard(self.node_name)

    async def deliver(self, interaction: Any, message: Any) -> None:
        pass


async def test_a_leader_only_channel_receives_on_the_leader_and_moves_with_it(
    schema: str,
) -> None:
    running: set[str] = set()

    def probe_node(name: str) -> Node:
        host = PluginHost()
        host.register(ProbePlugin(name, running), name="probe-plugin")
        config = {**CONFIG, "plugins": {"probe": {}}}
        return Node.from_dict(
            config, dsn=DSN, schema=schema, name=name, election_interval=0.1, host=host
        )

    async with anyio.create_task_group() as tg:
        nodes = (probe_node("first"), probe_node("second"))
        _, first_scope, second = await leader_and_follower(tg, schema, nodes)
        await anyio.sleep(0.3)
        assert running == {"first"}  # the follower has the channel, but does not run it
        assert "probe" in second.app.channels
        first_scope.cancel()
        await until_leader(second)
        with anyio.fail_after(2):
            while running != {"second"}:
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()


def test_a_node_from_the_store_section() -> None:
    config = from_dict({**CONFIG, "store": {"backend": "postgres", "dsn": DSN, "schema": "cc"}})
    made = Node.from_config(config, name="n1", lead=False)
    assert (made.store.dsn, made.store.schema, made.name, made.lead) == (DSN, "cc", "n1", False)
    with pytest.raises(ConfigError, match='backend = "postgres"'):
        Node.from_config(from_dict(CONFIG))


async def test_a_hand_over_is_forwarded_like_any_command(pair: tuple[Node, Node]) -> None:
    """A consultative transfer completed on a follower (`App.hand_over`) runs on the
    leader, once, and the follower's replica has it when it returns."""
    leader, front = pair
    await front.app.submit(chat(1))
    await front.app.set_presence("a1", "ready")
    assert leader.app is not None
    offered = [e async for _, e in leader.store.read() if isinstance(e, ev.Offered)]
    await front.app.accept(offered[0].offer_id, "a1")
    with pytest.raises(RouterError, match='"a2" cannot take a chat'):
        await front.app.hand_over("i1", "a2", "a1")  # a2 is offline
    await front.app.set_presence("a2", "ready")
    moved = await front.app.hand_over("i1", "a2", "a1")
    assert moved.agent == "a2" and moved.state is InteractionState.ASSIGNED
    assert front.app.router.agent("a1").work == set()
    assert leader.app.router.interaction("i1").agent == "a2"

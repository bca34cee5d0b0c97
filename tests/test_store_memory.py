"""The memory store: the Store contract and JSON round trips."""

from __future__ import annotations

import pytest

from omniroute import events as ev
from omniroute.model import Interaction, Presence
from omniroute.store import MemoryStore, Store, StoreError


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sample_events() -> list[ev.Event]:
    ix = Interaction(id="i1", channel="webchat", queue="support", attributes={"k": [1, "x"]})
    return [
        ev.InteractionQueued(at=1.0, interaction=ix),
        ev.Offered(at=1.0, offer_id="o1", interaction_id="i1", agent_id="a1", expires_at=16.0),
        ev.Assigned(at=2.5, interaction_id="i1", agent_id="a1", offer_id="o1"),
        ev.AgentStateChanged(at=3.0, agent_id="a1", presence=Presence.NOT_READY, reason="lunch"),
        ev.Note(at=4.0, kind="test", data={"nested": {"n": 1}}),
    ]


async def read_all(store: Store, since: int = 0) -> list[tuple[int, ev.Event]]:
    return [item async for item in store.read(since)]


def test_memory_store_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


@pytest.mark.anyio
@pytest.mark.parametrize("encode", [False, True])
async def test_append_numbers_events_in_order(encode: bool) -> None:
    store = MemoryStore(encode=encode)
    events = sample_events()
    assert await store.last_seq() == 0
    assert await store.append(events[:2]) == 2
    assert await store.append([]) == 2
    assert await store.append(events[2:]) == 5
    assert await store.last_seq() == 5
    stored = await read_all(store)
    assert [seq for seq, _ in stored] == [1, 2, 3, 4, 5]
    assert [ev.encode(e) for _, e in stored] == [ev.encode(e) for e in events]
    assert [seq for seq, _ in await read_all(store, since=3)] == [4, 5]
    assert await read_all(store, since=5) == []


@pytest.mark.anyio
async def test_encoded_store_round_trips_and_isolates() -> None:
    store = MemoryStore(encode=True)
    events = sample_events()
    await store.append(events)
    events[0].interaction.queue = "changed later"  # type: ignore[attr-defined]
    stored = [e for _, e in await read_all(store)]
    assert [type(e) for e in stored] == [type(e) for e in events]
    assert stored[0].interaction.queue == "support"  # type: ignore[attr-defined]
    assert stored[3] == events[3]
    assert stored[4] == events[4]


@pytest.mark.anyio
async def test_encoded_store_rejects_what_json_cannot_hold() -> None:
    store = MemoryStore(encode=True)
    bad = ev.Note(at=0.0, kind="bad", data={"x": object()})
    with pytest.raises(TypeError):
        await store.append([ev.Note(at=0.0, kind="ok"), bad])
    assert await store.last_seq() == 0  # a batch is stored whole or not at all


@pytest.mark.anyio
async def test_read_is_a_snapshot() -> None:
    store = MemoryStore()
    await store.append(sample_events()[:2])
    seen = []
    async for seq, _ in store.read():
        seen.append(seq)
        if seq == 1:
            await store.append(sample_events()[2:3])
    assert seen == [1, 2]
    assert await store.last_seq() == 3


@pytest.mark.anyio
async def test_closed_store_refuses_work() -> None:
    store = MemoryStore()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.append(sample_events())
    with pytest.raises(StoreError):
        await store.last_seq()
    with pytest.raises(StoreError):
        await read_all(store)


@pytest.mark.anyio
async def test_snapshots_keep_the_newest_and_check_the_seq() -> None:
    store = MemoryStore()
    assert await store.load_snapshot() is None
    await store.append(sample_events())
    await store.save_snapshot(2, b"two")
    await store.save_snapshot(5, b"five")
    assert await store.load_snapshot() == (5, b"five")
    with pytest.raises(StoreError, match="log ends at 5"):
        await store.save_snapshot(6, b"six")

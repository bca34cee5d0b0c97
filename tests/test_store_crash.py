"""Crash tests: `kill -9` an App on a SQLite file under load, at random moments, many
times over the same file; after each kill, restart on the file and check that nothing
acknowledged is lost, nothing is duplicated, nothing is assigned to two agents at once,
and every queue keeps its order."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest
from crash_driver import QUEUES, config

from omniroute import events as ev
from omniroute.app import App
from omniroute.model import InteractionState
from omniroute.plugins import PluginHost
from omniroute.store.sqlite import SqliteStore

DRIVER = Path(__file__).with_name("crash_driver.py")
KILLS = 22


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run_and_kill(db: Path, run: int, rng: random.Random) -> list[str]:
    """Start the driver, let it work for a random moment (or kill it while it starts),
    SIGKILL it; the ids it ACKed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), str(db), str(run), str(rng.randrange(10**6))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    try:
        if rng.random() < 0.2:  # sometimes while it starts: opening, replaying, resuming
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            ready = proc.stdout.readline()
            assert ready == b"READY\n", ready + proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(rng.uniform(0.0, 0.5))
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    # A line cut by the kill has no newline yet: its submit may not have returned.
    return [line.split()[1].decode() for line in out.split(b"\n")[:-1] if line.startswith(b"ACK ")]


def fold(events: list[ev.Event]) -> tuple[dict[str, int], set[str]]:
    """Where each interaction was first queued (its place in the log), and which ones
    ended; fails if one is queued twice or assigned while another agent holds it."""
    queued = Counter(e.interaction.id for e in events if isinstance(e, ev.InteractionQueued))
    duplicated = [i for i, n in queued.items() if n > 1]
    assert not duplicated, f"queued more than once: {duplicated[:5]}"
    arrival: dict[str, int] = {}
    owner: dict[str, str] = {}
    ended: set[str] = set()
    for seq, e in enumerate(events):
        if isinstance(e, ev.InteractionQueued):
            arrival[e.interaction.id] = seq
        elif isinstance(e, ev.Assigned):
            held = owner.get(e.interaction_id)
            assert held is None, f"{e.interaction_id} assigned to {e.agent_id} while {held} has it"
            owner[e.interaction_id] = e.agent_id
        elif isinstance(e, ev.Requeued | ev.Transferred):
            owner.pop(e.interaction_id, None)
        elif isinstance(e, ev.Completed | ev.Abandoned | ev.Closed):
            owner.pop(e.interaction_id, None)
            ended.add(e.interaction_id)
    return arrival, ended


async def check(db: Path, acked: list[str]) -> int:
    """Restart on the file and check the invariants; the number of events in the log."""
    store = SqliteStore(db)
    events = [e async for _, e in store.read()]
    arrival, ended = fold(events)
    lost = [i for i in acked if i not in arrival]
    assert not lost, f"{len(lost)} acknowledged interactions lost, e.g. {lost[:5]}"
    app = App(config(), store=store, host=PluginHost(entry_points=False))
    async with app.running():
        router = app.router
        for ix_id in acked:
            if ix_id not in ended:
                state = router.interaction(ix_id).state  # raises if it is not there
                assert state is not InteractionState.COMPLETED
        for queue in QUEUES:
            order = [arrival[ix.id] for ix in router.waiting(queue)]
            assert order == sorted(order), f"queue {queue} lost its order"
        # Each agent holds what the log says, and nothing twice.
        held = Counter(
            w.ix.id for w in router.active.values() if w.ix.state is InteractionState.ASSIGNED
        )
        assert all(n == 1 for n in held.values())
    fold([e async for _, e in store.read()])  # what the restart wrote keeps the rules too
    total = await store.last_seq()
    await store.close()
    return total


@pytest.mark.slow
@pytest.mark.anyio
async def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(int(os.environ.get("OMNIROUTE_CRASH_SEED", "3")))
    acked: list[str] = []
    sizes = []
    for run in range(KILLS):
        acked += await anyio.to_thread.run_sync(run_and_kill, db, run, rng)
        sizes.append(await check(db, acked))
    assert len(acked) > KILLS * 5, "the driver hardly worked: the test proves little"
    store = SqliteStore(db)
    snapshot = await store.load_snapshot()
    await store.close()
    assert snapshot is not None, "no snapshot was saved: restarts never started from one"
    assert sizes == sorted(sizes)

"""Runs an App on a SQLite file under load until killed: the subject of the crash tests.

    python tests/crash_driver.py DB RUN SEED

Prints `READY` once the app resumed from the file and every agent is ready, then
`ACK <id>` for each new interaction, only after `await app.submit(...)` returned (the
moment a channel may tell its sender "accepted"). Meanwhile agents accept, decline or
ignore offers and complete their work at random, on the real clock.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import anyio

from omniroute import events as ev
from omniroute.app import App, RouterError
from omniroute.config import Config, from_dict
from omniroute.model import Interaction, Presence
from omniroute.plugins import PluginHost
from omniroute.store.sqlite import SqliteStore

QUEUES = ("sales", "support")
CONFIG: dict[str, Any] = {
    "queues": [
        {"name": q, "offer_timeout": 0.3, "wrap_up": 0.05, "strategy": "round-robin"}
        for q in QUEUES
    ],
    "agents": [{"id": f"a{i}", "capacity": {"webchat": 2}} for i in range(6)],
    # The driver and the tests pass the SqliteStore in; snapshots often, so that kills
    # land around them and restarts start from them.
    "store": {"backend": "memory", "snapshot_every": 300},
}


def config() -> Config:
    return from_dict(CONFIG)


async def drive(path: str, run: int, seed: int) -> None:
    rng = random.Random(seed)
    store = SqliteStore(path)
    app = App(config(), store=store, host=PluginHost(entry_points=False))
    out = sys.stdout
    async with app.running():
        for agent in CONFIG["agents"]:
            await app.set_presence(agent["id"], Presence.READY)
        events = app.subscribe(max_buffer=1_000_000)
        print("READY", file=out, flush=True)

        async def submitter(worker: int) -> None:
            for n in range(10**9):
                ix = Interaction(
                    id=f"r{run}w{worker}n{n}", channel="webchat", queue=rng.choice(QUEUES)
                )
                await app.submit(ix)
                print(f"ACK {ix.id}", file=out, flush=True)
                await anyio.sleep(rng.random() * 0.01)

        async def act(event: ev.Event) -> None:
            await anyio.sleep(rng.random() * 0.05)
            try:
                if isinstance(event, ev.Offered):
                    roll = rng.random()
                    if roll < 0.7:
                        await app.accept(event.offer_id)
                    elif roll < 0.9:
                        await app.decline(event.offer_id)
                elif isinstance(event, ev.Assigned):
                    await app.complete(event.interaction_id)
            except RouterError:  # the offer expired or went to another agent meanwhile
                pass

        async with anyio.create_task_group() as tg:
            for worker in range(8):
                tg.start_soon(submitter, worker)
            async for event in events:
                tg.start_soon(act, event)


if __name__ == "__main__":
    anyio.run(drive, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

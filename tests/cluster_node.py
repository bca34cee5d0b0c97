"""One node of the failover test, run as a subprocess: `python cluster_node.py DSN SCHEMA
NAME OUT AGENTS`.

It campaigns for leadership like any node, and applies load through its own Node:
submits (forwarded to the leader unless it leads) and, for the agents it owns
(AGENTS, comma-separated), accepts every offer it sees in the log and completes the
interaction soon after. Every acknowledged command is written to OUT/NAME.jsonl, one
unbuffered line after the call returned, so that the lines survive a `kill -9`; so is
each start of leadership with its wall-clock time. It stops applying load when the
file OUT/stop appears, and exits on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from omniroute import Interaction
from omniroute import events as ev
from omniroute.cluster import Node
from omniroute.router.core import RouterError
from omniroute.store.base import StoreError

AGENTS = [f"a{i}" for i in range(1, 7)]
CONFIG: dict[str, Any] = {
    "queues": [{"name": "support", "offer_timeout": 2, "wrap_up": 0}],
    "agents": [{"id": a, "capacity": {"chat": 1}} for a in AGENTS],
}
SUBMITTERS = 4
SUBMIT_PAUSE = 0.01


class Log:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def write(self, **record: Any) -> None:
        os.write(self.fd, (json.dumps(record) + "\n").encode())


async def main(dsn: str, schema: str, name: str, out: Path, mine: list[str]) -> None:
    log = Log(out / f"{name}.jsonl")
    node = Node.from_dict(
        CONFIG, dsn=dsn, schema=schema, name=name, election_interval=0.1, poll_interval=0.5
    )
    node.on_lead(lambda n: log.write(lead=n.leading_since, epoch=n.store.epoch))
    stop = out / "stop"

    async def submitter(k: int) -> None:
        i = 0
        while not stop.exists():
            ix_id = f"{name}-{k}-{i}"
            i += 1
            try:
                await node.app.submit(Interaction(id=ix_id, channel="chat", queue="support"))
            except (StoreError, RouterError, RuntimeError) as exc:
                log.write(failed="submit", id=ix_id, error=repr(exc))
            else:
                log.write(ack="submit", id=ix_id)
            await anyio.sleep(SUBMIT_PAUSE)

    async def act(command: str, *args: Any) -> None:
        try:
            await node.command(command, *args)
        except (StoreError, RouterError, RuntimeError) as exc:
            log.write(failed=command, args=args, error=repr(exc))
        else:
            log.write(ack=command, args=args)

    async def complete_later(interaction_id: str, agent: str) -> None:
        await anyio.sleep(0.05)
        await act("complete", interaction_id, agent)

    async def agents(tg: anyio.abc.TaskGroup) -> None:
        for agent in mine:
            await act("set_presence", agent, "ready")
        seen: set[str] = set()
        async for _, event in node.tail(await node.store.last_seq()):
            if stop.exists():
                return
            if isinstance(event, ev.Offered) and event.agent_id in mine:
                if event.offer_id not in seen and event.expires_at > time.time():
                    seen.add(event.offer_id)
                    tg.start_soon(act, "accept", event.offer_id, event.agent_id)
            elif isinstance(event, ev.Assigned) and event.agent_id in mine:
                tg.start_soon(complete_later, event.interaction_id, event.agent_id)

    async with node.running(), anyio.create_task_group() as tg:
        log.write(started=time.time(), pid=os.getpid())
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            tg.start_soon(agents, tg)
            for k in range(SUBMITTERS):
                tg.start_soon(submitter, k)
            async for _ in signals:
                tg.cancel_scope.cancel()
                break


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    dsn, schema, name, out, agents = sys.argv[1:6]
    anyio.run(main, dsn, schema, name, Path(out), agents.split(","))

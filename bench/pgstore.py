"""Durable events per second in the PostgreSQL store: `python -m bench.pgstore`.

`--writers` tasks each append one event at a time (a new interaction with a customer,
about 400 bytes of JSON, built beforehand) and wait until it is committed before the
next, as channels acknowledging their senders do; the store's group commit puts
whatever arrived while the previous transaction was committing into the next one.
Every event counted was committed before its append returned. Runs in a fresh schema,
dropped afterwards.

`--batch N` appends N events per call instead (as the App does: it stages the events of
every command that ran while the previous append was committing).

Last line: `pgstore: N durable events/s, W writers of B, E events per commit`.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import psycopg
from psycopg import sql

from omniroute import events as ev
from omniroute.model import Customer, Interaction
from omniroute.store.postgres import PostgresStore

DSN = os.environ.get("OMNIROUTE_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@asynccontextmanager
async def fresh_store(dsn: str = DSN) -> AsyncIterator[PostgresStore]:
    """A PostgresStore in a schema of its own, dropped (with its log) on exit."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(dsn=dsn, schema=schema)
    try:
        yield store
    finally:
        await store.close()
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


def arrival(n: int) -> ev.Event:
    customer = Customer(id=f"c{n}", name="Ada Lovelace")
    ix = Interaction(
        id=f"b{n}",
        channel="email",
        queue="support",
        customer=customer,
        skills={"english": 2},
        subject="My order has not arrived yet",
        attributes={"from": "ada@example.com"},
    )
    return ev.InteractionQueued(at=1_800_000_000.0 + n, interaction=ix)


async def append_rate(
    store: PostgresStore, writers: int, seconds: float, batch: int = 1
) -> tuple[float, float]:
    """(durable events per second, events per commit) with `writers` concurrent writers
    appending `batch` events per call."""
    await store.connect()
    sample = [arrival(n) for n in range(20_000)]  # built before the clock starts
    numbers = iter(range(10**9))
    first = await store.last_seq()
    commits = store.commits
    started = time.perf_counter()
    stop = started + seconds

    async def writer() -> None:
        while time.perf_counter() < stop:
            start = next(numbers) * batch % len(sample)
            await store.append(sample[start : start + batch])

    async with anyio.create_task_group() as tg:
        for _ in range(writers):
            tg.start_soon(writer)
    elapsed = time.perf_counter() - started
    written = await store.last_seq() - first
    return written / elapsed, written / max(1, store.commits - commits)


async def run(args: argparse.Namespace) -> str:
    async with fresh_store(args.dsn) as store:
        rate, per_commit = await append_rate(store, args.writers, args.seconds, args.batch)
    return (
        f"pgstore: {rate:.0f} durable events/s, {args.writers} writers of {args.batch}, "
        f"{per_commit:.0f} events per commit"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgstore")
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1, help="events per append call")
    parser.add_argument("--seconds", type=float, default=5.0)
    print(anyio.run(run, parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

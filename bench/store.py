"""Durable events per second through the App, and restart time with a long log.

*Throughput*: an App on the store under test, with `--submitters` tasks submitting new
interactions concurrently and an agents' task accepting every offer and completing
every assignment. Each command returns only after its events are committed, so every
event counted is durable. A batch is whatever the App staged while the previous append
was on disk (group commit); the average batch size is printed.

*Restart*: a log of `--events` events written by the real router (arrivals, offers,
accepts, completions, wrap-ups, with a backlog left waiting), then the time from
opening the store to an App ready to route: open, load the newest snapshot, replay the
events after it (all of them when there is no snapshot), write what resuming decided.

Last line: `store: sqlite N events/s, postgres M events/s, restart Xs for E events`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

from omniroute import events as ev
from omniroute.app import App
from omniroute.clock import VirtualClock
from omniroute.config import Config, from_dict
from omniroute.model import Interaction, Presence
from omniroute.plugins import PluginHost
from omniroute.router.core import Router
from omniroute.store import MemoryStore, Store
from omniroute.store.sqlite import SqliteStore

QUEUES = [f"q{i}" for i in range(8)]
START = 1_800_000_000.0


def config(n_agents: int) -> Config:
    return from_dict(
        {
            "queues": [
                {"name": q, "skills": {q: 1}, "wrap_up": 5, "offer_timeout": 30} for q in QUEUES
            ],
            "agents": [
                {"id": f"a{i}", "skills": dict.fromkeys(QUEUES, 3), "capacity": {"webchat": 3}}
                for i in range(n_agents)
            ],
            "store": {"backend": "memory"},  # the bench passes its store in
        }
    )


# ---------------------------------------------------------------------- throughput


class CountingStore:
    """Counts the appends made through it, and the transactions: one per append, or as
    the store counts them when it groups appends itself (SqliteStore.commits)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.appends = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @property
    def transactions(self) -> int:
        commits: int | None = getattr(self.store, "commits", None)
        return self.appends if commits is None else commits

    async def append(self, events: Any) -> int:
        self.appends += 1
        return await self.store.append(events)


async def throughput(store: Store, seconds: float, submitters: int) -> tuple[float, float]:
    """(durable events per second, average events per transaction) through an App."""
    counting = CountingStore(store)
    app = App(config(200), clock=VirtualClock(START), store=counting)  # type: ignore[arg-type]
    numbers = iter(range(10**9))
    async with app.running():
        for agent in app.config.agents:
            await app.set_presence(agent.id, Presence.READY)
        events = app.subscribe(max_buffer=10**7)
        first = await store.last_seq()
        transactions = counting.transactions
        started = time.perf_counter()
        stop = started + seconds

        async def submitter() -> None:
            rng = random.Random()
            while time.perf_counter() < stop:
                n = next(numbers)
                ix = Interaction(id=f"b{n}", channel="webchat", queue=rng.choice(QUEUES))
                await app.submit(ix)

        async def agents() -> None:
            async for event in events:
                if time.perf_counter() >= stop:
                    return
                if isinstance(event, ev.Offered):
                    tg.start_soon(app.accept, event.offer_id)
                elif isinstance(event, ev.Assigned):
                    tg.start_soon(app.complete, event.interaction_id)

        async with anyio.create_task_group() as tg:
            tg.start_soon(agents)
            for _ in range(submitters):
                tg.start_soon(submitter)
        elapsed = time.perf_counter() - started
        written = await store.last_seq() - first
        batches = counting.transactions - transactions
    return written / elapsed, written / max(1, batches)


async def append_rate(store: Store, events: list[ev.Event], batch: int, seconds: float) -> float:
    """Durable events per second appending `batch` events per call (one commit each)."""
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = done % (len(events) - batch)
        await store.append(events[start : start + batch])
        done += batch
    return done / (time.perf_counter() - started)


# ---------------------------------------------------------------------- restart


def history(
    n_events: int, cfg: Config, batch: int = 50_000, every: int = 0
) -> Iterator[tuple[list[ev.Event], bytes | None]]:
    """Batches of events from the real router until `n_events` were emitted, each with
    the router's snapshot after it when one is due (every `every` events, as the App
    takes them), except in the last `every` events: a restart then replays nearly
    `every` events after the newest snapshot, its worst case."""
    clock = VirtualClock(START)
    host = PluginHost(entry_points=False)
    router = Router(
        queues=cfg.queues,
        agents=cfg.agents,
        clock=clock,
        strategies=host.strategies(),
        selector=host.queue_selectors()[cfg.routing.queue_selection].factory(),
        routing=cfg.routing,
    )
    rng = random.Random(7)
    for agent in cfg.agents:
        router.set_presence(agent.id, Presence.READY)
    assigned: list[str] = []
    emitted = since = 0
    pending: list[ev.Event] = []
    n = 0
    while emitted < n_events:
        clock.advance(0.05)
        n += 1
        router.submit(Interaction(id=f"h{n}", channel="webchat", queue=rng.choice(QUEUES)))
        if assigned and rng.random() < 0.9:
            router.complete(assigned.pop(rng.randrange(len(assigned))))
        router.advance()
        drained = router.drain()
        while drained:
            more = []
            for event in drained:
                if isinstance(event, ev.Offered) and rng.random() < 0.95:
                    router.accept(event.offer_id)
                    more.extend(router.drain())
                elif isinstance(event, ev.Assigned):
                    assigned.append(event.interaction_id)
            pending.extend(drained)
            emitted += len(drained)
            drained = more
        if len(pending) >= batch:
            since += len(pending)
            due = every and since >= every and emitted <= n_events - every + batch // 2
            yield pending, router.snapshot() if due else None
            since = 0 if due else since
            pending = []
    if pending:
        yield pending, None


async def restart(make_store: Callable[[], Store], cfg: Config) -> tuple[float, int, int]:
    """Seconds from opening the store to an App ready to route; events in the log; where
    the snapshot it started from was taken (0: none)."""
    store = make_store()
    snapshot = await store.load_snapshot()
    await store.close()
    started = time.perf_counter()
    store = make_store()
    app = App(cfg, clock=VirtualClock(START + 10**6), store=store)
    async with app.running():
        elapsed = time.perf_counter() - started
        events = await store.last_seq()
    await store.close()
    return elapsed, events, snapshot[0] if snapshot else 0


async def fill(store: Store, n_events: int, cfg: Config, every: int) -> None:
    """The log of a busy contact center, with snapshots where the App would save them."""
    for batch, snapshot in history(n_events, cfg, every=every):
        seq = await store.append(batch)
        if snapshot is not None:
            await store.save_snapshot(seq, snapshot)


# ---------------------------------------------------------------------- main


def _postgres() -> tuple[Callable[[], Store], Callable[[], Any]] | None:
    """(make a PostgresStore in a fresh schema, drop that schema), or None without one."""
    try:
        from omniroute.store.postgres import PostgresStore  # type: ignore[import-not-found]
    except ImportError:
        return None
    schema = f"bench_store_{os.getpid()}"
    dsn = os.environ.get("OMNIROUTE_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")

    def make() -> Store:
        return PostgresStore(dsn=dsn, schema=schema, connect_timeout=3)  # type: ignore[no-any-return]

    async def drop() -> None:
        store = PostgresStore(dsn=dsn, schema=schema, connect_timeout=3)
        conn = await store.open_connection()
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
            await store.close()

    return make, drop


async def measure(
    name: str, make_store: Callable[[], Store], sample: list[ev.Event], args: argparse.Namespace
) -> float:
    """Print the store-level and App-level rates of one backend; return the store-level one."""
    store = make_store()
    app_rate, per_commit = await throughput(store, args.seconds, args.submitters)
    print(
        f"store-{name}-app: {app_rate:.0f} durable events/s through the App, "
        f"{args.submitters} concurrent submitters, {per_commit:.0f} events per commit"
    )
    rate = await append_rate(store, sample, args.batch, args.seconds)
    await store.close()
    print(f"store-{name}-append: {rate:.0f} durable events/s, {args.batch} events per commit")
    return rate


async def run(args: argparse.Namespace) -> str:
    cfg = config(200)
    sample = [e for batch, _ in history(20_000, cfg, batch=20_000) for e in batch]
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        memory, _ = await throughput(MemoryStore(), args.seconds, args.submitters)
        print(f"store-memory-app: {memory:.0f} events/s through the App (its own ceiling)")
        rate = await measure("sqlite", lambda: SqliteStore(Path(folder) / "bench.db"), sample, args)
        sqlite = f"sqlite {rate:.0f} events/s"
        postgres = "postgres n/a"
        pg = _postgres()
        if pg is not None:
            make_pg, drop_pg = pg
            try:
                rate = await measure("postgres", make_pg, sample, args)
                postgres = f"postgres {rate:.0f} events/s"
            except Exception as exc:  # no server: say so, keep the sqlite figures
                print(f"store-postgres: not measured ({exc!r})")
            finally:
                with contextlib.suppress(Exception):
                    await drop_pg()
        big = Path(folder) / "restart.db"
        filled = time.perf_counter()
        store = SqliteStore(big)
        await fill(store, args.events, cfg, args.snapshot_every)
        await store.close()
        print(f"store-fill: {args.events} events in {time.perf_counter() - filled:.1f}s")
        seconds, events, since = await restart(lambda: SqliteStore(big), cfg)
        print(
            f"store-restart: sqlite, {events} events in the log, snapshot after event {since}, "
            f"{events - since} replayed, ready in {seconds:.2f}s"
        )
    return f"store: {sqlite}, {postgres}, restart {seconds:.2f}s for {events} events"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput run length")
    parser.add_argument("--submitters", type=int, default=500, help="concurrent submitters")
    parser.add_argument("--batch", type=int, default=100, help="events per append")
    parser.add_argument(
        "--snapshot-every", type=int, default=100_000, help="as [store] snapshot_every; 0: none"
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="log length for restart")
    parser.add_argument("--dir", default=None, help="folder for the database files")
    args = parser.parse_args(argv)
    print(anyio.run(run, args))
    return 0

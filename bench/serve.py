"""`python -m bench serve`: web chats at a steady rate through a real `omniroute serve`.

The server runs in its own process on loopback, on SQLite by default as `omniroute
serve` is (`--store memory` shows what the log costs). A second process plays 500
agents, each with its live event socket open, who accept every offer over HTTP and
complete it a moment later; this one plays customers who open the web chat socket at
`--rate` chats a second. The figure is the time from a customer's first message (the
`start` of the chat) to the offer arriving on the agent's socket. On a 2-core machine
the three processes share the cores: `serve-detail` says how many chats the customers'
side managed to start.

Each process times its own garbage-collector pauses while chats arrive (bench.gcprobe;
CPU time, which a busy shared machine does not stretch), and the load generators say how
late their event loops woke: a tail that comes from the measuring side shows there. The
load generators freeze their heap and pause their collector while they measure. The
machine's CPU split during the run (bench.machine) shows whether anything else ran: a
niced job beside it took the p99 from 6 ms to 50-490 ms on the 2-core test machine.

Last line: `serve: N interactions/s, offer p99 X ms, store S`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import h11
import websockets

from . import gcprobe, machine

PASSWORD = "bench-password"


def config(agents: int, store: str, folder: Path) -> str:
    from omniroute.web.passwords import hash_password

    password_hash = hash_password(PASSWORD, n=2**10)  # 500 logins must not take 30 s
    lines = [
        "[[queues]]",
        'name = "chat"',
        "wrap_up = 0",
        "offer_timeout = 60",
        '[server]\nsecret = "bench-secret-of-enough-length"\nlogin_attempts = 100000',
        f"[store]\nbackend = {json.dumps(store)}",
    ]
    if store == "sqlite":
        lines.append(f"path = {json.dumps(str(folder / 'bench.db'))}")
    lines.append('[plugins.webchat]\ntopics = { "Chat" = "chat" }\nchats_per_hour = 100000000')
    lines.append("connections_per_address = 100000\nmessages_per_minute = 100000")
    for i in range(agents):
        lines += ["[[agents]]", f'id = "a{i}"', "capacity = { webchat = 2 }"]
        lines += ["[[server.users]]", f'id = "a{i}"', f'password_hash = "{password_hash}"']
    return "\n".join(lines) + "\n"


class Http:
    """One keep-alive HTTP/1.1 connection, as a browser tab holds, spoken with h11 (the
    protocol library under httpx and uvicorn): the load generator must cost far less
    than the server it measures, and a general client's pool costs more."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.conn = h11.Connection(h11.CLIENT)
        self.lock = anyio.Lock()
        self.stream: anyio.abc.SocketStream | None = None

    async def request(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        headers = [("host", f"{self.host}:{self.port}"), ("content-length", str(len(data)))]
        if body is not None:
            headers.append(("content-type", "application/json"))
        if token:
            headers.append(("authorization", f"Bearer {token}"))
        async with self.lock:
            try:
                status, chunks = await self._exchange(method, path, headers, data)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                # The server closes a connection idle past its keep-alive time before
                # reading from it: a browser opens a new one and sends the request again.
                await self._reconnect()
                status, chunks = await self._exchange(method, path, headers, data)
        raw = b"".join(chunks)
        return status, json.loads(raw) if raw else None

    async def _exchange(
        self, method: str, path: str, headers: list[tuple[str, str]], data: bytes
    ) -> tuple[int, list[bytes]]:
        if self.stream is None:
            self.stream = await anyio.connect_tcp(self.host, self.port)
        out = self.conn.send(h11.Request(method=method, target=path, headers=headers))
        out += self.conn.send(h11.Data(data=data)) + self.conn.send(h11.EndOfMessage())
        await self.stream.send(out)
        status, chunks = 0, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive())
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        self.conn.start_next_cycle()
        return status, chunks

    async def _reconnect(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
        self.stream = None
        self.conn = h11.Connection(h11.CLIENT)


class Run:
    def __init__(self, url: str, rate: float, duration: float, hold: float) -> None:
        self.url = url
        self.ws = url.replace("http", "ws", 1)
        self.rate = rate
        self.duration = duration
        self.hold = hold
        self.started: dict[str, float] = {}  # interaction -> when its start was sent
        self.offered: dict[str, float] = {}  # interaction -> when the offer arrived
        self.errors = 0
        self.ready = anyio.Event()
        self.lags: list[float] = []  # how late this process's event loop woke (ms)
        self.gc: dict[str, Any] = {}  # process -> its collector's figures (bench.gcprobe)
        self.lags_of: dict[str, list[float]] = {}  # process -> its loop's lags
        self.begin = self.end = 0.0  # when customers began and the last offer was due
        self.cpu = ""  # what the machine's CPUs did meanwhile (bench.machine)

    async def watch_loop(self) -> None:
        """Time how late 5 ms sleeps wake: a load generator that lags cannot time
        offers it has not read yet."""
        while True:
            asked = time.monotonic()
            await anyio.sleep(0.005)
            self.lags.append((time.monotonic() - asked - 0.005) * 1000)

    async def agent(self, agent_id: str, connected: list[str]) -> None:
        """One agent: its own HTTP connection (as a browser has) and its event socket."""
        http = Http(self.url)
        _, session = await http.request(
            "POST", "/api/login", body={"user": agent_id, "password": PASSWORD}
        )
        token = session["token"]
        async with websockets.connect(
            f"{self.ws}/api/events?token={token}", max_queue=None, compression=None
        ) as s:
            await http.request("PUT", "/api/inbox/presence", token, {"presence": "ready"})
            connected.append(agent_id)
            async with anyio.create_task_group() as tg:
                async for raw in s:
                    event = json.loads(raw)
                    if event["type"] == "offered" and event["agent_id"] == agent_id:
                        self.offered[event["interaction_id"]] = time.monotonic()
                        tg.start_soon(self.work, http, token, event)

    async def work(self, http: Http, token: str, offer: Any) -> None:
        try:
            status, _ = await http.request("POST", f"/api/offers/{offer['offer_id']}/accept", token)
            if status != 200:
                self.errors += 1
                return
            await anyio.sleep(self.hold)
            await http.request(
                "POST", f"/api/interactions/{offer['interaction_id']}/complete", token
            )
        except (OSError, h11.ProtocolError):
            self.errors += 1

    async def customer(self, n: int) -> None:
        try:
            async with websockets.connect(f"{self.ws}/webchat/socket", compression=None) as s:
                await s.recv()  # hello
                sent = time.monotonic()
                await s.send(json.dumps({"type": "start", "name": f"c{n}"}))
                while True:
                    message = json.loads(await s.recv())
                    if message["type"] == "started":
                        self.started[message["interaction"]] = sent
                        return
        except (OSError, websockets.WebSocketException):
            self.errors += 1

    async def customers(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.watch_loop)
            begin = time.monotonic()
            n = 0
            while time.monotonic() - begin < self.duration:
                n += 1
                tg.start_soon(self.customer, n)
                due = begin + n / self.rate  # a steady rate
                await anyio.sleep(max(0.0, due - time.monotonic()))
            tg.cancel_scope.cancel()


async def measure(url: str, agents: int, rate: float, duration: float, hold: float) -> Run:
    """Agents in a process of their own (each side of the load gets a core, as real
    browsers would), customers here; offers are timed on the machine's monotonic clock,
    which both processes share."""
    run = Run(url, rate, duration, hold)
    probe = gcprobe.install()
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    worker = context.Process(
        target=_agents_process, args=(url, agents, rate, duration, hold, ready, stop, results)
    )
    worker.start()
    try:
        if not await anyio.to_thread.run_sync(ready.wait, 120):
            raise RuntimeError("the agents did not connect within 120 s")
        print(f"serve: {agents} agents ready; {rate:g} chats/s, {duration:g} s", file=sys.stderr)
        with quiet_collector():
            run.begin, cpu = time.monotonic(), machine.cpu_times()
            await run.customers()
            await anyio.sleep(2)  # the last offers in flight
            run.end, run.cpu = time.monotonic(), machine.split(cpu, machine.cpu_times())
        stop.set()
        offered, errors, lags, agents_gc = await anyio.to_thread.run_sync(results.get, True, 60)
        run.offered.update(offered)
        run.errors += errors
        run.gc["customers"] = probe.figures()
        run.gc["agents"] = agents_gc
        run.lags_of = {"customers": run.lags, "agents": lags}
    finally:
        stop.set()
        await anyio.to_thread.run_sync(worker.join, 30)
    return run


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """No collector pauses in a load generator while it times offers: its heap is
    frozen once set up, and the little garbage of a 15 s run waits until the end (a
    pause here would count as the server's latency)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _agents_process(
    url: str,
    agents: int,
    rate: float,
    duration: float,
    hold: float,
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    run = Run(url, rate, duration, hold)
    probe = gcprobe.install()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            connected: list[str] = []
            for i in range(agents):
                tg.start_soon(run.agent, f"a{i}", connected)
            while len(connected) < agents:
                await anyio.sleep(0.05)
            tg.start_soon(run.watch_loop)
            with quiet_collector():
                ready.set()
                await anyio.to_thread.run_sync(stop.wait)
            tg.cancel_scope.cancel()

    anyio.run(main)
    results.put((run.offered, run.errors, run.lags, probe.figures()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serve")
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200.0, help="new chats per second")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of traffic")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds an agent keeps a chat")
    parser.add_argument(
        "--store", choices=["sqlite", "memory"], default="sqlite", help="the default is serve's"
    )
    parser.add_argument("--url", help="measure a server already running with --write-config's file")
    parser.add_argument("--write-config", type=Path, help="write the server's config here and exit")
    args = parser.parse_args(argv)
    if args.write_config:
        args.write_config.write_text(config(args.agents, args.store, args.write_config.parent))
        return 0
    if args.url:
        return report(
            anyio.run(measure, args.url, args.agents, args.rate, args.duration, args.hold),
            args.store,
        )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench.toml").write_text(config(args.agents, args.store, folder))
        gc_file = folder / "server-gc.json"
        served = [str(folder / "bench.toml"), "--port", "0"]
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.gcprobe", str(gc_file), "serve", *served],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("omniroute: serving on "):
                print(f"serve: the server did not start: {line!r}", file=sys.stderr)
                return 1
            url = line.split()[3]
            run = anyio.run(measure, url, args.agents, args.rate, args.duration, args.hold)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if gc_file.exists():
            run.gc["server"] = json.loads(gc_file.read_text())

    return report(run, args.store)


def report(run: Run, store: str) -> int:
    latencies = sorted(
        (run.offered[i] - t) * 1000 for i, t in run.started.items() if i in run.offered
    )
    if not latencies:
        print("serve: no offer arrived", file=sys.stderr)
        return 1
    offered_at = sorted(run.offered[i] for i in run.started if i in run.offered)
    span = offered_at[-1] - offered_at[0]
    achieved = (len(offered_at) - 1) / span if span > 0 else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    missing = len(run.started) - len(latencies)
    print(
        f"serve-detail: {len(run.started)} chats started, {len(latencies)} offered, "
        f"{missing} never offered, {run.errors} errors; offer latency median "
        f"{statistics.median(latencies):.1f} ms, max {latencies[-1]:.1f} ms; store {store}",
    )
    for name, figures in run.gc.items():
        print(f"serve-detail: {gcprobe.summary(name, figures, run.begin, run.end)}")
        if figures["types"]:
            print(f"serve-detail: {name} heap: {figures['types']}")
    for name, lags in run.lags_of.items():
        if lags:
            lags.sort()
            late = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            print(
                f"serve-detail: {name} event loop woke late by p99 {late:.1f} ms, "
                f"max {lags[-1]:.1f} ms"
            )
    if run.cpu:  # "nice" is other, low-priority jobs: a run beside them is not quiet
        print(f"serve-detail: the machine's CPUs while chats arrived: {run.cpu}")
    print(f"serve: {achieved:.0f} interactions/s, offer p99 {p99:.1f} ms, store {store}")
    return 0

"""`omniroute demo`: a small contact center that runs by itself, to look at.

A sample config (three queues, human agents you log in as, a few synthetic agents),
synthetic customers who chat through the real web chat socket at a rate you choose, and
synthetic agents who accept, answer and complete. Everything goes through the same code
as production: the router, the store, the web chat plugin, the API.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from .. import events as ev
from ..cli import command, plugin_host

__all__ = ["DEMO_PASSWORD", "demo_config", "run_demo"]

logger = logging.getLogger("omniroute.demo")

DEMO_PASSWORD = "demo"
HUMANS = [("ana", "Ana Costa", "agent"), ("bob", "Bob Li", "agent")]
STAFF = [("sue", "Sue Park", "supervisor"), ("admin", "Admin", "admin")]
BOTS = ["Kim", "Lee", "Max", "Noa", "Oli", "Pat"]
TOPICS = {"Billing": "billing", "Technical support": "support", "Sales": "sales"}
NAMES = ["Carla", "Dino", "Eva", "Farid", "Gina", "Hugo", "Iris", "Jon", "Lena", "Omar"]
LINES = [
    "Hi, I was charged twice this month.",
    "My internet keeps dropping since yesterday.",
    "Can I upgrade my plan?",
    "I never received my order.",
    "How do I reset my password?",
]
REPLIES = ["Let me check that for you.", "Thanks for waiting! I am on it.", "Sure, one moment."]


def demo_config(folder: Path, *, port: int, bots: int) -> dict[str, Any]:
    from .passwords import hash_password

    password_hash = hash_password(DEMO_PASSWORD)
    skills = {"billing": 3, "support": 3, "sales": 3}
    agents = [
        {"id": uid, "name": name, "skills": skills, "capacity": {"webchat": 3}}
        for uid, name, _ in HUMANS
    ]
    agents += [
        {
            "id": f"bot-{name.lower()}",
            "name": f"{name} (bot)",
            "skills": {"billing": 2 + i % 3, "support": 4 - i % 3, "sales": 2},
            "capacity": {"webchat": 2},
        }
        for i, name in enumerate(BOTS[:bots])
    ]
    return {
        "queues": [
            {
                "name": "billing",
                "skills": {"billing": 1},
                "strategy": "longest-idle",
                "sla": {"target": 0.8, "seconds": 30},
                "wrap_up": 5,
                "script": "Greet the customer by name. Confirm the account before any change.",
                "canned": ["Thanks for your patience!", "I have refunded the duplicate charge."],
            },
            {
                "name": "support",
                "skills": {"support": 2},
                "strategy": "best-skill",
                "sla": {"target": 0.8, "seconds": 30},
                "wrap_up": 5,
                "escalation": [{"after": 20, "relax": 1}, {"after": 45, "notify": True}],
                "canned": ["Could you restart the router and try again?"],
            },
            {"name": "sales", "skills": {"sales": 1}, "strategy": "round-robin", "wrap_up": 5},
        ],
        "agents": agents,
        "store": {"backend": "sqlite", "path": str(folder / "omniroute.db")},
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "users": [
                {"id": uid, "name": name, "role": role, "password_hash": password_hash}
                for uid, name, role in HUMANS + STAFF
            ],
        },
        "plugins": {"webchat": {"topics": TOPICS, "abandon_after": 30}},
    }


async def run_demo(app: Any, server: Any, *, rate: float, seed: int) -> None:
    from .serve import serve_app

    rng = random.Random(seed)
    urls: list[str] = []

    async def serve_then_stop_all() -> None:
        await serve_app(app, server, on_ready=urls.append)
        tg.cancel_scope.cancel()  # Ctrl-C stopped the server: stop the synthetic traffic too

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_then_stop_all)
        while not urls:
            await anyio.sleep(0.05)
        _announce(urls[0], app)
        tg.start_soon(_bots, app, rng)
        if rate > 0:
            tg.start_soon(_customers, urls[0], rate, rng)


def _announce(url: str, app: Any) -> None:
    logins = ", ".join(f"{uid} ({role})" for uid, _, role in HUMANS + STAFF)
    print(
        f"omniroute demo is running (stop it with Ctrl-C)\n"
        f"  customer's page with the chat widget: {url}/webchat/\n"
        f"  agents' inbox:                        {url}/inbox\n"
        f"  supervisors' wallboard:               {url}/wallboard\n"
        f"  API description:                      {url}/api/openapi.json\n"
        f"  logins: {logins}; password for all: {DEMO_PASSWORD}\n"
        f"  synthetic agents: {', '.join(a for a in app.router.agents if a.startswith('bot-'))}\n"
        f"  event log (SQLite, deleted when the demo stops): {app.config.store['path']}",
        flush=True,
    )


async def _bots(app: Any, rng: random.Random) -> None:
    """Synthetic agents: ready, accept offers after a moment, answer, complete."""
    bots = [a for a in app.router.agents if a.startswith("bot-")]
    for bot in bots:
        await app.set_presence(bot, "ready")
    async with anyio.create_task_group() as tg, app.subscribe(max_buffer=100_000) as events:
        async for event in events:
            if isinstance(event, ev.Offered) and event.agent_id in bots:
                tg.start_soon(_handle, app, event, rng)


async def _handle(app: Any, offer: ev.Offered, rng: random.Random) -> None:
    try:
        await anyio.sleep(rng.uniform(1, 4))
        await app.accept(offer.offer_id, offer.agent_id)
        await anyio.sleep(rng.uniform(2, 5))
        await app.send_message(offer.interaction_id, f"agent:{offer.agent_id}", rng.choice(REPLIES))
        await anyio.sleep(rng.uniform(8, 25))
        await app.send_message(offer.interaction_id, f"agent:{offer.agent_id}", "All done. Bye!")
        await app.complete(offer.interaction_id, offer.agent_id)
    except Exception as exc:  # the customer left, the offer expired...: the next one
        logger.debug("bot %s: %s", offer.agent_id, exc)


async def _customers(url: str, rate: float, rng: random.Random) -> None:
    """Synthetic customers through the real web chat socket, `rate` new chats a minute."""
    async with anyio.create_task_group() as tg:
        while True:
            await anyio.sleep(rng.expovariate(rate / 60.0))
            tg.start_soon(_customer, url, rng.choice(NAMES), rng)


async def _customer(url: str, name: str, rng: random.Random) -> None:
    import websockets

    socket_url = url.replace("http", "ws", 1) + "/webchat/socket"
    try:
        async with websockets.connect(socket_url) as socket:
            await socket.recv()  # hello
            topic = rng.choice(list(TOPICS))
            await socket.send(json.dumps({"type": "start", "name": name, "topic": topic}))
            await socket.send(json.dumps({"type": "message", "text": rng.choice(LINES)}))
            patience = rng.uniform(30, 180)
            with anyio.move_on_after(patience + 120):
                async for raw in socket:
                    message = json.loads(raw)
                    if message["type"] == "ended":
                        return
                    if message["type"] == "message" and rng.random() < 0.5:
                        await socket.send(json.dumps({"type": "message", "text": "Thanks!"}))
    except Exception as exc:
        logger.debug("synthetic customer %s: %s", name, exc)


# ------------------------------------------------------------------ the command


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    parser.add_argument(
        "--rate", type=float, default=6.0, help="synthetic chats a minute (default 6; 0: none)"
    )
    parser.add_argument("--bots", type=int, default=3, help="synthetic agents (0-6, default 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the synthetic traffic")


@command("demo", "run a sample contact center with synthetic customers and agents", _arguments)
def demo(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="omniroute-demo-") as folder:
        return _demo(args, Path(folder))


def _demo(args: argparse.Namespace, folder: Path) -> int:
    from ..app import App
    from ..config import ConfigError, from_dict

    document = demo_config(folder, port=args.port, bots=max(0, min(args.bots, len(BOTS))))
    try:
        app = App(from_dict(document), host=plugin_host())
    except ConfigError as exc:
        if any("plugins.webchat" in line for line in exc.errors):
            print(
                "omniroute: error: the demo needs the web chat plugin: "
                "pip install ./plugins/omniroute-webchat",
                file=sys.stderr,
            )
        else:
            print(f"omniroute: error: {exc}", file=sys.stderr)
        return 1
    anyio.run(
        functools.partial(run_demo, app, app.config.server, rate=args.rate, seed=args.seed),
        backend="asyncio",
    )
    return 0

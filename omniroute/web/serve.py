"""`omniroute serve`: the app, its channels and the web server in one anyio task group.

uvicorn serves the Starlette app on the same event loop as the router, so an HTTP
request reaches a router command without crossing threads. Signals are ours, not
uvicorn's: SIGINT or SIGTERM stops the web server gracefully, then the app.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..cli import command, plugin_host

if TYPE_CHECKING:
    import uvicorn

    from ..app import App
    from ..cluster import Node
    from .settings import Server

__all__ = ["serve_app", "serve_cluster", "serve_web"]

logger = logging.getLogger("omniroute.serve")


async def serve_app(
    app: App,
    server: Server,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run `app` and its web server until cancelled or sent SIGINT / SIGTERM.

    `on_ready` gets the base URL once the socket listens (with the real port when the
    config asks for port 0).
    """
    async with app.running():
        await serve_web(app, server, on_ready=on_ready)


async def serve_web(
    app: App,
    server: Server,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the web app of an `app` that runs already, until cancelled, or sent SIGINT
    or SIGTERM."""
    import uvicorn

    from .asgi import create_asgi_app

    web = create_asgi_app(app, server)
    config = uvicorn.Config(
        web,
        host=server.host,
        port=server.port,
        lifespan="off",
        access_log=False,
        log_config=None,
        ws_max_size=server.max_body,
        timeout_keep_alive=30,  # pages and agents' clients reuse their connections
        ws_per_message_deflate=False,  # small JSON messages: compressing costs more CPU
    )
    uv = _without_signal_handlers(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.state.hub.run)
        tg.start_soon(_stop_on_signals, uv)
        if on_ready is not None:
            tg.start_soon(_announce, uv, on_ready)
        await uv.serve()
        tg.cancel_scope.cancel()


def _without_signal_handlers(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server that leaves SIGINT and SIGTERM to our task group."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


async def _stop_on_signals(uv: uvicorn.Server) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            logger.info("%s: stopping", signal.Signals(signum).name)
            uv.should_exit = True
            return


async def serve_cluster(
    node: Node, server: Server, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Run a cluster node and serve its App, whether it leads or follows (PostgreSQL
    decides who routes; every node serves the web app, the API and the channels;
    docs/cluster.md), until cancelled or sent SIGINT / SIGTERM."""
    async with anyio.create_task_group() as tg:
        await tg.start(node.run)
        await serve_web(node.app, server, on_ready=on_ready)
        tg.cancel_scope.cancel()


async def _announce(uv: uvicorn.Server, on_ready: Callable[[str], None]) -> None:
    while not uv.started:
        await anyio.sleep(0.01)
    host, port = uv.servers[0].sockets[0].getsockname()[:2]
    on_ready(f"http://{host}:{port}")


def _loop_options() -> dict[str, bool]:
    """uvloop when it is installed: the same asyncio, a faster event loop."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


# ------------------------------------------------------------------ the command


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, metavar="CONFIG", help="the TOML file to run")
    parser.add_argument("--host", help="listen on this address instead of [server] host")
    parser.add_argument("--port", type=int, help="listen on this port instead of [server] port")


#: Libraries whose INFO lines are noise or leak secrets: uvicorn's every connection;
#: httpx's every request URL (the Bot API's URLs carry the bot's token); aiosmtpd's
#: every SMTP command of every mail. Their warnings still show.
QUIET = ("uvicorn.error", "httpx", "mail.log")


def quiet_libraries() -> None:
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


@command("serve", "run the contact center: router, channels and web API", _serve_arguments)
def serve(args: argparse.Namespace) -> int:
    import msgspec

    from ..app import App
    from ..config import ConfigError, load, validate_with_host
    from ..heap import settle
    from ..store import StoreError, open_store

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_libraries()
    try:
        config = load(args.config)
        host = plugin_host()
        validate_with_host(config, host)  # what `omniroute check` checks, channels included
        clustered = (config.store or {}).get("backend") == "postgres"
        if clustered:  # several nodes may share this database: lead or stand by
            from ..cluster import Node

            node = Node.from_config(config, host=host)
        else:
            # A relative [store] path is relative to the config file, wherever we run from.
            store = open_store(config.store, root=args.config.resolve().parent)
            app = App(config, host=host, store=store)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"{args.config}: {line}", file=sys.stderr)
        return 1
    server = msgspec.structs.replace(
        config.server,
        host=args.host if args.host is not None else config.server.host,
        port=args.port if args.port is not None else config.server.port,
    )
    if server.secret is None:
        logger.warning(
            "[server] secret is not set: sessions end when this process stops; "
            'set secret = "${OMNIROUTE_SECRET}" to keep them'
        )

    def ready(url: str) -> None:
        settle()  # start-up is over: the collector need not scan what it built again
        print(f"omniroute: serving on {url} (API description: {url}/api/openapi.json)", flush=True)

    async def run() -> None:
        if clustered:
            await serve_cluster(node, server, on_ready=ready)
            return
        try:
            await serve_app(app, server, on_ready=ready)
        finally:
            with anyio.CancelScope(shield=True):
                await store.close()

    try:
        anyio.run(run, backend="asyncio", backend_options=_loop_options())
    except ConfigError as exc:  # a plugin found a mistake only once it started
        for line in exc.errors:
            print(f"{args.config}: {line}", file=sys.stderr)
        return 1
    except StoreError as exc:  # SchemaError included: it names the versions and the fix
        print(f"omniroute: error: {exc}", file=sys.stderr)
        return 1
    return 0

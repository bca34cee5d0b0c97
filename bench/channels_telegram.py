"""Inbound Telegram updates per second, through to a queued durable interaction.

python-telegram-bot long-polls a local Bot API server (omniroute_telegram.fakeapi) on
loopback that holds `updates` messages from as many customers; the clock runs from the
channel being ready until the last interaction is durable in a SQLite event log. The
bot's replies (greeting and place in line) go out meanwhile, as they would live.

    python -m bench.channels_telegram --updates 5000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio

__all__ = ["run_telegram"]


def run_telegram(updates: int = 5000, folder: Path | None = None) -> float:
    """Updates per second from the Bot API to queued, durable interactions."""
    with tempfile.TemporaryDirectory() as temporary:
        return anyio.run(_run, updates, folder or Path(temporary))


async def _run(count: int, folder: Path) -> float:
    from omniroute_telegram import plugin
    from omniroute_telegram.fakeapi import TOKEN, FakeBotApi

    from omniroute import events as ev
    from omniroute.app import App
    from omniroute.plugins import PluginHost
    from omniroute.store import open_store

    os.environ["OMNIROUTE_BENCH_TELEGRAM_TOKEN"] = TOKEN
    logging.getLogger("omniroute").setLevel(logging.WARNING)
    async with FakeBotApi.running() as api:
        for user in range(1, count + 1):
            api.text(user, f"hello from customer {user}")
        host = PluginHost(entry_points=False)
        host.register(plugin, name="telegram")
        document = {
            "queues": [{"name": "support"}],
            "plugins": {
                "telegram": {
                    "token_env": "OMNIROUTE_BENCH_TELEGRAM_TOKEN",
                    "queue": "support",
                    "api_url": api.api_url,
                    "file_url": api.file_url,
                    "files": str(folder / "files"),
                    "poll_timeout": 1,
                }
            },
        }
        store = open_store({"path": str(folder / "events.db")})
        app = App.from_dict(document, store=store, host=host)
        try:
            async with app.running():
                channel = app.channels["telegram"]
                with app.subscribe(max_buffer=10 * count + 1000) as events:
                    await channel.ready.wait()  # type: ignore[attr-defined]
                    started = time.perf_counter()
                    queued = 0
                    while queued < count:  # drained every 2 ms: a read per event would
                        await anyio.sleep(0.002)  # wait its turn behind the bot's replies
                        while queued < count:
                            try:
                                event = events.receive_nowait()
                            except anyio.WouldBlock:
                                break
                            queued += isinstance(event, ev.InteractionQueued)
                    elapsed = time.perf_counter() - started
        finally:
            await store.close()
    return count / elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.channels_telegram")
    parser.add_argument("--updates", type=int, default=5000)
    args = parser.parse_args(argv)
    rate = run_telegram(args.updates)
    print(f"channels: telegram {rate:.0f} updates/s ({args.updates} updates, SQLite log)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

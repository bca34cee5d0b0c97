"""`python -m bench voice`: calls through a real Asterisk, driven by omniroute over ARI.

Asterisk runs in the chroot `scripts/install-asterisk` prepares (root needed). sipp
places calls at `--rate` per second for `--duration` seconds; each caller stays on the
line `--talk` seconds (waiting with music, then talking) and hangs up. `--agents` phones
(sipp, a few agents per process) answer after a random ring of `--ring` milliseconds.
The figure is offer-to-ring: from the routing decision (the Offered event) to the
agent's channel ringing (ARI ChannelStateChange to Ringing, as omniroute receives it).
A call is lost if it reached Asterisk but never became an interaction, or its
interaction never ended (answered and completed, or abandoned).

Last line: `voice: N calls, offer-to-ring p99 X ms, lost L`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench voice", description=__doc__)
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of arrivals")
    parser.add_argument("--talk", type=float, default=120.0, help="seconds a caller stays")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--ring", default="200-1500", help="ring time range, ms")
    parser.add_argument("--per-phone-process", type=int, default=10)
    parser.add_argument(
        "--moh",
        default="stream",
        help='music on hold class: "stream" (one shared source) or "default" (files)',
    )
    args = parser.parse_args(argv)
    try:
        from omniroute_asterisk.testing import asterisk_missing
    except ImportError:
        print("voice: the omniroute-asterisk plugin is not installed", file=sys.stderr)
        return 1
    why = asterisk_missing()
    if why is not None:
        print(f"voice: skipped, {why}", file=sys.stderr)
        return 1
    # Killed (a time-out), still stop Asterisk and the phones: an orphaned Asterisk with
    # hundreds of calls would load the machine for whatever runs next.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return anyio.run(_run, args)


async def _run(args: argparse.Namespace) -> int:
    from omniroute_asterisk import plugin
    from omniroute_asterisk.channel import VoiceChannel
    from omniroute_asterisk.testing import (
        Asterisk,
        Phone,
        caller_command,
        caller_scenario,
        free_udp_ports,
        phone_scenario,
    )

    from omniroute import events as ev
    from omniroute.app import App
    from omniroute.plugins import PluginHost
    from omniroute.store import MemoryStore

    low, high = (int(x) for x in args.ring.split("-"))
    agents = [f"a{i:02d}" for i in range(args.agents)]
    processes = math.ceil(len(agents) / args.per_phone_process)
    phone_ports = free_udp_ports(processes + 1)
    caller_port = phone_ports.pop()
    port_of = {a: phone_ports[i // args.per_phone_process] for i, a in enumerate(agents)}
    calls = max(1, round(args.rate * args.duration))
    folder = Path(tempfile.mkdtemp(prefix="omniroute-bench-voice-"))
    with Asterisk(port_of) as asterisk:
        os.environ["OMNIROUTE_BENCH_ARI_PASSWORD"] = asterisk.password
        config = {
            "queues": [{"name": "support", "offer_timeout": 15, "wrap_up": 0}],
            "agents": [{"id": a} for a in agents],
            "plugins": {
                "asterisk": {
                    "url": asterisk.url,
                    "user": asterisk.user,
                    "password_env": "OMNIROUTE_BENCH_ARI_PASSWORD",
                    "agents": {a: f"PJSIP/{a}" for a in agents},
                    "numbers": {"default": {"queue": "support"}},
                    "announce_every": 0,
                    "moh_class": args.moh,
                }
            },
        }
        host = PluginHost(entry_points=False)
        host.register(plugin, name="asterisk")
        app = App.from_dict(config, store=MemoryStore(), host=host)
        phones = [
            Phone(port, phone_scenario("answer", ring_ms=(low, high))).start()
            for port in sorted(set(port_of.values()))
        ]
        queued: set[str] = set()
        ended: set[str] = set()
        try:
            async with app.running(), anyio.create_task_group() as tg:
                voice = app.channels["asterisk"]
                assert isinstance(voice, VoiceChannel)
                with anyio.fail_after(10):
                    await voice.ari.connected.wait()
                for agent in agents:
                    await app.set_presence(agent, "ready")

                async def follow() -> None:
                    with app.subscribe(max_buffer=1_000_000) as events:
                        async for event in events:
                            if isinstance(event, ev.InteractionQueued):
                                queued.add(event.interaction.id)
                            elif isinstance(event, ev.Completed | ev.Abandoned | ev.Closed):
                                ended.add(event.interaction_id)

                tg.start_soon(follow)
                scenario = folder / "caller.xml"
                scenario.write_text(caller_scenario(hold_ms=int(args.talk * 1000), audio=False))
                command = caller_command(
                    asterisk,
                    scenario,
                    number="100",
                    port=caller_port,
                    calls=calls,
                    rate=args.rate,
                    limit=calls,  # sipp's default would throttle: no pause to size it on
                )
                started = time.monotonic()
                caller = await anyio.open_process(command, cwd=folder)
                await caller.wait()
                # Every call has hung up: let the last events arrive.
                with anyio.move_on_after(10):
                    while len(ended) < len(queued):
                        await anyio.sleep(0.1)
                elapsed = time.monotonic() - started
                tg.cancel_scope.cancel()
        finally:
            for phone in phones:
                phone.stop()
            shutil.rmtree(folder, ignore_errors=True)
        rings = [
            (rang - offered) * 1000
            for offered, rang in voice.ring_times.values()
            if rang is not None
        ]
        unrung = sum(1 for _, rang in voice.ring_times.values() if rang is None)
    lost = max(0, calls - len(queued)) + len(queued - ended)
    print(
        f"voice-detail: {len(queued)} interactions from {calls} calls in {elapsed:.0f} s, "
        f"{len(voice.ring_times)} offers ({unrung} never rang), offer-to-ring "
        f"median {_median(rings):.1f} ms, max {max(rings, default=0):.1f} ms"
    )
    print(f"voice: {calls} calls, offer-to-ring p99 {_p99(rings):.0f} ms, lost {lost}")
    return 0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__: list[Any] = []

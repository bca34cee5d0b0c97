"""Record what a real Asterisk sends for a few calls, for the fake-ARI tests to replay.

    sudo .venv/bin/python plugins/omniroute-asterisk/tests/record_ari_events.py

writes `ari_events/<scenario>.jsonl`: every ARI event of the call, one JSON object per
line, as Asterisk sent it (REST responses left out).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
from omniroute_asterisk import ari as ari_module
from omniroute_asterisk.testing import Asterisk, free_udp_ports

sys.path.insert(0, str(Path(__file__).parent))
from voicekit import PHONES, document, rig

from omniroute import events as ev

HERE = Path(__file__).parent / "ari_events"


async def record(asterisk: Asterisk, name: str, scenario) -> None:  # type: ignore[no-untyped-def]
    raw: list[bytes | str] = []
    decode = ari_module.decode_event

    def tap(data: bytes | str):  # type: ignore[no-untyped-def]
        event = decode(data)
        if event is not None and type(event).__name__ != "RestResponse":
            raw.append(data)
        return event

    ari_module.decode_event = tap  # type: ignore[assignment]
    try:
        await scenario(asterisk)
    finally:
        ari_module.decode_event = decode  # type: ignore[assignment]
    lines = [json.dumps(json.loads(r), sort_keys=True) for r in raw]
    (HERE / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    print(f"{name}: {len(lines)} events")


async def answered(asterisk: Asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana",)) as r:
        r.phone("ana", "answer", ring_ms=200)
        await r.call(caller="5550001", hold_ms=1500)
        await r.wait_for(ev.Completed)
        await anyio.sleep(0.5)


async def rejected(asterisk: Asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana",)) as r:
        r.phone("ana", "reject", reject_code=486)
        await r.call(caller="5550002", hold_ms=1500)
        await r.wait_for(ev.OfferDeclined)
        await r.wait_for(ev.Abandoned)
        await anyio.sleep(0.5)


async def main() -> None:
    ports = free_udp_ports(len(PHONES))
    with Asterisk(dict(zip(PHONES, ports, strict=True))) as asterisk:
        await record(asterisk, "answered", answered)
        await record(asterisk, "rejected", rejected)


if __name__ == "__main__":
    anyio.run(main)

"""In a live call, against a real Asterisk: hold with music, blind transfer to an agent
or a queue, recording per queue (listed with the interaction), supervisors listening,
whispering and barging in through snoop channels, and re-adopting calls after a restart
of omniroute."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import anyio
import httpx
import pytest
from voicekit import (
    auth,
    document,
    end_process,
    rig,
    start_caller,
    with_users,
)

from omniroute import events as ev
from omniroute.store import MemoryStore

pytestmark = pytest.mark.anyio


def agent_leg(offer: ev.Offered) -> str:
    return f"omni-offer-{offer.offer_id}-{offer.interaction_id}"


async def talking(r, agent: str = "ana") -> tuple[str, str, ev.Offered]:
    """Place a call that `agent` answers; (interaction id, caller channel, offer)."""
    queued = await r.wait_for(ev.InteractionQueued)
    ix = queued.interaction
    assigned = await r.wait_for(ev.Assigned, interaction_id=ix.id, agent_id=agent)
    offer = next(e for e in r.of(ev.Offered) if e.offer_id == assigned.offer_id)
    caller = ix.attributes["asterisk"]["channel"]
    await r.bridged(caller, agent_leg(offer))
    return ix.id, caller, offer


async def test_hold_takes_the_caller_out_of_the_bridge_and_back(asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana",)) as r:
        r.phone("ana", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        await r.voice.hold(ix)
        await r.bridged(agent_leg(offer))  # the agent alone; the caller hears music
        await r.voice.unhold(ix)
        await r.bridged(caller, agent_leg(offer))
        assert not r.of(ev.Completed)


async def test_a_blind_transfer_rings_the_colleague_and_bridges_them(asterisk) -> None:
    async with rig(asterisk, document(asterisk), ready=("ana", "bob")) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("bob", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        queued = await r.wait_for(ev.InteractionQueued)
        first = await r.wait_for(ev.Assigned, interaction_id=queued.interaction.id)
        other = "bob" if first.agent_id == "ana" else "ana"
        await r.app.transfer(queued.interaction.id, to_agent=other)
        second = await r.wait_for(ev.Assigned, agent_id=other)
        offer = next(e for e in r.of(ev.Offered) if e.offer_id == second.offer_id)
        caller = queued.interaction.attributes["asterisk"]["channel"]
        await r.bridged(caller, agent_leg(offer))
        assert len(await r.bridges()) == 1
        assert not r.of(ev.Completed)


async def test_a_transfer_to_a_queue_puts_the_caller_back_in_line(asterisk) -> None:
    queues = [
        {"name": "support", "offer_timeout": 3, "wrap_up": 0},
        {"name": "billing", "offer_timeout": 3, "wrap_up": 0, "skills": {"billing": 1}},
    ]
    config = document(asterisk, queues=queues)
    config["agents"][2]["skills"] = {"billing": 2}  # cy
    async with rig(asterisk, config, ready=("ana",)) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("cy", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        ix, caller, _ = await talking(r)
        await r.app.transfer(ix, to_queue="billing")
        await r.no_bridges()  # ana is gone, the caller waits with music
        await r.app.set_presence("cy", "ready")
        second = await r.wait_for(ev.Assigned, agent_id="cy")
        offer = next(e for e in r.of(ev.Offered) if e.offer_id == second.offer_id)
        await r.bridged(caller, agent_leg(offer))


async def test_a_recorded_queue_records_and_lists_the_recording(asterisk) -> None:
    config = with_users(
        document(asterisk, record_queues=["support"], recordings_dir=str(asterisk.recordings))
    )
    async with rig(asterisk, config, ready=("ana",), web=True) as r:
        r.phone("ana", "answer", ring_ms=100)
        await r.call(hold_ms=5000)
        ix, _, _ = await talking(r)
        await r.wait_for(ev.Completed, interaction_id=ix)
        messages = r.app.conversations.messages(ix)
        recording = [m for m in messages if m.attachments]
        url = f"/voice/recordings/omni-{ix}.wav"
        assert recording and recording[0].attachments == [url]
        file = r.asterisk.recordings / f"omni-{ix}.wav"
        await r.until(lambda: file.exists() and file.stat().st_size > 44)
        async with httpx.AsyncClient(base_url=r.url) as http:
            qa = await http.get(url, headers=auth("sue"))
            assert qa.status_code == 200 and qa.content[:4] == b"RIFF"
            assert qa.headers["content-type"] == "audio/wav"
            assert (await http.get(url, headers=auth("bob"))).status_code == 404
            bad = await http.get("/voice/recordings/..%2Fetc%2Fpasswd", headers=auth("sue"))
            assert bad.status_code == 404


async def test_supervisors_listen_whisper_and_barge_from_the_api(asterisk) -> None:
    config = with_users(document(asterisk))
    async with rig(asterisk, config, ready=("ana",), web=True) as r:
        r.phone("ana", "answer", ring_ms=100)
        r.phone("sam", "answer", ring_ms=100)
        await r.call(hold_ms=60_000)
        ix, caller, offer = await talking(r)
        async with httpx.AsyncClient(base_url=r.url) as http:
            path = f"/voice/calls/{ix}/monitor"
            refused = await http.post(
                path,
                json={"supervisor": "sam"},
                headers=auth("ana"),
            )
            assert refused.status_code == 403
            hold = f"/voice/calls/{ix}/hold"
            bob = await http.post(hold, headers=auth("bob"))
            assert bob.status_code == 403  # not his call
            ana = await http.post(hold, headers=auth("ana"))
            assert ana.status_code == 204, ana.text
            await r.bridged(agent_leg(offer))
            unhold = await http.post(f"/voice/calls/{ix}/unhold", headers=auth("ana"))
            assert unhold.status_code == 204
            await r.bridged(caller, agent_leg(offer))
            sue = auth("sue")
            listen = await http.post(path, json={"supervisor": "sam"}, headers=sue)
            assert listen.status_code == 200, listen.text
            body = listen.json()
            await r.bridged(body["snoop"], body["channel"])
            # Asterisk shows a snoop's target (in its name) but not its directions (no
            # ARI field, no CLI line): those are checked on the requests, in the fake tier.
            snoop = await r.ari(f"channels/{body['snoop']}")
            assert snoop["name"].startswith(f"Snoop/{agent_leg(offer)}-")
            # sam hangs up: the plugin hangs up the snoop and removes its bridge (the test
            # must not: its DELETE would race the plugin's and find the snoop gone, 404).
            await r.voice.ari.delete(f"channels/{body['channel']}")
            await r.until(lambda: _monitor_over(r, body))

            whisper = await http.post(
                path, json={"supervisor": "sam", "mode": "whisper"}, headers=sue
            )
            assert whisper.status_code == 200, whisper.text
            body = whisper.json()
            await r.bridged(body["snoop"], body["channel"])
            await r.voice.ari.delete(f"channels/{body['channel']}")
            await r.until(lambda: _monitor_over(r, body))

            barge = await http.post(path, json={"supervisor": "sam", "mode": "barge"}, headers=sue)
            assert barge.status_code == 200, barge.text
            await r.bridged(caller, agent_leg(offer), barge.json()["channel"])  # three-way

            bad = await http.post(path, json={"supervisor": "sam", "mode": "shout"}, headers=sue)
            assert bad.status_code == 422


async def _monitor_over(r, monitor: dict[str, str]) -> bool:
    """Asterisk has neither the monitor's snoop channel nor its bridge any more."""
    channels = {c["id"] for c in await r.ari("channels")}
    bridges = {b["id"] for b in await r.bridges()}
    return monitor["snoop"] not in channels and monitor["bridge"] not in bridges


async def test_calls_still_in_stasis_are_re_adopted_after_a_restart(asterisk) -> None:
    store = MemoryStore(encode=True)
    folder = Path(tempfile.mkdtemp(prefix="omniroute-voice-"))
    caller = await start_caller(asterisk, folder, hold_ms=60_000)
    try:
        async with rig(asterisk, document(asterisk), store=store, keep_calls=True) as r:
            queued = await r.wait_for(ev.InteractionQueued)
            await r.until(lambda: r.voice.calls)
        # omniroute is down: the caller stays in Stasis; a new process takes over.
        await anyio.sleep(0.5)
        async with rig(asterisk, document(asterisk), store=store, ready=("ana",)) as r:
            ix = queued.interaction
            assert ix.id in r.voice.calls  # adopted, with its music back on
            r.phone("ana", "answer", ring_ms=100)
            assigned = await r.wait_for(ev.Assigned, interaction_id=ix.id)
            offer = next(e for e in r.of(ev.Offered) if e.offer_id == assigned.offer_id)
            await r.bridged(ix.attributes["asterisk"]["channel"], agent_leg(offer))
            assert len(r.of(ev.InteractionQueued)) == 0  # the same interaction, not a new one
    finally:
        await end_process(caller)
        shutil.rmtree(folder, ignore_errors=True)

"""Call control from a follower node: two nodes on the real PostgreSQL, the leader
driving the fake ARI (the channel is leader-only); hold, unhold and monitor asked of
the follower's web API run on the leader's channel, and its refusals come back with
their status."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from fake_ari import FakeAri, recorded
from omniroute_asterisk import plugin
from omniroute_asterisk.channel import VoiceChannel
from test_voice_fake import replay, until
from voicekit import auth, document, with_users

from omniroute.cluster import Node
from omniroute.plugins import PluginHost
from omniroute.web.asgi import create_asgi_app

# The core's helper for the real PostgreSQL (tests/pgkit.py of the repository).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from pgkit import DSN, needs_postgres
from pgkit import schema as schema

pytestmark = [needs_postgres, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def voice_node(config: dict[str, Any], schema: str, name: str, **options: Any) -> Node:
    host = PluginHost(entry_points=False)
    host.register(plugin, name="asterisk")
    return Node.from_dict(
        config, dsn=DSN, schema=schema, name=name, host=host, election_interval=0.1, **options
    )


def voice(node: Node) -> VoiceChannel:
    channel = node.app.channels["asterisk"]
    assert isinstance(channel, VoiceChannel)
    return channel


@pytest.fixture
async def cluster(schema: str) -> AsyncIterator[tuple[FakeAri, Node, httpx.AsyncClient]]:
    """The fake ARI, the leader driving it, and a client of a follower's web API."""
    async with FakeAri().serving() as fake:
        server = SimpleNamespace(url=fake.url, user="omniroute", password="s3cret")
        config = with_users(document(server))
        async with (
            voice_node(config, schema, "leader").running() as leader,
            voice_node(config, schema, "front", lead=False).running() as front,
        ):
            with anyio.fail_after(5):
                while not leader.is_leader:
                    await anyio.sleep(0.02)
                await voice(leader).ari.connected.wait()
            web = create_asgi_app(front.app, front.app.config.server)
            transport = httpx.ASGITransport(app=web)
            async with httpx.AsyncClient(transport=transport, base_url="http://front") as http:
                await front.app.set_presence("ana", "ready")
                yield fake, leader, http
            assert fake.connections == 1  # the follower never connected to Asterisk
            assert voice(front).calls == {}


async def test_hold_unhold_and_monitor_asked_of_a_follower_run_on_the_leader(
    cluster: tuple[FakeAri, Node, httpx.AsyncClient],
) -> None:
    fake, leader, http = cluster
    events = recorded("answered")
    caller = events[0]["channel"]["id"]
    talking = events[: [e["type"] for e in events].index("ChannelHangupRequest")]
    await replay(fake, talking)
    bridge = f"bridges/omni-voice-{caller}"
    await until(lambda: fake.seen("POST", f"{bridge}/addChannel"))
    calls = f"/voice/calls/voice-{caller}"

    bob = await http.post(f"{calls}/hold", headers=auth("bob"))
    assert (bob.status_code, bob.json()["error"]) == (403, f'"voice-{caller}" is not your call')
    ana = await http.post(f"{calls}/hold", headers=auth("ana"))
    assert ana.status_code == 204, ana.text
    (removed,) = fake.seen("POST", f"{bridge}/removeChannel")
    assert removed.params["channel"] == caller
    assert fake.seen("POST", f"channels/{caller}/moh")
    again = await http.post(f"{calls}/hold", headers=auth("ana"))
    assert again.status_code == 409 and "not in a call that can be held" in again.json()["error"]
    unhold = await http.post(f"{calls}/unhold", headers=auth("ana"))
    assert unhold.status_code == 204, unhold.text
    assert fake.seen("DELETE", f"channels/{caller}/moh")
    # The buttons' status (what a reloaded inbox asks): nothing goes on; the leader says so.
    status = await http.get(f"{calls}/controls", headers=auth("ana"))
    assert (status.status_code, status.json()) == (200, {})
    bob = await http.get(f"{calls}/controls", headers=auth("bob"))
    assert bob.status_code == 403

    monitor = f"{calls}/monitor"
    listen = await http.post(monitor, json={"supervisor": "sam"}, headers=auth("sue"))
    assert listen.status_code == 200, listen.text
    (snoop,) = fake.seen("POST", f"channels/omni-offer-o1-voice-{caller}/snoop")
    assert listen.json()["snoop"] == snoop.params["snoopId"]
    nobody = await http.post(monitor, json={"supervisor": "nobody"}, headers=auth("sue"))
    assert nobody.status_code == 409 and "no phone for supervisor" in nobody.json()["error"]
    gone = await http.post("/voice/calls/voice-none/hold", headers=auth("sue"))
    assert gone.status_code == 409 and "no live call" in gone.json()["error"]
    assert voice(leader).calls[f"voice-{caller}"].state.value == "talking"

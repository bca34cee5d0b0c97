"""A third party's leader-only channel with actions under three `omniroute serve` nodes
on PostgreSQL: a request to either follower runs its action on the leader's channel
(and its refusals come back with their status); a retry under its Idempotency-Key, on
the other follower, answers the first result; a frozen leader makes a follower answer
503 with Retry-After; after the leader is killed, the new one runs the actions.

The plugin (tests/relay_probe.py) is installed as a distribution with an entry point,
as a plugin from PyPI would be.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pgkit import DSN, needs_postgres
from pgkit import schema as schema
from test_serve_cluster import leadership, login, serving_nodes

from omniroute.web.passwords import hash_password

pytestmark = [needs_postgres, pytest.mark.slow, pytest.mark.anyio]

HERE = Path(__file__).resolve().parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config(schema_name: str) -> str:
    password_hash = hash_password("pw", n=2**10)
    return f"""
[[queues]]
name = "support"

[[agents]]
id = "ana"
capacity = {{ probe = 1 }}

[store]
backend = "postgres"
dsn = "{DSN}"
schema = "{schema_name}"

[plugins.probe]

[server]
secret = "a-secret-shared-by-every-node"

[[server.users]]
id = "ana"
password_hash = "{password_hash}"
"""


def install_probe(site: Path) -> None:
    """The probe plugin as an installed distribution: its module and an entry point."""
    site.mkdir()
    shutil.copy(HERE / "relay_probe.py", site / "relay_probe.py")
    info = site / "omniroute_relay_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: omniroute-relay-probe\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text("[omniroute]\nrelay-probe = relay_probe\n")


@pytest.fixture
def nodes(schema: str, tmp_path: Path) -> Any:
    """Three serving nodes with the probe plugin installed: {pid: (process, stderr, url)}."""
    install_probe(tmp_path / "site")
    path = tmp_path / "omniroute.toml"
    path.write_text(config(schema))
    search = [str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(search)}
    with serving_nodes(path, tmp_path, env) as procs:
        yield procs


async def test_followers_relay_actions_to_the_leaders_channel(nodes: Any, schema: str) -> None:
    epoch, leader_pid = leadership(schema)
    leader_proc = nodes[leader_pid][0]
    followers = {pid: url for pid, (_, _, url) in nodes.items() if pid != leader_pid}
    (b_pid, b), (c_pid, c) = followers.items()

    async with httpx.AsyncClient(timeout=30) as client:
        ana = await login(client, b, "ana")

        async def act(base: str, action: str, **payload: Any) -> httpx.Response:
            return await client.post(f"{base}/probe/{action}", json=payload, headers=ana)

        # each follower's request runs on the leader, whose channel runs
        count = 0
        for base in (b, c):
            with anyio.fail_after(10):  # the leader's channel starts once it routes
                while not (r := await act(base, "where", tag=base)).json().get("running"):
                    assert r.status_code == 200, r.text
                    await anyio.sleep(0.1)
            count = r.json()["count"]
            assert r.json() == {
                "pid": leader_pid,
                "role": "leader",
                "running": True,
                "count": count,
                "tag": base,
            }
        # its refusals come back with their status, through either follower
        r = await act(b, "refuse", status=404, message="no such call")
        assert (r.status_code, r.json()["error"]) == (404, "no such call")
        r = await act(c, "conflict")
        assert r.status_code == 409 and "i9" in r.json()["error"]
        r = await act(c, "teleport")
        assert r.status_code == 404 and 'no action "teleport"' in r.json()["error"]

        # a retry under its key, on the other follower: the first answer, run once
        keyed = {**ana, "Idempotency-Key": "where-once"}
        first = await client.post(f"{b}/probe/where", json={"tag": "k"}, headers=keyed)
        again = await client.post(f"{c}/probe/where", json={"tag": "k"}, headers=keyed)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json() and first.json()["count"] == count + 1
        assert (await act(c, "where")).json()["count"] == count + 2

        # the leader frozen (it keeps the lock): no leader answers in time
        leader_proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            r = await act(b, "where")
            waited = time.monotonic() - started
        finally:
            leader_proc.send_signal(signal.SIGCONT)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2"
        assert "withdrawn and not executed" in r.json()["error"]
        assert 9 < waited < 20, waited  # the node's command_timeout: 10 s
        assert (await act(b, "where")).json()["count"] == count + 3  # it never ran

        # the leader killed: the next leader runs the actions on its own channel
        leader_proc.kill()
        leader_proc.wait()
        with anyio.fail_after(15):
            while True:
                r = await act(c, "where", tag="after")
                if r.status_code == 200 and r.json()["pid"] != leader_pid:
                    if r.json()["running"]:
                        break
                else:
                    assert r.status_code in (200, 503), r.text
                await anyio.sleep(0.1)
        new_epoch, new_leader = leadership(schema)
        assert new_epoch > epoch and new_leader in (b_pid, c_pid)
        assert r.json()["pid"] == new_leader and r.json()["role"] == "leader"

"""`omniroute serve` on PostgreSQL: two nodes, one serves, the other stands by and takes
over (web server included) when the first is killed, with the state it left."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pgkit import DSN, needs_postgres, schema  # noqa: F401  (schema is a fixture)

from omniroute.web.passwords import hash_password

pytestmark = [needs_postgres, pytest.mark.slow]


def config(schema_name: str) -> str:
    password_hash = hash_password("pw", n=2**10)
    return f"""
[[queues]]
name = "support"

[[agents]]
id = "ana"

[store]
backend = "postgres"
dsn = "{DSN}"
schema = "{schema_name}"

[server]
secret = "a-secret-shared-by-every-node"

[[server.users]]
id = "ana"
password_hash = "{password_hash}"
"""


def start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "omniroute", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def serving_url(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The URL the node prints once it leads and serves, or None after `timeout`."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    line = proc.stdout.readline()
    assert line.startswith("omniroute: serving on "), line
    return line.split()[3]


def test_a_standby_node_takes_over_serving(tmp_path: Path, schema: str) -> None:  # noqa: F811
    path = tmp_path / "omniroute.toml"
    path.write_text(config(schema))
    migrate = [sys.executable, "-m", "omniroute", "store", "migrate", str(path)]
    subprocess.run(migrate, check=True, capture_output=True)
    first = start(path)
    second: subprocess.Popen[str] | None = None
    try:
        url = serving_url(first, 20)
        assert url is not None, first.stderr.read() if first.stderr else ""
        second = start(path)
        assert serving_url(second, 2) is None  # on standby while the first leads
        r = httpx.post(f"{url}/api/login", json={"user": "ana", "password": "pw"})
        token = {"Authorization": f"Bearer {r.json()['token']}"}
        r = httpx.put(f"{url}/api/inbox/presence", json={"presence": "ready"}, headers=token)
        assert r.status_code == 200

        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        url = serving_url(second, 10)
        took = time.monotonic() - killed
        assert url is not None, "the standby never took over"
        assert took < 5, f"takeover took {took:.1f} s"
        inbox = httpx.get(f"{url}/api/inbox", headers=token)  # the same session works
        assert inbox.status_code == 200 and inbox.json()["presence"] == "ready"
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()

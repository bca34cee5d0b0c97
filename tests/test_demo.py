"""`omniroute demo` as a newcomer runs it: it starts, the wallboard moves, Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("omniroute_webchat")


@pytest.mark.slow
def test_the_demo_runs_by_itself_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omniroute", "demo", "--port", "0", "--rate", "240", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(8)]
        assert lines[0].startswith("omniroute demo is running"), lines
        url = lines[3].split()[-1].removesuffix("/wallboard")
        assert "password for all: demo" in lines[5]
        with httpx.Client(base_url=url) as client:
            r = client.post("/api/login", json={"user": "sue", "password": "demo"})
            assert r.status_code == 200
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                board = client.get("/api/wallboard").json()
                offered = sum(q["kpis"]["offered"] for q in board["queues"])
                answered = sum(q["kpis"]["answered"] for q in board["queues"])
                if offered >= 3 and answered >= 1:
                    break
                time.sleep(0.5)
            assert offered >= 3 and answered >= 1, board
            assert board["agents_by_activity"].get("offline") == 2  # ana and bob: log in
            assert client.get("/webchat/widget.js").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()

"""`python -m omniroute_telegram.fakeapi --port N`: the local Bot API on a fixed port
for demos and trials, where a person plays the customer over HTTP."""

from __future__ import annotations

import subprocess
import sys

import httpx
from omniroute_telegram.fakeapi import TOKEN
from telegramkit import free_port


def test_it_runs_on_a_fixed_port_and_takes_a_customer_message() -> None:
    port = free_port()
    command = [sys.executable, "-m", "omniroute_telegram.fakeapi", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(6)]
        url = f"http://127.0.0.1:{port}"
        assert printed[0].startswith(f"fake Telegram Bot API on {url}")
        assert any(TOKEN in line for line in printed)
        assert any(f"curl -X POST {url}/fake/users/42/messages" in line for line in printed)
        with httpx.Client(base_url=url, timeout=5) as client:
            sent = client.post("/fake/users/42/messages", content='{"text": "hello"}')
            assert sent.status_code == 201, sent.text
            assert client.post("/fake/users/42/messages", content="{}").status_code == 422
            updates = client.get(f"/bot{TOKEN}/getUpdates").json()["result"]
            assert [u["message"]["text"] for u in updates] == ["hello"]
            client.post(f"/bot{TOKEN}/sendMessage", data={"chat_id": 42, "text": "hi Carla"})
            assert client.get("/fake/users/42/messages").json() == [
                {"method": "sendMessage", "text": "hi Carla"}
            ]
    finally:
        process.terminate()
        process.wait(timeout=10)

"""An in-process fake ARI for fast tests: a WebSocket server on loopback that answers
the plugin's REST-over-WebSocket requests and pushes the events a test chooses
(usually a sequence recorded from the real Asterisk, see record_ari_events.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

RECORDED = Path(__file__).parent / "ari_events"


def recorded(name: str) -> list[dict[str, Any]]:
    """The events of a recorded call, in the order Asterisk sent them."""
    lines = (RECORDED / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class Request:
    def __init__(self, message: dict[str, Any]) -> None:
        self.method: str = message["method"]
        parts = urlsplit(message["uri"])
        self.path = parts.path
        self.params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = message.get("message_body")
        self.body = json.loads(body) if body else None

    def __repr__(self) -> str:
        return f"{self.method} {self.path} {self.params}"


class FakeAri:
    """Control surface: `respond` sets an answer, `push` sends an event, `requests` is
    what the plugin asked, `wait_request` waits for one, `drop` cuts the connection."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.connections = 0
        self.channels: list[dict[str, Any]] = []  # what GET channels answers
        self._answers: list[tuple[str, str, int, Any]] = []
        self._socket: ServerConnection | None = None
        self._changed = anyio.Event()
        self.url = ""
        self.headers: list[dict[str, str]] = []
        self._drop_on: tuple[str, str] | None = None

    def drop_on(self, method: str, path_prefix: str) -> None:
        """Cut the connection (once) when such a request arrives, instead of answering."""
        self._drop_on = (method, path_prefix)

    def respond(self, method: str, path_prefix: str, status: int, body: Any = None) -> None:
        self._answers.insert(0, (method, path_prefix, status, body))

    async def push(self, event: dict[str, Any]) -> None:
        assert self._socket is not None, "no client connected"
        await self._socket.send(json.dumps({"application": "omniroute", **event}))

    async def wait_request(self, method: str, path_prefix: str, timeout: float = 5.0) -> Request:
        with anyio.fail_after(timeout):
            while True:
                for request in self.requests:
                    if request.method == method and request.path.startswith(path_prefix):
                        return request
                await self._wait_change()

    async def wait_connections(self, count: int, timeout: float = 5.0) -> None:
        with anyio.fail_after(timeout):
            while self.connections < count or self._socket is None:
                await self._wait_change()

    async def drop(self, code: int = 1000) -> None:
        """Close the connection; 1011 (internal error) is an abnormal close."""
        if self._socket is not None:
            await self._socket.close(code=code)

    def seen(self, method: str, path_prefix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _answer(self, request: Request) -> tuple[int, Any]:
        for method, prefix, status, body in self._answers:
            if method == request.method and request.path.startswith(prefix):
                return status, body
        if request.method == "GET" and request.path == "channels":
            return 200, self.channels
        if request.method == "POST" and request.path == "bridges":
            return 200, {"id": request.params.get("bridgeId", "b1"), "channels": []}
        if request.method == "POST" and request.path == "channels":
            return 200, {"id": request.params.get("channelId", "c1"), "state": "Down"}
        if request.method == "POST" and request.path.endswith("/snoop"):
            return 200, {"id": request.params.get("snoopId", "s1"), "state": "Up"}
        if request.method == "POST" and request.path.endswith("/play"):
            return 201, {"id": request.params.get("playbackId", "p1"), "state": "queued"}
        return 204, None

    async def _handle(self, socket: ServerConnection) -> None:
        self.connections += 1
        self.headers.append(dict(socket.request.headers) if socket.request else {})
        self._socket = socket
        self._changed_now()
        try:
            async for raw in socket:
                message = json.loads(raw)
                if message.get("type") != "RESTRequest":
                    continue
                request = Request(message)
                self.requests.append(request)
                drop = self._drop_on
                if drop and request.method == drop[0] and request.path.startswith(drop[1]):
                    self._drop_on = None
                    await socket.close()
                    break
                status, body = self._answer(request)
                answer = {
                    "type": "RESTResponse",
                    "request_id": message.get("request_id", ""),
                    "status_code": status,
                    "reason_phrase": "OK" if status < 400 else "Error",
                    "uri": message["uri"],
                }
                if body is not None:
                    answer["content_type"] = "application/json"
                    answer["message_body"] = json.dumps(body)
                await socket.send(json.dumps(answer))
                self._changed_now()
        except ConnectionClosed:
            pass  # the client went away (or the test dropped it)
        finally:
            if self._socket is socket:
                self._socket = None
            self._changed_now()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeAri]:
        async with serve(self._handle, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"http://127.0.0.1:{port}/ari"
            yield self

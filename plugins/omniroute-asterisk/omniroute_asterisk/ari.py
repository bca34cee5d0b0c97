"""A small ARI client: events and REST requests over one WebSocket.

Since Asterisk 20.14, 21.9 and 22.4 a REST request can travel over the event WebSocket
(`RESTRequest` / `RESTResponse`), so one connection carries everything and no HTTP client
is needed. The connection is kept up with backoff: while it is down requests fail with
`AriUnavailable`, and each new connection calls `on_connected` (to re-adopt channels)
before events flow again.
"""

from __future__ import annotations

import base64
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import anyio
import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

from .ari_models import AriEvent, RestResponse, decode_event

__all__ = ["AriClient", "AriError", "AriUnavailable", "events_url"]

logger = logging.getLogger("omniroute.asterisk.ari")

EventHandler = Callable[[AriEvent], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


class AriError(Exception):
    """Asterisk refused a request: `status` is the HTTP status it answered."""

    def __init__(self, status: int, reason: str, method: str, uri: str) -> None:
        super().__init__(f"ARI {method} {uri}: {status} {reason}")
        self.status = status


class AriUnavailable(AriError):
    """No connection to Asterisk right now (it is being re-established)."""

    def __init__(self, method: str, uri: str, why: str) -> None:
        super().__init__(0, why, method, uri)


def events_url(url: str, app: str) -> str:
    """`http://host:8088/ari` -> `ws://host:8088/ari/events?app=NAME`."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"ARI url {url!r}: expected http(s)://host:port/ari")
    path = parts.path.rstrip("/") + "/events"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"app": app}), ""))


class AriClient:
    """One Stasis application's connection to Asterisk.

    `run(on_event, on_connected)` connects and reconnects until cancelled; events are
    handed to `on_event` one at a time, in order. `request` may be called from any task
    (including from `on_event`: responses are read by the connection's own reader).
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        app: str,
        *,
        sleep: Sleep | None = None,
        request_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        on_arrival: Callable[[AriEvent], None] | None = None,
    ) -> None:
        self.url = events_url(url, app)
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._sleep: Sleep = sleep if sleep is not None else anyio.sleep
        self._timeout = request_timeout
        self._backoff = backoff
        #: Called with each event as it arrives, before the ones queued ahead of it are
        #: handled: for timestamps (when a phone rang), never for slow work.
        self._on_arrival = on_arrival
        self._socket: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[anyio.Event, list[RestResponse]]] = {}
        self._encoder = msgspec.json.Encoder()
        #: Set once connected and `on_connected` has run; cleared while reconnecting.
        self.connected = anyio.Event()
        #: Connections made so far (the first is 1).
        self.connections = 0

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one REST request and return its decoded JSON body (None when empty).

        `path` is relative to /ari (`channels/ID/answer`); `params` become the query
        string; `body` is sent as JSON. Raises AriError on a 4xx/5xx answer.
        """
        uri = path
        if params:
            query = urlencode({k: _param(v) for k, v in params.items() if v is not None})
            uri = f"{path}?{query}"
        socket = self._socket
        if socket is None:
            raise AriUnavailable(method, uri, "not connected to Asterisk")
        request_id = str(next(self._ids))
        message: dict[str, Any] = {
            "type": "RESTRequest",
            "request_id": request_id,
            "method": method,
            "uri": uri,
        }
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = self._encoder.encode(body).decode()
        done = anyio.Event()
        box: list[RestResponse] = []
        self._pending[request_id] = (done, box)
        try:
            await socket.send(self._encoder.encode(message).decode())
            with anyio.fail_after(self._timeout):
                await done.wait()
        except (websockets.ConnectionClosed, OSError) as exc:
            raise AriUnavailable(method, uri, f"connection lost ({exc})") from exc
        except TimeoutError:
            raise AriUnavailable(method, uri, f"no answer in {self._timeout:g} s") from None
        finally:
            self._pending.pop(request_id, None)
        if not box:
            raise AriUnavailable(method, uri, "connection lost")
        response = box[0]
        if response.status_code >= 400:
            reason = response.reason_phrase
            if response.message_body:
                reason = f"{reason}: {_error_text(response.message_body)}"
            raise AriError(response.status_code, reason, method, uri)
        if not response.message_body:
            return None
        return msgspec.json.decode(response.message_body)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request("POST", path, params, body)

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.request("DELETE", path, params)

    # ------------------------------------------------------------------ connection

    async def run(
        self,
        on_event: EventHandler,
        on_connected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Connect, deliver events, reconnect with backoff; until cancelled."""
        first, ceiling = self._backoff
        delay = first
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers=self._headers,
                    max_size=None,
                    ping_interval=20,
                    open_timeout=self._timeout,
                ) as socket:
                    delay = first
                    await self._serve(socket, on_event, on_connected)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                logger.warning(
                    "ARI connection to %s failed or was lost (%s); retrying in %.1f s",
                    self.url,
                    exc,
                    delay,
                )
            await self._sleep(delay)
            delay = min(ceiling, delay * 2)

    async def _serve(
        self,
        socket: ClientConnection,
        on_event: EventHandler,
        on_connected: Callable[[], Awaitable[None]] | None,
    ) -> None:
        send, receive = anyio.create_memory_object_stream[AriEvent](math.inf)
        self._socket = socket
        self.connections += 1
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read, socket, send)
                logger.info("connected to ARI at %s", self.url)
                if on_connected is not None:
                    try:
                        await on_connected()
                    except AriUnavailable as exc:
                        logger.warning("lost ARI while resuming calls (%s)", exc)
                        tg.cancel_scope.cancel()
                        return
                self.connected.set()
                async with receive:
                    async for event in receive:
                        await on_event(event)
                tg.cancel_scope.cancel()
        finally:
            self._socket = None
            self.connected = anyio.Event()
            for done, _ in self._pending.values():
                done.set()  # empty box: the request fails as "connection lost"

    async def _read(self, socket: ClientConnection, events: Any) -> None:
        """Route responses to their requests and events to the handler's queue."""
        async with events:
            try:
                await self._route(socket, events)
            except websockets.ConnectionClosed as exc:
                logger.warning("the ARI connection closed: %s", exc)

    async def _route(self, socket: ClientConnection, events: Any) -> None:
        async for raw in socket:
            try:
                event = decode_event(raw)
            except msgspec.ValidationError as exc:
                logger.warning("ignoring an ARI message omniroute cannot read: %s", exc)
                continue
            if event is None:
                continue
            if isinstance(event, RestResponse):
                waiting = self._pending.get(event.request_id)
                if waiting is not None:
                    waiting[1].append(event)
                    waiting[0].set()
                continue
            if self._on_arrival is not None:
                self._on_arrival(event)
            events.send_nowait(event)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _error_text(body: str) -> str:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:200]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return body[:200]


def path(*segments: str) -> str:
    """A request path from segments, each quoted (channel ids contain dots)."""
    return "/".join(quote(s, safe="") for s in segments)

"""The ASGI app: the API table turned into Starlette routes, the live event socket, the
OpenAPI document, and the routes plugins add.

Every request is authenticated here, once, before its handler runs: a Bearer token or
the session cookie; the endpoint's role is checked against the caller's.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..actions import ActionError
from ..router.core import RouterError
from ..store.base import StoreError
from .api import ENDPOINTS, ApiError, Call, Endpoint, decode_body
from .auth import COOKIE, Auth, Principal
from .hub import EventHub
from .openapi import openapi_document
from .settings import Role, Server

if TYPE_CHECKING:
    from ..app import App

__all__ = ["JSONResponse", "create_asgi_app"]

logger = logging.getLogger("omniroute.web")
_encoder = msgspec.json.Encoder()


class JSONResponse(Response):
    """A response encoded by msgspec (Structs, enums and all)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def create_asgi_app(app: App, server: Server) -> Starlette:
    """The web app of one running `App`, configured by `[server]`."""
    auth = Auth(server)
    app.host.controls()  # a malformed control is refused now, not when a page asks
    routes: list[BaseRoute] = [_route(app, auth, server, e) for e in _by_path(ENDPOINTS)]
    hub = EventHub(app)
    auth.on_logout(hub.close_session)
    hub.follow(auth.apply)  # a logout on another node of a cluster
    routes.append(WebSocketRoute("/api/events", _event_socket(hub, auth)))
    document = openapi_document(ENDPOINTS)
    routes.append(Route("/api/openapi.json", lambda _: JSONResponse(document)))
    routes.extend(_pages())
    for spec in app.host.web_routes():
        routes.append(_plugin_route(app, auth, spec))
    web = Starlette(routes=routes)
    web.state.omniroute = app
    web.state.auth = auth
    web.state.hub = hub  # `serve_app` runs it beside the server
    return web


def _by_path(endpoints: list[Endpoint]) -> list[list[Endpoint]]:
    """Endpoints grouped by path, so one Starlette route serves all methods of a path."""
    groups: dict[str, list[Endpoint]] = {}
    for e in endpoints:
        groups.setdefault(e.path, []).append(e)
    return list(groups.values())


def _route(app: App, auth: Auth, server: Server, group: list[Endpoint]) -> Route:
    by_method = {e.method: e for e in group}

    async def handle(request: Request) -> Response:
        endpoint = by_method[request.method]
        try:
            principal = _authorise(auth, request, endpoint.role)
            if endpoint.body is not None and not _json(request):
                raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
            raw = await _body(request, server.max_body) if endpoint.body else b""
            call = Call(
                app=app,
                auth=auth,
                principal=principal,
                body=decode_body(endpoint, raw),
                params=dict(request.path_params),
                client=request.client.host if request.client else "",
            )
            key = _idempotency_key(request, principal)
            with app.idempotent(key) if key else contextlib.nullcontext():
                result = await _handle_once(app, endpoint, call, key)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody reads it: the client went away
        except StoreError as exc:  # the store, or a cluster's leader, cannot take it now
            return _unavailable(exc)
        except ApiError as exc:
            body = {"error": exc.error, "where": exc.where}
            return JSONResponse(body, status_code=exc.status, headers=exc.headers)
        if endpoint.returns is None:
            response = Response(status_code=204)
            if endpoint.handler.__name__ == "logout":
                response.delete_cookie(COOKIE, httponly=True, samesite="strict")
            return response
        response = JSONResponse(result, status_code=endpoint.status)
        token = getattr(result, "token", None)
        if token:
            response.set_cookie(
                COOKIE, token, max_age=int(server.session_ttl), httponly=True, samesite="strict"
            )
        return response

    return Route(group[0].path, handle, methods=list(by_method))


def _unavailable(exc: StoreError) -> Response:
    """503 with Retry-After: a write the store, or a cluster's leader, cannot take now."""
    body = {"error": f"try again in a moment: {exc}", "where": None}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})


def _idempotency_key(request: Request, principal: Principal | None) -> str | None:
    """A request with an `Idempotency-Key` header runs its command once however often it
    is sent (in a cluster: a retry after a failover gets the first answer)."""
    key = request.headers.get("idempotency-key")
    if key is None or request.method == "GET":
        return None
    if not 0 < len(key) <= 200 or not key.isprintable():
        raise ApiError(400, "Idempotency-Key: 1 to 200 printable characters")
    caller = principal.id if principal is not None else getattr(request.client, "host", "")
    return f"http:{caller}:{request.method} {request.url.path}:{key}"


async def _handle_once(app: App, endpoint: Endpoint, call: Call, key: str | None) -> Any:
    """The handler's answer; for a request sent again under a key whose command ran, that
    command's answer when it is the response (the handler's checks would refuse what
    the first sending changed), else the handler again (its command is not rerun)."""
    if key is not None:
        try:
            done = await app.recall(key)
        except RouterError as exc:
            raise ApiError(409, str(exc)) from None
        if done is not None and (endpoint.returns is None or _is(done[0], endpoint.returns)):
            return done[0]
    return await endpoint.handler(call)


def _is(value: Any, kind: Any) -> bool:
    return isinstance(kind, type) and isinstance(value, kind)


def _credential(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return conn.cookies.get(COOKIE)


def _authorise(auth: Auth, conn: HTTPConnection, role: Role | None) -> Principal | None:
    if role is None:
        return None
    if not _same_origin(conn):
        raise ApiError(403, "another site may not call this API with your session")
    principal = auth.authenticate(_credential(conn))
    if principal is None:
        raise ApiError(401, "log in first (a session token, cookie or API token is needed)")
    if not principal.has(role):
        has = principal.role.value
        raise ApiError(403, f"this needs the {role.value} role; {principal.id} is {has}")
    return principal


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it grows past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is over {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------ pages

_STATIC = Path(__file__).parent / "static"
#: The pages load only their own scripts and styles, and talk only to this server.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _pages() -> list[BaseRoute]:
    """The agents' inbox, the supervisors' wallboard and the login page: static files
    that read everything through the API (they hold nothing a login would protect)."""

    def page(name: str) -> Any:
        async def serve(_: Request) -> Response:
            return FileResponse(_STATIC / name, headers=_PAGE_HEADERS)

        return serve

    return [
        Route("/", lambda _: RedirectResponse("/login")),
        Route("/login", page("login.html")),
        Route("/inbox", page("inbox.html")),
        Route("/wallboard", page("wallboard.html")),
        # Browsers and tools ask for /favicon.ico whatever the pages link.
        Route("/favicon.ico", lambda _: RedirectResponse("/static/favicon.svg", 301)),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]


# ------------------------------------------------------------------ live events


def _event_socket(hub: EventHub, auth: Auth) -> Any:
    async def socket(websocket: WebSocket) -> None:
        """Every durable event the caller may see, as JSON, one message each.

        Authenticated like the API (cookie, or `?token=` since browsers cannot set
        headers on a WebSocket). An agent receives only events about themselves and
        their offers and work; supervisors receive everything.
        """
        credential = _credential(websocket) or websocket.query_params.get("token")
        principal = auth.authenticate(credential)
        await websocket.accept()  # then close with a code: a refused handshake has none
        if principal is None:
            await websocket.close(code=4401, reason="log in first")
            return
        if not _same_origin(websocket):
            await websocket.close(code=4403, reason="another site may not open this socket")
            return
        gone = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_closed, websocket, tg.cancel_scope, gone)
            tg.start_soon(_while_valid, auth, credential, principal, tg.cancel_scope)
            with hub.open(principal) as events:
                async for data in events:
                    await websocket.send_text(data.decode())  # JSON is text
            tg.cancel_scope.cancel()  # logged out, the app stopped, or too slow a reader
        if not gone.is_set():
            still = auth.authenticate(credential)
            code, reason = (1012, "resubscribe") if still else (4401, "the session ended")
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.close(code=code, reason=reason)

    return socket


async def _while_valid(
    auth: Auth, credential: str | None, principal: Principal, scope: anyio.CancelScope
) -> None:
    """End the socket once its session expires or its user's role changes (logout ends
    it at once, through the hub)."""
    while True:
        await anyio.sleep(2.0)
        now = auth.authenticate(credential)
        if now is None or now.role != principal.role:
            scope.cancel()
            return


def _json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json"


def _same_origin(conn: HTTPConnection) -> bool:
    """A browser names the page that opened a socket or sent a request in `Origin`; only
    pages of this server may act with its cookie (programs send no Origin)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    host = conn.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def _until_closed(websocket: WebSocket, scope: anyio.CancelScope, gone: anyio.Event) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            break
    gone.set()
    scope.cancel()


# ------------------------------------------------------------------ plugin routes


def _plugin_route(app: App, auth: Auth, spec: Any) -> BaseRoute:
    """A plugin's route, behind the role its spec asks for ("public" skips the check).

    As for the API: an `Idempotency-Key` header gives the commands and channel actions
    the endpoint runs that key; what it lets escape is answered as the API would (an
    ActionError with its status, RouterError 409, StoreError 503 with Retry-After)."""
    role = None if spec.role == "public" else Role(spec.role)
    endpoint = spec.endpoint
    if spec.websocket:

        async def guarded_socket(websocket: WebSocket) -> None:
            if role is not None:
                credential = _credential(websocket) or websocket.query_params.get("token")
                principal = auth.authenticate(credential)
                if principal is None or not principal.has(role) or not _same_origin(websocket):
                    await websocket.accept()  # then close with a code the client sees
                    await websocket.close(code=4403, reason=f"this needs the {role} role")
                    return
            await endpoint(websocket)

        return WebSocketRoute(spec.path, guarded_socket)

    async def guarded(request: Request) -> Response:
        try:
            # The caller (None on public routes), for the endpoint's own checks.
            request.state.principal = principal = _authorise(auth, request, role)
            key = _idempotency_key(request, principal)
            with app.idempotent(key) if key else contextlib.nullcontext():
                response: Response = await endpoint(request)
        except ApiError as exc:
            return JSONResponse({"error": exc.error, "where": None}, status_code=exc.status)
        except ActionError as exc:
            return JSONResponse({"error": str(exc), "where": None}, status_code=exc.status)
        except RouterError as exc:
            return JSONResponse({"error": str(exc), "where": None}, status_code=409)
        except StoreError as exc:  # no leader took it in time, or the store is away
            return _unavailable(exc)
        return response

    return Route(spec.path, guarded, methods=list(spec.methods))

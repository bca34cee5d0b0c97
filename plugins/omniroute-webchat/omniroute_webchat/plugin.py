"""The hook implementations: the channel, its `[plugins.webchat]` section, and its public
routes (the widget script, a demo page, the customers' socket)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket

from omniroute import hookimpl
from omniroute.specs import ChannelSpec, ConfigSpec, RouteSpec

from .channel import WebchatChannel
from .settings import WebchatSettings

_STATIC = files("omniroute_webchat") / "static"


@hookimpl
def omniroute_channels() -> Iterator[ChannelSpec]:
    yield ChannelSpec(
        name="webchat",
        factory=WebchatChannel,
        description="web chat widget for any web page (one <script> tag)",
    )


@hookimpl
def omniroute_config_sections() -> Iterator[ConfigSpec]:
    yield ConfigSpec(section="webchat", type=WebchatSettings)


@hookimpl
def omniroute_web_routes() -> Iterator[RouteSpec]:
    yield RouteSpec(path="/webchat/socket", endpoint=_socket, role="public", websocket=True)
    yield RouteSpec(path="/webchat/widget.js", endpoint=_widget, role="public")
    yield RouteSpec(path="/webchat/", endpoint=_demo_page, role="public")


def _channel(app: Any) -> WebchatChannel:
    channel: WebchatChannel = app.state.omniroute.channels["webchat"]
    return channel


async def _socket(websocket: WebSocket) -> None:
    app = websocket.scope["app"]
    if "webchat" not in app.state.omniroute.channels:
        await websocket.close(code=4503, reason="web chat is not enabled ([plugins.webchat])")
        return
    await _channel(app).socket(websocket)


async def _widget(request: Request) -> Response:
    return Response(
        (_STATIC / "widget.js").read_text(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _demo_page(request: Request) -> Response:
    return HTMLResponse((_STATIC / "demo.html").read_text())

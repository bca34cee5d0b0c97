"""The hook implementations: the `asterisk` channel, its `[plugins.asterisk]` section,
call-control routes for agents (hold) and supervisors (listen, whisper, barge), and the
recordings' downloads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from omniroute import hookimpl
from omniroute.app import RouterError
from omniroute.specs import ChannelSpec, ConfigSpec, RouteSpec
from omniroute.web.api import readable
from omniroute.web.settings import Role

from .ari import AriError
from .channel import CallError, VoiceChannel
from .settings import AsteriskSettings


@hookimpl
def omniroute_channels() -> Iterator[ChannelSpec]:
    yield ChannelSpec(
        name="asterisk",
        factory=VoiceChannel,
        description="voice calls through Asterisk (ARI): IVR, music on hold, ringing phones",
        # One Stasis application, one consumer: on several nodes the routing leader
        # drives Asterisk (a second consumer would answer every call twice).
        leader_only=True,
    )


@hookimpl
def omniroute_config_sections() -> Iterator[ConfigSpec]:
    yield ConfigSpec(section="asterisk", type=AsteriskSettings)


@hookimpl
def omniroute_web_routes() -> Iterator[RouteSpec]:
    yield RouteSpec(path="/voice/calls/{interaction_id}/hold", endpoint=_hold, methods=("POST",))
    yield RouteSpec(
        path="/voice/calls/{interaction_id}/unhold", endpoint=_unhold, methods=("POST",)
    )
    yield RouteSpec(path="/voice/recordings/{file}", endpoint=_recording)
    yield RouteSpec(
        path="/voice/calls/{interaction_id}/monitor",
        endpoint=_monitor,
        methods=("POST",),
        role="supervisor",
    )


class MonitorBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who listens, and how: "listen" (silent), "whisper" (to the agent), "barge"."""

    supervisor: str
    mode: Literal["listen", "whisper", "barge"] = "listen"


def _channel(request: Request) -> VoiceChannel | None:
    channels: dict[str, Any] = request.scope["app"].state.omniroute.channels
    channel = channels.get("asterisk")
    return channel if isinstance(channel, VoiceChannel) else None


async def _control(request: Request, action: str, body: MonitorBody | None = None) -> Response:
    channel = _channel(request)
    if channel is None:
        return JSONResponse({"error": "voice is not enabled ([plugins.asterisk])"}, 503)
    interaction_id = request.path_params["interaction_id"]
    principal = getattr(request.state, "principal", None)
    if action != "monitor" and principal is not None and not principal.has(Role.SUPERVISOR):
        call = channel.calls.get(interaction_id)
        agent = call.agent.who if call is not None and call.agent is not None else None
        if agent != principal.id:  # an agent holds only their own calls
            return JSONResponse({"error": f'"{interaction_id}" is not your call'}, 403)
    try:
        if action == "hold":
            await channel.hold(interaction_id)
        elif action == "unhold":
            await channel.unhold(interaction_id)
        else:
            assert body is not None
            result = await channel.monitor(interaction_id, body.mode, body.supervisor)
            return JSONResponse(result)
    except (CallError, RouterError) as exc:
        return JSONResponse({"error": str(exc)}, 409)
    except AriError as exc:
        return JSONResponse({"error": str(exc)}, 502)
    return Response(status_code=204)


_RECORDING = re.compile(r"^(omni|voicemail)-(voice-[A-Za-z0-9._-]+)\.wav$")


async def _recording(request: Request) -> Response:
    """A call's recording or a voicemail, for supervisors (QA) and for the agent who has
    the interaction it belongs to."""
    channel = _channel(request)
    found = _RECORDING.match(request.path_params["file"])
    if channel is None or found is None:
        return JSONResponse({"error": "no such recording"}, 404)
    kind, interaction_id = found.groups()
    owner = f"{interaction_id}-voicemail" if kind == "voicemail" else interaction_id
    principal = request.state.principal
    app = request.scope["app"].state.omniroute
    if not principal.has(Role.SUPERVISOR) and readable(app, principal, owner) is None:
        return JSONResponse({"error": "no such recording"}, 404)
    folder = channel.settings.recordings_dir
    if folder is None:
        return JSONResponse(
            {"error": "recordings stay on the Asterisk host: set plugins.asterisk.recordings_dir"},
            404,
        )
    path = Path(folder) / found.group(0)
    if not path.is_file():
        return JSONResponse({"error": "no such recording"}, 404)
    return FileResponse(path, media_type="audio/wav")


async def _hold(request: Request) -> Response:
    return await _control(request, "hold")


async def _unhold(request: Request) -> Response:
    return await _control(request, "unhold")


async def _monitor(request: Request) -> Response:
    try:
        body = msgspec.json.decode(await request.body(), type=MonitorBody)
    except msgspec.DecodeError as exc:
        return JSONResponse({"error": str(exc)}, 422)
    return await _control(request, "monitor", body)

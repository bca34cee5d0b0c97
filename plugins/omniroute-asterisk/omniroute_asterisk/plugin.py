"""The hook implementations: the `asterisk` channel, its `[plugins.asterisk]` section,
call-control routes for agents (hold, consultative transfer, conference) and supervisors
(listen, whisper, barge), and the recordings' downloads."""

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
    yield from _consult_routes()


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
    if action != "monitor" and (refused := _not_theirs(request, channel)) is not None:
        return refused
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


def _not_theirs(request: Request, channel: VoiceChannel) -> Response | None:
    """A 403 unless the caller is a supervisor or the agent on the call: an agent
    controls only their own calls."""
    interaction_id = request.path_params["interaction_id"]
    principal = getattr(request.state, "principal", None)
    if principal is None or principal.has(Role.SUPERVISOR):
        return None
    call = channel.calls.get(interaction_id)
    agent = call.agent.who if call is not None and call.agent is not None else None
    if agent != principal.id:
        return JSONResponse({"error": f'"{interaction_id}" is not your call'}, 403)
    return None


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


# ---------------------------------------------------------------- consult and conference


class ConsultBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Whom to consult: a colleague by agent id, or who the router picks for a queue."""

    agent: str | None = None
    queue: str | None = None


class ConferenceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who joins: a colleague's phone (agent id) or an outside number."""

    agent: str | None = None
    number: str | None = None


class DropBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The conference party to let go: the channel `conference` answered with."""

    channel: str


def _consult_routes() -> Iterator[RouteSpec]:
    base = "/voice/calls/{interaction_id}"
    yield RouteSpec(path=f"{base}/consult", endpoint=_consult, methods=("GET", "POST"))
    yield RouteSpec(path=f"{base}/consult/complete", endpoint=_consult_end, methods=("POST",))
    yield RouteSpec(path=f"{base}/consult/cancel", endpoint=_consult_end, methods=("POST",))
    yield RouteSpec(path=f"{base}/conference", endpoint=_conference, methods=("POST",))
    yield RouteSpec(path=f"{base}/conference/drop", endpoint=_conference, methods=("POST",))


async def _call_control(request: Request, body_type: type[Any] | None, run: Any) -> Response:
    """Decode the body, check who asks, run the call control, map its errors."""
    channel = _channel(request)
    if channel is None:
        return JSONResponse({"error": "voice is not enabled ([plugins.asterisk])"}, 503)
    body = None
    if body_type is not None:
        try:
            body = msgspec.json.decode(await request.body() or b"{}", type=body_type)
        except msgspec.DecodeError as exc:
            return JSONResponse({"error": str(exc)}, 422)
    if (refused := _not_theirs(request, channel)) is not None:
        return refused
    try:
        result = await run(channel, request.path_params["interaction_id"], body)
    except (CallError, RouterError) as exc:
        return JSONResponse({"error": str(exc)}, 409)
    except AriError as exc:
        return JSONResponse({"error": str(exc)}, 502)
    return Response(status_code=204) if result is None else JSONResponse(result)


async def _consult(request: Request) -> Response:
    """POST starts a consultation (the caller is held); GET says where it stands."""
    if request.method == "GET":

        async def status(channel: VoiceChannel, ix: str, _: None) -> dict[str, str]:
            found = channel.consults.status.get(ix)
            if found is None:
                raise CallError(f'"{ix}" has had no consultation')
            return found

        return await _call_control(request, None, status)

    async def start(channel: VoiceChannel, ix: str, body: ConsultBody) -> dict[str, str]:
        return await channel.consults.consult(ix, agent=body.agent, queue=body.queue)

    return await _call_control(request, ConsultBody, start)


async def _consult_end(request: Request) -> Response:
    complete = request.url.path.endswith("/complete")

    async def end(channel: VoiceChannel, ix: str, _: None) -> dict[str, str] | None:
        if complete:
            return await channel.consults.complete(ix)
        await channel.consults.cancel(ix)
        return None

    return await _call_control(request, None, end)


async def _conference(request: Request) -> Response:
    if request.url.path.endswith("/drop"):

        async def drop(channel: VoiceChannel, ix: str, body: DropBody) -> None:
            await channel.consults.drop(ix, body.channel)

        return await _call_control(request, DropBody, drop)

    async def add(channel: VoiceChannel, ix: str, body: ConferenceBody) -> dict[str, str]:
        return await channel.consults.conference(ix, agent=body.agent, number=body.number)

    return await _call_control(request, ConferenceBody, add)

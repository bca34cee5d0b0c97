"""The hook implementations: the `asterisk` channel, its `[plugins.asterisk]` section,
call-control routes for agents (hold, consultative transfer, conference) and supervisors
(listen, whisper, barge) with the buttons the inbox and wallboard show for them, and
the recordings' downloads.

Call control acts on the live calls of the channel, which runs on the routing leader
only: each route asks for a channel action (`app.channel_call`), which any node relays
to the leader (docs/plugins.md, "Channel actions")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from omniroute import hookimpl
from omniroute.actions import ActionError
from omniroute.specs import ChannelSpec, ConfigSpec, ControlField, ControlSpec, RouteSpec
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
        # Call control, run on the leader's channel whichever node took the request.
        actions={
            "hold": hold_call,
            "unhold": unhold_call,
            "monitor": monitor_call,
            "consult": consult_call,
            "consult_status": consult_status,
            "consult_complete": consult_complete,
            "consult_cancel": consult_cancel,
            "conference": conference_call,
            "conference_drop": conference_drop,
            "in_effect": call_in_effect,
        },
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


@hookimpl
def omniroute_controls() -> Iterator[ControlSpec]:
    """The routes above as buttons: agents' in the inbox, supervisors' on the wallboard."""
    call = "/voice/calls/{interaction_id}"

    def inbox(name: str, label: str, path: str, *fields: ControlField, **kw: Any) -> ControlSpec:
        return ControlSpec(
            channel="voice", adapter="asterisk", name=name, page="inbox", label=label,
            path=f"{call}/{path}", fields=fields, **kw,
        )  # fmt: skip

    def optional(name: str, kind: Any, label: str) -> ControlField:
        return ControlField(name=name, kind=kind, label=label, required=False)

    yield inbox("hold", "Hold", "hold", done="On hold: the caller hears music")
    yield inbox("unhold", "Resume", "unhold", done="Back with the caller")
    colleague = optional("agent", "agent", "agent")
    # What Consult and Conference started that still goes on, asked when the inbox opens
    # the call (a reload, another tab): Complete, Cancel and Drop show again.
    status = f"{call}/controls"
    yield inbox("consult", "Consult", "consult", colleague, optional("queue", "queue", "or queue"),
                done="The caller is on hold; ringing your colleague", status=status)  # fmt: skip
    yield inbox("consult_complete", "Complete transfer", "consult/complete", after="consult",
                done="Transferred to your colleague")  # fmt: skip
    yield inbox("consult_cancel", "Cancel consult", "consult/cancel", after="consult",
                done="Back with the caller")  # fmt: skip
    number = optional("number", "number", "or number")
    yield inbox("conference", "Conference", "conference", colleague, number,
                done="Calling the third party", status=status)  # fmt: skip
    yield inbox("conference_drop", "Drop third party", "conference/drop",
                ControlField(name="channel", kind="answer", source="conference"),
                after="conference", done="The third party left the call")  # fmt: skip
    supervisor = ControlField(name="supervisor", kind="me")
    for mode, label, done in (
        ("listen", "Listen", "Your phone rings: you will hear the call"),
        ("whisper", "Whisper", "Your phone rings: only the agent will hear you"),
        ("barge", "Barge", "Your phone rings: you join the call"),
    ):
        yield ControlSpec(
            channel="voice", adapter="asterisk", name=mode, page="wallboard", label=label,
            path=f"{call}/monitor", role="supervisor", fields=(supervisor,),
            fixed={"mode": mode}, done=done,
        )  # fmt: skip


class MonitorBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who listens, and how: "listen" (silent), "whisper" (to the agent), "barge"."""

    supervisor: str
    mode: Literal["listen", "whisper", "barge"] = "listen"


def _channel(request: Request) -> VoiceChannel | None:
    channels: dict[str, Any] = request.scope["app"].state.omniroute.channels
    channel = channels.get("asterisk")
    return channel if isinstance(channel, VoiceChannel) else None


async def _control(request: Request, action: str, body: MonitorBody | None = None) -> Response:
    """Run a call-control action on the leader's channel; its refusals (ActionError:
    403, 409, 502) and a leader out of reach (503) are answered by the route's guard."""
    if _channel(request) is None:
        return JSONResponse({"error": "voice is not enabled ([plugins.asterisk])"}, 503)
    payload: dict[str, Any] = {"interaction_id": request.path_params["interaction_id"]}
    principal = getattr(request.state, "principal", None)
    if body is not None:
        payload.update(mode=body.mode, supervisor=body.supervisor)
    elif principal is not None and not principal.has(Role.SUPERVISOR):
        payload["agent"] = principal.id  # an agent holds only their own calls
    answer = await request.scope["app"].state.omniroute.channel_call("asterisk", action, payload)
    return Response(status_code=204) if body is None else JSONResponse(answer)


# Channel actions: run on the node that runs the channel (the leader).


@contextmanager
def _refusals() -> Iterator[None]:
    """A call that cannot be controlled is a conflict (409); Asterisk failing, 502."""
    try:
        yield
    except CallError as exc:
        raise ActionError(str(exc), 409) from None
    except AriError as exc:
        raise ActionError(str(exc), 502) from None


def _check_agent(voice: VoiceChannel, interaction_id: str, agent: str | None) -> None:
    if agent is None:
        return
    call = voice.calls.get(interaction_id)
    if call is None or call.agent is None or call.agent.who != agent:
        raise ActionError(f'"{interaction_id}" is not your call', 403)


async def hold_call(voice: VoiceChannel, *, interaction_id: str, agent: str | None = None) -> None:
    """Hold; `agent`, when given, must be the agent on the call."""
    _check_agent(voice, interaction_id, agent)
    with _refusals():
        await voice.hold(interaction_id)


async def unhold_call(
    voice: VoiceChannel, *, interaction_id: str, agent: str | None = None
) -> None:
    _check_agent(voice, interaction_id, agent)
    with _refusals():
        await voice.unhold(interaction_id)


async def monitor_call(
    voice: VoiceChannel, *, interaction_id: str, supervisor: str, mode: str = "listen"
) -> dict[str, str]:
    """A supervisor listens, whispers or barges; the legs' ids, for the wallboard."""
    with _refusals():
        return await voice.monitor(interaction_id, mode, supervisor)


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
    yield RouteSpec(path=f"{base}/controls", endpoint=_in_effect)


async def _call_control(request: Request, action: str, body_type: type[Any] | None) -> Response:
    """Decode the body into the action's payload, with the interaction and (for an
    agent) who asks, and run the action on the leader's channel: 204, or its answer."""
    if _channel(request) is None:
        return JSONResponse({"error": "voice is not enabled ([plugins.asterisk])"}, 503)
    payload: dict[str, Any] = {}
    if body_type is not None:
        try:
            body = msgspec.json.decode(await request.body() or b"{}", type=body_type)
        except msgspec.DecodeError as exc:
            return JSONResponse({"error": str(exc)}, 422)
        payload = msgspec.structs.asdict(body)
    payload["interaction_id"] = request.path_params["interaction_id"]
    principal = getattr(request.state, "principal", None)
    if principal is not None and not principal.has(Role.SUPERVISOR):
        payload["caller"] = principal.id  # an agent controls only their own calls
    answer = await request.scope["app"].state.omniroute.channel_call("asterisk", action, payload)
    return Response(status_code=204) if answer is None else JSONResponse(answer)


async def _consult(request: Request) -> Response:
    """POST starts a consultation (the caller is held); GET says where it stands."""
    if request.method == "GET":
        return await _call_control(request, "consult_status", None)
    return await _call_control(request, "consult", ConsultBody)


async def _consult_end(request: Request) -> Response:
    complete = request.url.path.endswith("/complete")
    return await _call_control(request, "consult_complete" if complete else "consult_cancel", None)


async def _in_effect(request: Request) -> Response:
    """The controls' status (`ControlSpec.status`): the consultation and conference
    under way, by the name of the control that started them."""
    return await _call_control(request, "in_effect", None)


async def _conference(request: Request) -> Response:
    if request.url.path.endswith("/drop"):
        return await _call_control(request, "conference_drop", DropBody)
    return await _call_control(request, "conference", ConferenceBody)


async def consult_call(
    voice: VoiceChannel,
    *,
    interaction_id: str,
    agent: str | None = None,
    queue: str | None = None,
    caller: str | None = None,
) -> dict[str, str]:
    """Hold the caller and ring a colleague (`agent`) or whom `queue` would get."""
    _check_agent(voice, interaction_id, caller)
    with _refusals():
        return await voice.consults.consult(interaction_id, agent=agent, queue=queue)


async def consult_status(
    voice: VoiceChannel, *, interaction_id: str, caller: str | None = None
) -> dict[str, str]:
    _check_agent(voice, interaction_id, caller)
    found = voice.consults.status.get(interaction_id)
    if found is None:
        raise ActionError(f'"{interaction_id}" has had no consultation', 409)
    return found


async def call_in_effect(
    voice: VoiceChannel, *, interaction_id: str, caller: str | None = None
) -> dict[str, dict[str, str]]:
    """What the call's Consult and Conference started that still goes on (nothing for a
    call no longer live); an agent may ask about their own call only."""
    if interaction_id in voice.calls:
        _check_agent(voice, interaction_id, caller)
    return voice.consults.in_effect(interaction_id)


async def consult_complete(
    voice: VoiceChannel, *, interaction_id: str, caller: str | None = None
) -> dict[str, str]:
    """Hand the caller over to the consulted colleague."""
    _check_agent(voice, interaction_id, caller)
    with _refusals():
        return await voice.consults.complete(interaction_id)


async def consult_cancel(
    voice: VoiceChannel, *, interaction_id: str, caller: str | None = None
) -> None:
    """End the consultation; the caller comes back to the agent."""
    _check_agent(voice, interaction_id, caller)
    with _refusals():
        await voice.consults.cancel(interaction_id)


async def conference_call(
    voice: VoiceChannel,
    *,
    interaction_id: str,
    agent: str | None = None,
    number: str | None = None,
    caller: str | None = None,
) -> dict[str, str]:
    """Add a colleague's phone or an outside number to the call."""
    _check_agent(voice, interaction_id, caller)
    with _refusals():
        return await voice.consults.conference(interaction_id, agent=agent, number=number)


async def conference_drop(
    voice: VoiceChannel, *, interaction_id: str, channel: str, caller: str | None = None
) -> None:
    _check_agent(voice, interaction_id, caller)
    with _refusals():
        await voice.consults.drop(interaction_id, channel)

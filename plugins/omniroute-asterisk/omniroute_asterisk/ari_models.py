"""The ARI events and resources the plugin reads, as msgspec Structs.

Only the fields omniroute uses are declared (msgspec skips the rest), so a newer Asterisk
that adds fields decodes unchanged. Events are a tagged union on ARI's own `type`.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AriEvent",
    "Bridge",
    "CallerId",
    "Channel",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelHangupRequest",
    "ChannelLeftBridge",
    "ChannelStateChange",
    "Dialplan",
    "LiveRecording",
    "Playback",
    "PlaybackFinished",
    "RecordingFailed",
    "RecordingFinished",
    "RestResponse",
    "StasisEnd",
    "StasisStart",
    "decode_event",
]


class CallerId(msgspec.Struct, frozen=True):
    name: str = ""
    number: str = ""


class Dialplan(msgspec.Struct, frozen=True):
    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(msgspec.Struct, frozen=True):
    """A channel as ARI describes it; `state` is Down, Ring, Ringing, Up, Busy..."""

    id: str
    name: str = ""
    state: str = ""
    caller: CallerId = CallerId()
    dialplan: Dialplan | None = None


class Bridge(msgspec.Struct, frozen=True):
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    name: str = ""
    channels: list[str] = []


class Playback(msgspec.Struct, frozen=True):
    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""


class LiveRecording(msgspec.Struct, frozen=True):
    name: str
    format: str = ""
    state: str = ""
    target_uri: str = ""
    duration: int | None = None
    cause: str | None = None


class AriEvent(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    """Base of the events; `application` is the Stasis app it was sent to."""

    application: str = ""
    timestamp: str = ""


class StasisStart(AriEvent, tag=True):
    """A channel entered the app: from the dialplan (`Stasis(app,args)`) or an originate."""

    channel: Channel
    args: list[str] = []
    replace_channel: Channel | None = None


class StasisEnd(AriEvent, tag=True):
    channel: Channel


class ChannelStateChange(AriEvent, tag=True):
    channel: Channel


class ChannelDtmfReceived(AriEvent, tag=True):
    channel: Channel
    digit: str
    duration_ms: int = 0


class ChannelHangupRequest(AriEvent, tag=True):
    channel: Channel
    cause: int = 0
    soft: bool = False


class ChannelDestroyed(AriEvent, tag=True):
    """The channel is gone; `cause` is the Q.850 cause (16 normal, 17 busy, 19 no answer,
    21 rejected)."""

    channel: Channel
    cause: int = 0
    cause_txt: str = ""


class ChannelEnteredBridge(AriEvent, tag=True):
    bridge: Bridge
    channel: Channel | None = None


class ChannelLeftBridge(AriEvent, tag=True):
    bridge: Bridge
    channel: Channel | None = None


class PlaybackFinished(AriEvent, tag=True):
    playback: Playback


class RecordingFinished(AriEvent, tag=True):
    recording: LiveRecording


class RecordingFailed(AriEvent, tag=True):
    recording: LiveRecording


class RestResponse(AriEvent, tag="RESTResponse"):
    """The answer to a request sent over the WebSocket (ARI REST over WebSocket)."""

    request_id: str = ""
    status_code: int = 0
    reason_phrase: str = ""
    uri: str = ""
    content_type: str = ""
    message_body: str = ""


AnyAriEvent = (
    StasisStart
    | StasisEnd
    | ChannelStateChange
    | ChannelDtmfReceived
    | ChannelHangupRequest
    | ChannelDestroyed
    | ChannelEnteredBridge
    | ChannelLeftBridge
    | PlaybackFinished
    | RecordingFinished
    | RecordingFailed
    | RestResponse
)

_decoder = msgspec.json.Decoder(AnyAriEvent)


class _Typed(msgspec.Struct):
    type: str = ""


_peek = msgspec.json.Decoder(_Typed)
_KNOWN = frozenset(
    getattr(cls, "__struct_config__").tag  # noqa: B009
    for cls in AnyAriEvent.__args__  # type: ignore[attr-defined]
)


def decode_event(data: bytes | str) -> AriEvent | None:
    """The event a WebSocket message holds, or None for an event type omniroute ignores.

    Raises msgspec.ValidationError when a known event lacks what omniroute needs.
    """
    if _peek.decode(data).type not in _KNOWN:
        return None
    return _decoder.decode(data)

"""`[plugins.asterisk]`: where Asterisk's ARI is, which phone rings for which agent, what
each dialled number does, and which queues are recorded."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["AsteriskSettings", "MenuOption", "Number", "Outbound"]

Digit = Annotated[str, msgspec.Meta(pattern=r"^[0-9*#]$")]
Skills = dict[str, Annotated[int, msgspec.Meta(ge=1, le=5)]]


class MenuOption(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """What one key of an IVR menu does: the queue, and skills the call then requires."""

    queue: str
    skills: Skills = {}


class Number(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One dialled number (the extension the dialplan sent to Stasis).

    Without `menu` the call goes straight to `queue`; with one, the caller hears `prompt`
    and presses a key; no valid key within `menu_timeout` seconds goes to `queue`.
    """

    queue: str
    skills: Skills = {}
    prompt: str = "sound:demo-congrats"
    menu: dict[Digit, MenuOption] = {}
    menu_timeout: Annotated[float, msgspec.Meta(gt=0)] = 8.0


class Outbound(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """`[plugins.asterisk.outbound]`: how an agent's click-to-call reaches the customer.

    The agent's phone rings first; once they answer, `dial` (with "{number}" replaced by
    the customer's number) is called, and answered, the two are bridged."""

    #: The endpoint that reaches a customer's number, through a trunk: "PJSIP/{number}@trunk".
    dial: str = "PJSIP/{number}@trunk"
    #: Caller ID the customer sees; empty: the plugin's `caller_id`.
    caller_id: str = ""
    #: Numbers that may be dialled (a regular expression the whole number matches), so
    #: that nothing but a number reaches the dial string.
    numbers: str = r"\+?[0-9]{2,20}"
    #: Seconds the agent's own phone rings before the call is given up.
    agent_ring: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    #: Seconds the customer's phone rings before the call ends as "no-answer".
    customer_ring: Annotated[float, msgspec.Meta(gt=0)] = 45.0


class AsteriskSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    #: ARI's base URL, as in ari.conf/http.conf: "http://127.0.0.1:8088/ari".
    url: str
    #: An ARI user of ari.conf.
    user: str
    #: Name of the environment variable holding that user's password (never the password).
    password_env: str
    #: The Stasis application the dialplan sends calls to: `Stasis(omniroute)`.
    app: str = "omniroute"
    #: Agent id -> the SIP endpoint that rings for them ("PJSIP/ana").
    agents: dict[str, str] = {}
    #: Supervisor name -> the endpoint that rings when they listen, whisper or barge in.
    supervisors: dict[str, str] = {}
    #: Dialled number -> queue, skills and optional IVR menu. "default" catches the rest.
    numbers: dict[str, Number] = {}
    #: Queues whose calls are recorded (the recording is listed with the interaction).
    record_queues: list[str] = []
    #: Where Asterisk's recordings can be read from this host (its
    #: /var/spool/asterisk/recording, or a mount of it), for `/voice/recordings/...`.
    recordings_dir: str | None = None
    #: Seconds between announcements of the caller's place in line; 0 turns them off.
    announce_every: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    #: Music on hold class (musiconhold.conf) callers hear while they wait or are held.
    moh_class: str = "default"
    #: How to call a customer back: "{number}" is replaced by their caller ID.
    callback_endpoint: str = "PJSIP/{number}@trunk"
    #: Caller ID shown on calls omniroute places (callbacks, agents' phones).
    caller_id: str = "omniroute"
    #: The key a waiting caller presses to accept a callback when one is offered.
    callback_digit: Digit = "1"
    #: Sounds (ARI media URIs) for the prompts omniroute plays. Announcements: to the
    #: caller next in line, and to the others ("{ahead}": callers ahead of them,
    #: "{place}": their place in line).
    announce_next: tuple[str, ...] = ("sound:queue-youarenext",)
    announce_place: tuple[str, ...] = (
        "sound:queue-thereare",
        "number:{ahead}",
        "sound:queue-callswaiting",
    )
    #: Said after the place in line when there is an honest estimate of the wait
    #: (omniroute.wait): "{minutes}" is it in whole minutes, rounded up; under a minute
    #: `announce_wait_short` is said instead. Empty turns the expected wait off.
    announce_wait: tuple[str, ...] = (
        "sound:queue-holdtime",
        "number:{minutes}",
        "sound:queue-minutes",
    )
    announce_wait_short: tuple[str, ...] = (
        "sound:queue-holdtime",
        "sound:queue-less-than",
        "number:1",
        "sound:queue-minute",
    )
    #: Seconds a consultation's or a conference's third party's phone rings.
    consult_ring: Annotated[int, msgspec.Meta(gt=0)] = 20
    #: When the agent hangs up in a conference: "end" hangs up everyone (the call is
    #: over), "stay" lets the customer and the third party talk on (the agent's
    #: interaction completes at once either way; the customer leaving always ends it).
    conference_agent_hangup: Literal["end", "stay"] = "end"
    callback_prompt: tuple[str, ...] = (
        "sound:queue-periodic-announce",
        "sound:vm-press",
        "digits:1",
    )
    voicemail_prompt: tuple[str, ...] = ("sound:vm-intro",)
    #: Longest voicemail, in seconds.
    voicemail_max: Annotated[int, msgspec.Meta(gt=0)] = 120
    #: Outbound calls agents start from the inbox.
    outbound: Outbound = Outbound()

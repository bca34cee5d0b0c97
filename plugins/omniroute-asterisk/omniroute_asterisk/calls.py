"""What the plugin knows of each call: its legs in Asterisk and where it stands.

Everything here can be rebuilt from Asterisk and the router after a restart: channel ids
are derived from interaction and offer ids, so a channel still in Stasis says whose it is.
"""

from __future__ import annotations

import enum

import anyio

from omniroute.model import Customer

__all__ = [
    "Call",
    "CallError",
    "CallState",
    "Leg",
    "LegRole",
    "agent_channel_id",
    "interaction_id_of",
    "offer_of_channel",
]

AGENT_PREFIX = "omni-offer-"
CALLBACK_PREFIX = "omni-callback-"
CONSULT_PREFIX = "omni-consult-"  # a consultation's leg, to the colleague consulted
GUEST_PREFIX = "omni-guest-"  # a conference's third party
INTERACTION_PREFIX = "voice-"


class CallError(Exception):
    """A call-control request that cannot be done (no such call, not in that state)."""


class CallState(enum.StrEnum):
    IVR = "ivr"  # answered, choosing from the menu
    WAITING = "waiting"  # queued, hearing music on hold (agents may be ringing)
    CALLBACK = "callback"  # the customer hung up and keeps their place: we call back
    DIALLING = "dialling"  # calling the customer back, an agent waiting on the line
    TALKING = "talking"  # caller and agent bridged
    HELD = "held"  # the agent put the caller on hold
    UNATTENDED = "unattended"  # the agent left a conference; the others talk on
    CONSULTING = "consulting"  # caller on hold, the agent calling a colleague (consult.py)
    VOICEMAIL = "voicemail"  # recording a message
    ENDED = "ended"


class LegRole(enum.StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    CUSTOMER = "customer"  # the callback leg
    SNOOP = "snoop"
    SUPERVISOR = "supervisor"
    DIALER = "dialer"  # an agent's phone ringing for their outbound call (outbound.py)
    CALLED = "called"  # the customer's phone an outbound call rings
    CONSULT = "consult"  # the colleague a consultation rings
    GUEST = "guest"  # a conference's third party


class Leg:
    """One channel of a call."""

    __slots__ = ("answered", "call", "channel_id", "hung_up", "offer_id", "role", "who")

    def __init__(
        self,
        call: Call,
        channel_id: str,
        role: LegRole,
        who: str | None = None,
        offer_id: str | None = None,
    ) -> None:
        self.call = call
        self.channel_id = channel_id
        self.role = role
        self.who = who  # agent or supervisor id
        self.offer_id = offer_id
        self.answered = False
        self.hung_up = False  # by omniroute: its end means nothing more


class Call:
    """One interaction's call: the caller's channel, ringing and answered agents, bridge."""

    __slots__ = (
        "agent",
        "bridge",
        "callback_offered",
        "caller",
        "consult",
        "customer",
        "guests",
        "interaction_id",
        "lock",
        "monitors",
        "number",
        "offers",
        "outcome",
        "playing",
        "queue",
        "recording",
        "skills",
        "state",
    )

    def __init__(self, interaction_id: str, caller: Leg | None, number: str, queue: str) -> None:
        self.interaction_id = interaction_id
        self.caller = caller
        self.number = number
        self.queue = queue
        self.state = CallState.IVR
        self.offers: dict[str, Leg] = {}  # offer id -> ringing agent leg
        self.agent: Leg | None = None  # the answered agent leg
        self.bridge: str | None = None
        self.recording: str | None = None
        self.callback_offered = False
        self.playing: str | None = None  # id of an announcement being played
        self.monitors: list[str] = []  # supervisor bridges to tear down with the call
        self.consult: Leg | None = None  # the colleague's leg of a consultation
        self.guests: list[Leg] = []  # third parties of a conference
        self.customer: Customer | None = None
        #: Held while the legs are rearranged (bridging, hold, transfer, hang-up), so
        #: that a transfer clicked as the bridge is built waits for it to be built.
        self.lock = anyio.Lock()
        self.skills: dict[str, int] = {}
        #: How the call ended, for `Completed.outcome` ("answered", "no-answer"...).
        self.outcome: str | None = None


def interaction_id_of(caller_channel_id: str) -> str:
    return f"{INTERACTION_PREFIX}{caller_channel_id}"


def agent_channel_id(offer_id: str, interaction_id: str) -> str:
    return f"{AGENT_PREFIX}{offer_id}-{interaction_id}"


def offer_of_channel(channel_id: str) -> tuple[str, str] | None:
    """(offer id, interaction id) of an agent leg's channel id, or None."""
    if not channel_id.startswith(AGENT_PREFIX):
        return None
    offer, _, interaction = channel_id[len(AGENT_PREFIX) :].partition("-")
    return (offer, interaction) if interaction else None

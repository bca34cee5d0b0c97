"""The nouns of a contact center, as msgspec Structs.

Everything here is plain data: it is encoded to JSON for the API and the event
log, and decoded from the TOML config. Behaviour lives in the router. Structs that are
created per contact hold no reference cycles and are kept out of the garbage
collector's sight (`gc=False`), which matters with 50,000 contacts waiting.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

#: A proficiency level: 1 (novice) to 5 (expert).
Level = Annotated[int, msgspec.Meta(ge=1, le=5, description="skill level, 1 to 5")]

#: Channels shipped with omniroute. Plugins may add others: a channel is just a name.
VOICE, WEBCHAT, EMAIL, TELEGRAM = "voice", "webchat", "email", "telegram"
KNOWN_CHANNELS = (VOICE, WEBCHAT, EMAIL, TELEGRAM)
#: What an agent can hold at once when their config says nothing.
DEFAULT_CAPACITY = {VOICE: 1, WEBCHAT: 3, EMAIL: 5, TELEGRAM: 3}


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InteractionState(enum.StrEnum):
    """Where an interaction is in its life. Terminal states: completed, abandoned, closed."""

    WAITING = "waiting"  # in a queue, no agent yet
    OFFERED = "offered"  # ringing / shown to one or more agents
    ASSIGNED = "assigned"  # an agent is working on it
    WRAP_UP = "wrap_up"  # the contact is over, the agent is finishing after-contact work
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # the customer left before an agent answered
    CLOSED = "closed"  # ended by the system (after hours, max wait) with a message


TERMINAL_STATES = frozenset(
    {InteractionState.COMPLETED, InteractionState.ABANDONED, InteractionState.CLOSED}
)


class Presence(enum.StrEnum):
    """What an agent has chosen. Busy and wrap-up are derived from their work, not chosen."""

    OFFLINE = "offline"
    READY = "ready"
    NOT_READY = "not_ready"


class Identity(msgspec.Struct, frozen=True, gc=False):
    """One address of a customer on one channel: a phone number, an email address, a chat id."""

    channel: str
    address: str


class Customer(msgspec.Struct, kw_only=True, gc=False):
    """One person across channels. Contacts from any of their identities share one history."""

    id: str
    name: str | None = None
    identities: list[Identity] = []
    attributes: dict[str, Any] = {}


class Message(msgspec.Struct, kw_only=True, gc=False):
    """One message of a conversation, in either direction."""

    id: str
    interaction_id: str
    sender: str  # "customer", "agent:<id>" or "system"
    text: str = ""
    at: float = 0.0
    attachments: list[str] = []  # links to files (a channel's download route), or names
    attributes: dict[str, Any] = {}


class Interaction(msgspec.Struct, kw_only=True, gc=False):
    """One contact on any channel, from arrival to completion.

    Inbound contacts wait in `queue` for an agent. Outbound ones (`direction`
    "outbound", started by an agent: `Router.start_outbound`) never wait: they belong
    to the agent who started them from the first moment, and `queue` only lends them
    its wrap-up time, recording rules and reports.

    `skills` adds to the queue's own requirements (an IVR may require `french = 2`).
    `attributes` is free space for channel and CRM plugins; the router never reads it.
    """

    id: str
    channel: str
    queue: str
    direction: Direction = Direction.INBOUND
    customer: Customer | None = None
    skills: dict[str, Level] = {}
    priority: int = 0
    preferred_agent: str | None = None
    subject: str | None = None
    attributes: dict[str, Any] = {}
    # Maintained by the router:
    state: InteractionState = InteractionState.WAITING
    created_at: float = 0.0
    enqueued_at: float = 0.0
    answered_at: float | None = None
    first_response_at: float | None = None  # an agent's (or supervisor's) first message
    ended_at: float | None = None
    agent: str | None = None
    callback: str | None = None  # the number to call back, once the customer chose a callback
    #: Outbound: the customer's address the agent contacts (a phone number, an email).
    address: str | None = None
    #: How the contact ended, as its channel says ("answered", "no-answer", "busy",
    #: "failed" for an outbound call); None when nobody said.
    outcome: str | None = None


class Offer(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An interaction proposed to one agent until `expires_at`."""

    id: str
    interaction_id: str
    agent_id: str
    at: float
    expires_at: float


class Candidate(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One agent a routing decision considered, with the strategy's key for it (lower wins)."""

    agent_id: str
    key: Any


class Explanation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Why a routing decision went the way it did: kept with the Offered event.

    `candidates` holds the best agent of every matching group of agents (agents with
    identical skills form a group), ordered as the strategy ranked them: the first one won.
    """

    strategy: str
    requirement: dict[str, int]
    candidates: list[Candidate] = []
    excluded: list[str] = []  # agents passed over because they declined or missed this one
    trigger: str = ""  # "arrival", "agent-free", "escalation", "transfer", "supervisor" ...
    note: str = ""


# ---------------------------------------------------------------- configuration nouns
# Queues and agents are what a business writes in its TOML file, so these Structs are
# the config contract too: `forbid_unknown_fields` turns a misspelt key into an error.

Seconds = Annotated[float, msgspec.Meta(ge=0, description="seconds")]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, description="seconds")]


class SlaMeasure(enum.StrEnum):
    """What stops a contact's SLA clock."""

    ANSWER = "answer"  # an agent accepts it (calls, chats)
    FIRST_RESPONSE = "first_response"  # an agent's first message to the customer (email)


class Sla(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A service level: `target` share of contacts answered within `seconds` (80/20).

    `measure = "first_response"` counts a contact as answered when an agent first writes
    to the customer rather than when one accepts it: the usual target for email, where
    accepting a message tells the customer nothing.
    """

    target: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    seconds: Annotated[int, msgspec.Meta(gt=0)] = 20
    measure: SlaMeasure = SlaMeasure.ANSWER


class ActionKind(enum.StrEnum):
    KEEP = "keep"  # keep waiting
    OVERFLOW = "overflow"  # also offer to the agents of another queue
    CALLBACK = "callback"  # offer the customer a call back at their place in line
    CLOSE = "close"  # end the interaction with a message
    VOICEMAIL = "voicemail"  # voice: record a message (the channel plugin handles it)


class Action(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What to do with a waiting interaction when a queue is closed or `max_wait` passes."""

    action: ActionKind = ActionKind.KEEP
    queue: str | None = None  # for overflow
    message: str | None = None  # for close: told to the customer by the channel


class EscalationStep(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One rung of a queue's escalation ladder, applied once `after` seconds were waited.

    A step may do several things at once; it must do at least one.
    """

    after: PositiveSeconds
    relax: Annotated[int, msgspec.Meta(ge=1, le=4)] | None = None
    fallback: dict[str, Level] | None = None  # an alternative skill set that also qualifies
    priority: int | None = None  # raise the priority to at least this
    overflow: str | None = None  # also offer to the agents of this queue
    callback: bool = False  # offer the customer a callback (the channel asks them)
    notify: bool = False  # alert supervisors: the SLA is at risk


class Hours(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Opening hours of a queue. Outside them the SLA clock pauses and `closed` applies.

    `weekly` maps mon..sun to ranges such as "09:00-17:30"; a day absent is closed.
    """

    timezone: str = "UTC"
    weekly: dict[str, list[str]] = {}
    holidays: list[str] = []  # ISO dates, closed all day
    closed: Action = Action()


class Queue(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A queue: the skills it requires, how it picks agents, and the service level it owes."""

    name: str
    channels: list[str] | None = None  # None: every channel
    skills: dict[str, Level] = {}
    strategy: str = "longest-idle"
    priority: int = 0
    aging: Seconds = 60.0  # waiting this long is worth one priority level; 0 turns aging off
    sla: Sla = Sla()
    offer_timeout: PositiveSeconds = 15.0
    wrap_up: Seconds = 10.0
    max_wait: PositiveSeconds | None = None
    on_max_wait: Action = Action(action=ActionKind.CLOSE)
    preferred_agent_wait: Seconds = 0.0  # try the preferred (last) agent this long first
    escalation: list[EscalationStep] = []
    hours: Hours | None = None
    script: str | None = None  # shown to agents beside the conversation
    canned: list[str] = []  # canned answers for the agents of this queue


class Agent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A person who answers contacts: their skills and how much they can hold at once.

    `capacity` is per channel (voice 1, webchat 3, email 5); a channel absent is one the
    agent does not take. Work on an `exclusive` channel (voice by default) blocks all
    other work, and other work blocks it.
    """

    id: str
    name: str | None = None
    skills: dict[str, Level] = {}
    capacity: dict[str, Annotated[int, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_CAPACITY)
    )
    exclusive: list[str] = msgspec.field(default_factory=lambda: [VOICE])
    queues: list[str] | None = None  # None: every queue their skills match
    team: str | None = None
    attributes: dict[str, Any] = {}


class Routing(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Settings of the router as a whole (`[routing]`)."""

    queue_selection: str = "priority-sla-wait"
    max_missed_offers: Annotated[int, msgspec.Meta(ge=1)] = 3  # then the agent is not ready
    missed_offers_reason: str = "missed offers"
    seed: int = 0  # for the `random` strategy, so a run can be repeated

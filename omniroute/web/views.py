"""What the API sends and receives: msgspec Structs, so the OpenAPI document is derived
from the same types that encode and validate the traffic."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ..conversations import Contact
from ..model import Agent, Customer, Interaction, Message, Presence
from .settings import Role

__all__ = [
    "AgentView",
    "AssignBody",
    "ConversationView",
    "ErrorBody",
    "LinkBody",
    "LoginBody",
    "MessageBody",
    "OfferView",
    "OutboundBody",
    "PresenceBody",
    "QueueView",
    "SessionView",
    "TransferBody",
    "Wallboard",
]

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every refusal: `error` says what is wrong; `where` names the field, if one is."""

    error: str
    where: str | None = None


class LoginBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    user: Id
    password: Annotated[str, msgspec.Meta(max_length=1000)]


class SessionView(msgspec.Struct, kw_only=True):
    """Who is logged in; `token` only in the answer to a login."""

    user: str
    role: Role
    name: str | None = None
    token: str | None = None
    expires_in: float | None = None


class PresenceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    presence: Presence
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class TransferBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Exactly one of `to_agent` and `to_queue`."""

    to_agent: Id | None = None
    to_queue: Id | None = None


class AssignBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent: Id


class OutboundBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Start a contact to a customer: at `address` on `channel` ("voice": a phone
    number), or at the customer's own address on that channel when only `customer` is
    given. `agent` is whose contact it is (the caller's own by default; supervisors may
    name another agent); `queue` defaults to the agent's first queue taking the channel."""

    channel: Annotated[str, msgspec.Meta(min_length=1, max_length=50)] = "voice"
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    customer: Id | None = None
    agent: Id | None = None
    queue: Id | None = None
    subject: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class OfferView(msgspec.Struct, kw_only=True):
    id: str
    expires_at: float
    interaction: Interaction


class AgentView(msgspec.Struct, kw_only=True):
    """An agent as the inbox and the wallboard show them."""

    id: str
    name: str | None
    presence: Presence
    reason: str | None
    activity: str  # offline, not_ready, ready, busy
    since: float  # when the presence last changed
    load: dict[str, int]
    capacity: dict[str, int]
    offers: list[OfferView]
    work: list[Interaction]


class QueueView(msgspec.Struct, kw_only=True):
    """One queue on the wallboard: what waits now and today's figures."""

    name: str
    waiting: int
    longest_wait: float
    kpis: dict[str, Any]


class Wallboard(msgspec.Struct, kw_only=True):
    at: float
    queues: list[QueueView]
    agents: list[AgentView]
    agents_by_activity: dict[str, int]


class MessageBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Annotated[str, msgspec.Meta(max_length=20_000)]
    #: Files to send, as the URLs a channel's upload route answered (a channel that
    #: takes files from agents says where to upload them; Telegram does).
    attachments: Annotated[list[Url], msgspec.Meta(max_length=10)] = []


class LinkBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An address of the same person on a channel: "this Telegram user is the customer
    with email x" is `{"channel": "email", "address": "x@example.com"}`."""

    channel: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ConversationView(msgspec.Struct, kw_only=True):
    """All an agent needs beside a conversation: its messages, the customer's earlier
    contacts, and the queue's script and canned answers."""

    interaction: Interaction
    messages: list[Message]
    history: list[Contact]
    position: int  # place in line while waiting, else 0
    script: str | None
    canned: list[str]
    #: Who the customer is across channels: name, addresses, what a CRM said (screen pop).
    customer: Customer | None = None
    #: True for a few seconds after a restart, while older messages are still read back.
    loading: bool = False


#: Bodies an admin sends to create or replace an agent.
AgentBody = Agent

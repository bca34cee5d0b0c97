"""Typed domain events: every change of state the router makes, as one record.

The event log is the single source of truth. The router's state, live statistics,
KPIs, QA and reports are folds over it, so each event carries what a fold needs and
nothing that can be derived. Events encode to JSON with a `type` tag.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .model import (
    Action,
    Agent,
    Customer,
    EscalationStep,
    Explanation,
    Interaction,
    Message,
    Presence,
    Queue,
)


class Event(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    """Base of every event. `at` is the Clock's time (epoch seconds) when it happened.

    Events hold plain data and never form reference cycles, so they are not tracked by
    the garbage collector (`gc=False`): millions of them cost no collector time.
    """

    at: float


# ------------------------------------------------------------------ interactions


class InteractionQueued(Event, tag="queued"):
    """A new interaction entered `interaction.queue` (a snapshot of it at that moment)."""

    interaction: Interaction


class Offered(Event, tag="offered"):
    """The interaction is proposed to an agent until `expires_at`; capacity is reserved."""

    offer_id: str
    interaction_id: str
    agent_id: str
    expires_at: float
    explanation: Explanation | None = None


class OfferDeclined(Event, tag="declined"):
    offer_id: str
    interaction_id: str
    agent_id: str


class OfferMissed(Event, tag="missed"):
    """The offer timed out without an answer: a missed offer for the agent."""

    offer_id: str
    interaction_id: str
    agent_id: str


class OfferRevoked(Event, tag="revoked"):
    """The system withdrew an offer: another agent won a ring-all, the customer left..."""

    offer_id: str
    interaction_id: str
    agent_id: str
    reason: str


class Assigned(Event, tag="assigned"):
    """An agent accepted: the interaction is theirs. `offer_id` is None when forced."""

    interaction_id: str
    agent_id: str
    offer_id: str | None = None


class OutboundStarted(Event, tag="outbound"):
    """An agent started a contact to a customer (`interaction.address`): it is theirs
    at once, never queued nor offered, and it holds their capacity like assigned work.
    The channel reaches the customer (places the call, sends the first message)."""

    interaction: Interaction
    agent_id: str

    @property
    def interaction_id(self) -> str:
        return self.interaction.id


class Requeued(Event, tag="requeued"):
    """An assigned interaction went back to waiting, at its original place in line."""

    interaction_id: str
    agent_id: str
    reason: str


class Transferred(Event, tag="transferred"):
    """An agent handed the interaction to a colleague (`to_agent`) or a queue (`to_queue`)."""

    interaction_id: str
    from_agent: str | None
    to_agent: str | None = None
    to_queue: str | None = None


class Abandoned(Event, tag="abandoned"):
    """The customer left before or while being offered."""

    interaction_id: str


class Completed(Event, tag="completed"):
    """The contact ended; the agent wraps up until `wrap_up_until`. `outcome` is how it
    ended when the channel or the agent said ("no-answer", "busy"... for outbound calls)."""

    interaction_id: str
    agent_id: str
    wrap_up_until: float
    outcome: str | None = None


class WrapUpEnded(Event, tag="wrap_up_ended"):
    interaction_id: str
    agent_id: str


class Closed(Event, tag="closed"):
    """The system ended a waiting interaction (after hours, max wait); `message` is for
    the customer."""

    interaction_id: str
    reason: str
    message: str | None = None


class CallbackRequested(Event, tag="callback_requested"):
    """The customer chose to be called back at `number`: they keep their place in line."""

    interaction_id: str
    number: str


# ------------------------------------------------------------------ service levels


class EscalationApplied(Event, tag="escalated"):
    """Rung `index` of the queue's escalation ladder applied to a waiting interaction."""

    interaction_id: str
    queue: str
    index: int
    step: EscalationStep


class ActionApplied(Event, tag="action"):
    """A queue's `on_max_wait` or after-hours action applied to a waiting interaction."""

    interaction_id: str
    queue: str
    reason: str  # "max_wait" or "closed"
    action: Action


class CallbackOffered(Event, tag="callback_offered"):
    """The channel should offer the customer a callback (an escalation step asked for it)."""

    interaction_id: str


class SlaAtRisk(Event, tag="sla_at_risk"):
    """An escalation step with `notify` fired: supervisors should look at this one."""

    interaction_id: str
    queue: str
    waited: float


class SlaBreached(Event, tag="sla_breached"):
    """The interaction waited past its queue's SLA threshold without being answered."""

    interaction_id: str
    queue: str


# ------------------------------------------------------------------ agents


class AgentStateChanged(Event, tag="agent_state"):
    """An agent chose a presence (ready, not ready with a reason, offline)."""

    agent_id: str
    presence: Presence
    reason: str | None = None


class AgentConfigured(Event, tag="agent_configured"):
    """An agent was added or changed (skills, capacity...) while running."""

    agent: Agent


class AgentRemoved(Event, tag="agent_removed"):
    agent_id: str


class QueueConfigured(Event, tag="queue_configured"):
    """A queue was added or changed while running (through the admin API). Replayed
    after the config file's queues, so the log's version wins at a restart."""

    queue: Queue


class QueueRemoved(Event, tag="queue_removed"):
    queue: str


class MessageAdded(Event, tag="message"):
    """A message of a conversation, from the customer, an agent or the system.

    Durable before its sender is told "sent": a channel acknowledges a customer's message
    only once this event is in the log. The router ignores it; the inbox shows it.
    """

    message: Message


class Typing(Event, tag="typing"):
    """Someone is typing in a conversation ("customer", "agent:<id>"). Transient: only
    announced to live subscribers (`App.announce`), never stored nor replayed."""

    interaction_id: str
    sender: str


class CustomerLinked(Event, tag="customer_linked"):
    """Addresses (and what a CRM knows of the person) joined to one customer, so that
    contacts from any of them share one history. Two customers already known by these
    addresses merge into `customer_id`. `by` is "crm" for a look-up's answer, or who
    linked them by hand ("agent:ana", "supervisor:sue")."""

    customer_id: str
    customer: Customer
    by: str


class Note(Event, tag="note"):
    """Free-form record from a plugin or an admin action; the router ignores it."""

    kind: str
    data: dict[str, Any] = {}


AnyEvent = (
    InteractionQueued
    | Offered
    | OfferDeclined
    | OfferMissed
    | OfferRevoked
    | Assigned
    | OutboundStarted
    | Requeued
    | Transferred
    | Abandoned
    | Completed
    | WrapUpEnded
    | Closed
    | CallbackRequested
    | CustomerLinked
    | EscalationApplied
    | ActionApplied
    | CallbackOffered
    | SlaAtRisk
    | SlaBreached
    | AgentStateChanged
    | AgentConfigured
    | AgentRemoved
    | QueueConfigured
    | QueueRemoved
    | MessageAdded
    | Note
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    """One event as JSON, with its `type` tag."""
    return _encoder.encode(event)


def decode(data: bytes | str) -> Event:
    """The event a JSON document holds; raises msgspec.ValidationError naming the bad field."""
    return _decoder.decode(data)

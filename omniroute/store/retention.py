"""Retention: what "purge message bodies" removes from an event, for every backend.

Bodies are what customers and agents wrote. In the event log they live in:

* `InteractionQueued.interaction.subject` (an email's subject, a chat's first line),
  and the same fields of `OutboundStarted.interaction` (an agent's outbound contact);
* `InteractionQueued.interaction.attributes` (channel and CRM plugins keep message
  text, headers and transcripts there; the router never reads it);
* `InteractionQueued.interaction.customer.name` and `.attributes` (what a CRM told us);
* `MessageAdded.message`: the text, attachments and attributes of every message of a
  conversation, the customer's and the agent's (ids, sender and time stay);
* `Note.data` of notes whose `kind` is a message kind (`MESSAGE_NOTE_KINDS`).

Everything else stays: ids, queues, channels, skills, priorities, times, agents,
customer ids and identities (first-contact resolution needs them), and every other
event whole, so routing state and every KPI rebuild exactly as before.
"""

from __future__ import annotations

import msgspec

from .. import events as ev

__all__ = ["MESSAGE_NOTE_KINDS", "PURGEABLE_TAGS", "PURGED", "purge_bodies", "purgeable"]

#: Replaces a purged text; purged tables become `{"purged": True}`.
PURGED = "[purged]"
_PURGED_TABLE = {"purged": True}
#: Note kinds that hold a message of a conversation.
MESSAGE_NOTE_KINDS = frozenset({"message"})
#: Event tags `purge_bodies` may change (a store can select candidates by tag).
PURGEABLE_TAGS = ("queued", "outbound", "message", "note")


def purgeable(event: ev.Event) -> bool:
    return isinstance(event, ev.InteractionQueued | ev.OutboundStarted | ev.MessageAdded | ev.Note)


def purge_bodies(event: ev.Event) -> ev.Event | None:
    """The event with its bodies replaced by markers, or None when it holds none."""
    if isinstance(event, ev.MessageAdded):
        m = event.message
        if m.text == PURGED and not m.attachments and not m.attributes:
            return None
        purged = msgspec.structs.replace(m, text=PURGED, attachments=[], attributes={})
        return msgspec.structs.replace(event, message=purged)
    if isinstance(event, ev.Note):
        if event.kind not in MESSAGE_NOTE_KINDS or event.data in ({}, _PURGED_TABLE):
            return None
        return msgspec.structs.replace(event, data=dict(_PURGED_TABLE))
    if not isinstance(event, ev.InteractionQueued | ev.OutboundStarted):
        return None
    ix = event.interaction
    changes: dict[str, object] = {}
    if ix.subject is not None and ix.subject != PURGED:
        changes["subject"] = PURGED
    if ix.attributes and ix.attributes != _PURGED_TABLE:
        changes["attributes"] = dict(_PURGED_TABLE)
    customer = ix.customer
    if customer is not None and (
        (customer.name is not None and customer.name != PURGED)
        or (customer.attributes and customer.attributes != _PURGED_TABLE)
    ):
        changes["customer"] = msgspec.structs.replace(
            customer,
            name=None if customer.name is None else PURGED,
            attributes=dict(_PURGED_TABLE) if customer.attributes else {},
        )
    if not changes:
        return None
    return msgspec.structs.replace(event, interaction=msgspec.structs.replace(ix, **changes))

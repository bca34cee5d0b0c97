"""Conversations and contact history, folded from the event log: what an agent sees
beside an interaction (its messages, the customer's earlier contacts).

The router does not keep messages; this fold does, for live interactions and for the
`keep_ended` most recently ended ones, so memory stays flat however long the process
runs. A customer's history is what is still kept; older contacts remain in the log.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from . import events as ev
from .model import Interaction, InteractionState, Message

__all__ = ["Contact", "Conversations"]


class Contact(msgspec.Struct, kw_only=True):
    """One interaction in a customer's history."""

    id: str
    channel: str
    queue: str
    subject: str | None
    created_at: float
    state: InteractionState
    agent: str | None = None
    ended_at: float | None = None


class Conversations:
    """Messages by interaction, contacts by customer and by address (one customer
    across channels: a contact from an address already seen joins that customer)."""

    def __init__(self, keep_ended: int = 10_000, history_per_customer: int = 50) -> None:
        self.keep_ended = keep_ended
        self.history_per_customer = history_per_customer
        self._messages: dict[str, list[Message]] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()  # oldest first
        self._contacts: dict[str, Contact] = {}
        self._customer_of: dict[str, str] = {}  # interaction id -> customer id
        self._history: dict[str, list[str]] = {}  # customer id -> interaction ids
        self._by_address: dict[tuple[str, str], str] = {}  # (channel, address) -> customer
        self._addresses: dict[str, set[tuple[str, str]]] = {}  # customer -> addresses
        #: True while the fold is still reading the log after a restart (partial).
        self.loading = False

    # -- reading --------------------------------------------------------------------
    def messages(self, interaction_id: str) -> list[Message]:
        return list(self._messages.get(interaction_id, ()))

    def customer_of(self, interaction_id: str) -> str | None:
        return self._customer_of.get(interaction_id)

    def history(self, customer_id: str) -> list[Contact]:
        """The customer's contacts, newest first (as many as are kept)."""
        ids = self._history.get(customer_id, [])
        return [self._contacts[i] for i in reversed(ids) if i in self._contacts]

    def customer_at(self, channel: str, address: str) -> str | None:
        """The customer already known by this address, if any."""
        return self._by_address.get((channel, address))

    # -- folding --------------------------------------------------------------------
    def apply(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, event)

    def _queued(self, e: ev.InteractionQueued) -> None:
        ix = e.interaction
        self._messages.setdefault(ix.id, [])
        self._contacts[ix.id] = _contact(ix)
        customer = self._identify(ix)
        if customer is None:
            return
        self._customer_of[ix.id] = customer
        history = self._history.setdefault(customer, [])
        if ix.id not in history:
            history.append(ix.id)
            for old in history[: -self.history_per_customer]:
                self._contacts.pop(old, None)
            del history[: -self.history_per_customer]

    def _identify(self, ix: Interaction) -> str | None:
        if ix.customer is None:
            return None
        known = [
            self._by_address[(i.channel, i.address)]
            for i in ix.customer.identities
            if (i.channel, i.address) in self._by_address
        ]
        customer = known[0] if known else ix.customer.id
        for identity in ix.customer.identities:
            address = (identity.channel, identity.address)
            if address not in self._by_address:
                self._by_address[address] = customer
                self._addresses.setdefault(customer, set()).add(address)
        return customer

    def _message(self, e: ev.MessageAdded) -> None:
        self._messages.setdefault(e.message.interaction_id, []).append(e.message)

    def _assigned(self, e: ev.Assigned) -> None:
        contact = self._contacts.get(e.interaction_id)
        if contact is not None:
            contact.state = InteractionState.ASSIGNED
            contact.agent = e.agent_id

    def _ended(self, e: Any) -> None:
        contact = self._contacts.get(e.interaction_id)
        if contact is not None:
            contact.state = _END_STATE[type(e)]
            contact.ended_at = e.at
        self._ended[e.interaction_id] = None
        while len(self._ended) > self.keep_ended:
            old, _ = self._ended.popitem(last=False)
            self._forget(old)

    def _forget(self, interaction_id: str) -> None:
        """Drop an ended interaction, and its customer once nothing of theirs is kept."""
        self._messages.pop(interaction_id, None)
        self._contacts.pop(interaction_id, None)
        customer = self._customer_of.pop(interaction_id, None)
        if customer is None:
            return
        history = self._history.get(customer, [])
        if interaction_id in history:
            history.remove(interaction_id)
        if not history:
            self._history.pop(customer, None)
            for address in self._addresses.pop(customer, ()):
                self._by_address.pop(address, None)

    _handlers: dict[type[ev.Event], Any] = {
        ev.InteractionQueued: _queued,
        ev.MessageAdded: _message,
        ev.Assigned: _assigned,
        ev.Completed: _ended,
        ev.Abandoned: _ended,
        ev.Closed: _ended,
    }


_END_STATE: dict[type[ev.Event], InteractionState] = {
    ev.Completed: InteractionState.COMPLETED,
    ev.Abandoned: InteractionState.ABANDONED,
    ev.Closed: InteractionState.CLOSED,
}


def _contact(ix: Interaction) -> Contact:
    return Contact(
        id=ix.id,
        channel=ix.channel,
        queue=ix.queue,
        subject=ix.subject,
        created_at=ix.created_at or ix.enqueued_at,
        state=ix.state,
        agent=ix.agent,
    )

"""Conversations and contact history, folded from the event log: what an agent sees
beside an interaction (its messages, the customer's earlier contacts, what a CRM knows).

One customer across channels: a contact from an address already seen joins that
customer; `CustomerLinked` events (a CRM's answer, or a person saying "this Telegram
user is the customer with email x") join more addresses, merging two customers' histories
when both were known.

The router does not keep messages; this fold does, for live interactions and for the
`keep_ended` most recently ended ones, so memory stays flat however long the process
runs. What it keeps per contact is few containers (a message list only once there is a
message), since every tracked container lengthens the collector's full passes. A
customer's history is what is still kept; older contacts remain in the log.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from . import events as ev
from .model import (
    TERMINAL_STATES,
    Customer,
    Direction,
    Identity,
    Interaction,
    InteractionState,
    Message,
)

__all__ = ["Contact", "Conversations"]


class Contact(msgspec.Struct, kw_only=True, gc=False):
    """One interaction in a customer's history. Plain data that can hold no reference
    cycle, so the garbage collector never scans the ten thousand kept (`gc=False`)."""

    id: str
    channel: str
    queue: str
    subject: str | None
    created_at: float
    state: InteractionState
    agent: str | None = None
    ended_at: float | None = None
    #: Everyone it was assigned to, first to last (a transfer adds one): who handled it.
    #: A tuple of strings, which the garbage collector stops tracking (a list it would not).
    agents: tuple[str, ...] = ()
    direction: Direction = Direction.INBOUND
    #: Outbound: the address the agent contacted.
    address: str | None = None
    #: How it ended, when its channel said ("no-answer", "busy" for an outbound call).
    outcome: str | None = None


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
        self._profiles: dict[str, Customer] = {}  # customer -> name, fields (screen pop)
        self._merged: dict[str, str] = {}  # a customer merged into another -> that one
        #: Customers whose name came from a link (a CRM, a person), which a channel's
        #: display name ("User424242", an email's From name) never replaces.
        self._named: set[str] = set()
        #: True while the fold is still reading the log after a restart (partial).
        self.loading = False

    # -- reading --------------------------------------------------------------------
    def messages(self, interaction_id: str) -> list[Message]:
        return list(self._messages.get(interaction_id, ()))

    def customer_of(self, interaction_id: str) -> str | None:
        return self._customer_of.get(interaction_id)

    def history(self, customer_id: str) -> list[Contact]:
        """The customer's contacts on every channel, newest first (as many as are kept)."""
        ids = self._history.get(self.resolve(customer_id), [])
        contacts = [self._contacts[i] for i in reversed(ids) if i in self._contacts]
        return sorted(contacts, key=lambda c: c.created_at, reverse=True)  # ties: newest

    def contact(self, interaction_id: str) -> Contact | None:
        """The interaction as its customer's history shows it, while it is kept."""
        return self._contacts.get(interaction_id)

    def ended(self, interaction_id: str) -> Interaction | None:
        """An interaction that ended, rebuilt from what the fold keeps (the router forgets
        it): enough to show its conversation read-only, without channels' attributes."""
        contact = self._contacts.get(interaction_id)
        if contact is None or contact.state not in TERMINAL_STATES:
            return None
        customer_id = self._customer_of.get(interaction_id)
        return Interaction(
            id=contact.id,
            channel=contact.channel,
            queue=contact.queue,
            subject=contact.subject,
            customer=self.customer(customer_id) if customer_id else None,
            state=contact.state,
            created_at=contact.created_at,
            enqueued_at=contact.created_at,
            ended_at=contact.ended_at,
            agent=contact.agent,
            direction=contact.direction,
            address=contact.address,
            outcome=contact.outcome,
        )

    def name(self, customer_id: str) -> str | None:
        """The customer's name as known now: a CRM's or a person's before a channel's."""
        profile = self._profiles.get(self.resolve(customer_id))
        return profile.name if profile else None

    def customer_at(self, channel: str, address: str) -> str | None:
        """The customer already known by this address, if any."""
        return self._by_address.get((channel, address))

    def resolve(self, customer_id: str) -> str:
        """The customer's id now: a customer merged into another answers the other's."""
        while customer_id in self._merged:
            customer_id = self._merged[customer_id]
        return customer_id

    def customer(self, customer_id: str) -> Customer | None:
        """Who the customer is: name, every known address, and what a CRM said."""
        customer_id = self.resolve(customer_id)
        addresses = self._addresses.get(customer_id)
        profile = self._profiles.get(customer_id)
        if profile is None and addresses is None:
            return None
        return Customer(
            id=customer_id,
            name=profile.name if profile else None,
            identities=[Identity(c, a) for c, a in sorted(addresses or ())],
            attributes=dict(profile.attributes) if profile else {},
        )

    # -- folding --------------------------------------------------------------------
    def apply(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, event)

    def _outbound(self, e: ev.OutboundStarted) -> None:
        self._queued(e)  # in the customer's history like any contact
        self._assigned(e)

    def _queued(self, e: ev.InteractionQueued | ev.OutboundStarted) -> None:
        ix = e.interaction
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
        own = self.resolve(ix.customer.id)
        customer = known[0] if known else own
        if own != customer:  # known by an address: their own id now names this customer
            if own in self._history:
                self._merge(own, customer)
            else:
                self._merged[own] = customer
        self._join(customer, ix.customer, linked=False)
        return customer

    def _linked(self, e: ev.CustomerLinked) -> None:
        target = self.resolve(e.customer_id)
        self._history.setdefault(target, [])
        self._join(target, e.customer, linked=True)

    def _join(self, target: str, customer: Customer, *, linked: bool) -> None:
        """Give `target` the customer's addresses (merging whoever held one) and profile;
        a `linked` name (a CRM's, a person's) wins over a channel's display name."""
        for identity in customer.identities:
            address = (identity.channel, identity.address)
            owner = self._by_address.get(address)
            if owner is not None and owner != target:
                self._merge(owner, target)
            self._by_address[address] = target
            self._addresses.setdefault(target, set()).add(address)
        profile = self._profiles.get(target)
        if profile is None:
            profile = self._profiles[target] = Customer(id=target)
        if customer.name and (linked or target not in self._named):
            profile.name = customer.name
            if linked:
                self._named.add(target)
        profile.attributes.update(customer.attributes)

    def _merge(self, source: str, target: str) -> None:
        """Everything known of `source` now belongs to `target`."""
        for address in self._addresses.pop(source, ()):
            self._by_address[address] = target
            self._addresses.setdefault(target, set()).add(address)
        ids = self._history.pop(source, [])
        for interaction_id in ids:
            self._customer_of[interaction_id] = target
        history = self._history.setdefault(target, [])
        history.extend(i for i in ids if i not in history)
        old = self._profiles.pop(source, None)
        if old is not None:
            profile = self._profiles.setdefault(target, Customer(id=target))
            if source in self._named and target not in self._named and old.name:
                profile.name = old.name  # a CRM's name beats the channel's
            profile.name = profile.name or old.name
            profile.attributes = {**old.attributes, **profile.attributes}
        if source in self._named:
            self._named.discard(source)
            self._named.add(target)
        self._merged[source] = target

    def _message(self, e: ev.MessageAdded) -> None:
        self._messages.setdefault(e.message.interaction_id, []).append(e.message)

    def _assigned(self, e: ev.Assigned | ev.OutboundStarted) -> None:
        contact = self._contacts.get(e.interaction_id)
        if contact is not None:
            contact.state = InteractionState.ASSIGNED
            contact.agent = e.agent_id
            if e.agent_id not in contact.agents:
                contact.agents = (*contact.agents, e.agent_id)

    def _ended(self, e: Any) -> None:
        contact = self._contacts.get(e.interaction_id)
        if contact is not None:
            contact.state = _END_STATE[type(e)]
            contact.ended_at = e.at
            if isinstance(e, ev.Completed) and e.outcome is not None:
                contact.outcome = e.outcome
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
            self._profiles.pop(customer, None)
            self._named.discard(customer)
            for address in self._addresses.pop(customer, ()):
                self._by_address.pop(address, None)
            for alias in [a for a, t in self._merged.items() if t == customer]:
                del self._merged[alias]

    _handlers: dict[type[ev.Event], Any] = {
        ev.InteractionQueued: _queued,
        ev.OutboundStarted: _outbound,
        ev.MessageAdded: _message,
        ev.Assigned: _assigned,
        ev.Completed: _ended,
        ev.Abandoned: _ended,
        ev.Closed: _ended,
        ev.CustomerLinked: _linked,
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
        direction=ix.direction,
        address=ix.address,
    )

"""The JSON API: one table of endpoints, each with the least role it needs, the body it
reads and the Struct it answers with. The ASGI app, the role checks and the OpenAPI
document are all built from this table, so they cannot drift apart.

Agents see only their own work: an interaction offered or assigned to them. Supervisors
see and steer everything; admins also change agents and queues.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from .. import events as ev
from ..app import DeliveryError
from ..config import ConfigError, convert
from ..controls import for_role
from ..conversations import Contact
from ..model import (
    TERMINAL_STATES,
    Agent,
    Customer,
    Identity,
    Interaction,
    InteractionState,
    Message,
    Queue,
)
from ..router.core import RouterError
from ..specs import ControlSpec
from .auth import SESSION_REVOKED, Principal, TooManyAttempts
from .settings import Role
from .views import (
    AgentView,
    AssignBody,
    ConversationView,
    LinkBody,
    LoginBody,
    MessageBody,
    OfferView,
    OutboundBody,
    PresenceBody,
    QueueView,
    SessionView,
    TransferBody,
    Wallboard,
)

if TYPE_CHECKING:
    from ..app import App
    from .auth import Auth

__all__ = ["ENDPOINTS", "ApiError", "Call", "Endpoint", "readable"]

PUBLIC: Role | None = None  # `role` of endpoints anyone may call


class ApiError(Exception):
    """A refusal with its HTTP status; `where` names the offending field if any."""

    def __init__(self, status: int, error: str, where: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.where = where
        self.headers: dict[str, str] = {}


@dataclass(frozen=True)
class Call:
    """What a handler gets: the app, the caller, the decoded body and path parameters."""

    app: App
    auth: Auth
    principal: Principal | None
    body: Any
    params: dict[str, str]
    client: str

    @property
    def me(self) -> Principal:
        assert self.principal is not None  # only public endpoints run without one
        return self.principal


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: Role | None
    handler: Handler
    body: type | None = None
    returns: Any = None  # a type, or None for 204 No Content
    status: int = 200

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or "").strip().splitlines()[0]

    @property
    def description(self) -> str:
        return " ".join((self.handler.__doc__ or "").split())


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    role: Role | None,
    *,
    body: type | None = None,
    returns: Any = None,
    status: int = 200,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(Endpoint(method, path, role, handler, body, returns, status))
        return handler

    return register


# ------------------------------------------------------------------ sessions


@endpoint("POST", "/api/login", PUBLIC, body=LoginBody, returns=SessionView)
async def login(call: Call) -> SessionView:
    """Log in with a password; answers a session token (also set as a cookie)."""
    body: LoginBody = call.body
    try:
        call.auth.start_login(body.user, call.client)
    except TooManyAttempts as exc:
        error = ApiError(429, str(exc))
        error.headers["Retry-After"] = str(exc.retry_after)
        raise error from None
    async with call.auth.hashing:  # each check holds 16 MiB for ~50 ms: a few at a time
        user = await anyio.to_thread.run_sync(call.auth.check_password, body.user, body.password)
    if user is None:
        raise ApiError(401, "wrong user or password")
    token = call.auth.succeeded(user, call.client)
    ttl = call.auth.server.session_ttl
    return SessionView(user=user.id, role=user.role, name=user.name, token=token, expires_in=ttl)


@endpoint("POST", "/api/logout", Role.AGENT)
async def logout(call: Call) -> None:
    """End this session: its token stops working here at once, and on every node once
    the logout is in the log."""
    revoked = call.auth.logout(call.me)
    if revoked is not None:
        await call.app.add_note(SESSION_REVOKED, revoked)


@endpoint("GET", "/api/me", Role.AGENT, returns=SessionView)
async def me(call: Call) -> SessionView:
    """Who this session belongs to."""
    user = call.me.user
    return SessionView(user=user.id, role=user.role, name=user.name)


@endpoint("GET", "/api/controls", Role.AGENT, returns=list[ControlSpec])
async def controls(call: Call) -> list[ControlSpec]:
    """The buttons channel plugins put on live interactions (hold, consult, listen...)
    that the caller's role may use: the pages draw them (docs/plugins.md, "Controls")."""
    return for_role(call.app.host.controls(), call.me.role.value, call.app.channels)


# ------------------------------------------------------------------ agents' inbox


@endpoint("GET", "/api/inbox", Role.AGENT, returns=AgentView)
async def inbox(call: Call) -> AgentView:
    """The caller's own state, pending offers and work (an agent's inbox)."""
    return agent_view(call.app, _own_agent(call))


@endpoint("PUT", "/api/inbox/presence", Role.AGENT, body=PresenceBody, returns=AgentView)
async def my_presence(call: Call) -> AgentView:
    """Set the caller's presence: ready, not_ready (with a reason) or offline."""
    body: PresenceBody = call.body
    agent_id = _own_agent(call)
    await _run(call.app.set_presence(agent_id, body.presence, body.reason))
    return agent_view(call.app, agent_id)


@endpoint("POST", "/api/offers/{offer_id}/accept", Role.AGENT, returns=Interaction)
async def accept(call: Call) -> Interaction:
    """Accept an offer made to the caller; answers the assigned interaction."""
    return await _run(call.app.accept(_own_offer(call), call.me.id))


@endpoint("POST", "/api/offers/{offer_id}/decline", Role.AGENT)
async def decline(call: Call) -> None:
    """Decline an offer made to the caller; it goes to the next agent."""
    await _run(call.app.decline(_own_offer(call), call.me.id))


@endpoint("GET", "/api/interactions/{interaction_id}", Role.AGENT, returns=Interaction)
async def interaction(call: Call) -> Interaction:
    """One interaction: live, or ended and kept (who may read which: see `readable`)."""
    return _readable(call, call.params["interaction_id"])


@endpoint(
    "GET", "/api/interactions/{interaction_id}/conversation", Role.AGENT,
    returns=ConversationView,
)  # fmt: skip
async def conversation(call: Call) -> ConversationView:
    """Messages, the customer's earlier contacts, the queue's script and canned answers.
    An ended conversation (from the history) reads the same, with nothing to act on."""
    ix = _readable(call, call.params["interaction_id"])
    app = call.app
    customer = app.conversations.customer_of(ix.id)
    history = [c for c in app.conversations.history(customer) if c.id != ix.id] if customer else []
    if ix.state in TERMINAL_STATES and not call.me.has(Role.SUPERVISOR):
        # Read from an old contact of theirs: only what the agent may open.
        history = [c for c in history if readable(app, call.me, c.id) is not None]
    queue = app.router.queues.get(ix.queue)
    return ConversationView(
        interaction=_as_known(app, ix),
        messages=app.conversations.messages(ix.id),
        history=history,
        position=app.router.position(ix.id),
        script=queue.config.script if queue else None,
        canned=list(queue.config.canned) if queue else [],
        loading=app.conversations.loading,
        customer=app.conversations.customer(customer) if customer else None,
    )


@endpoint(
    "POST", "/api/interactions/{interaction_id}/messages", Role.AGENT, body=MessageBody,
    returns=Message, status=201,
)  # fmt: skip
async def send_message(call: Call) -> Message:
    """Reply in the conversation's own channel (agents: once it is assigned to them;
    supervisors join any live conversation)."""
    body: MessageBody = call.body
    if not body.text.strip() and not body.attachments:
        raise ApiError(422, "write something or attach a file", "text")
    ix = _readable(call, call.params["interaction_id"])
    if ix.state in (InteractionState.WAITING, InteractionState.OFFERED):
        raise ApiError(409, "accept the offer before replying")
    if ix.state is not InteractionState.ASSIGNED:
        raise ApiError(409, f"the conversation is over ({ix.state.value}): no more messages")
    if call.me.has(Role.SUPERVISOR) and ix.agent != call.me.id:
        sender = f"supervisor:{call.me.id}"
    elif ix.agent == call.me.id:
        sender = f"agent:{call.me.id}"
    else:
        raise ApiError(409, "accept the offer before replying")
    try:
        return await _run(
            call.app.send_message(ix.id, sender, body.text, attachments=body.attachments)
        )
    except DeliveryError as exc:
        raise ApiError(502, str(exc)) from None


@endpoint("POST", "/api/interactions/{interaction_id}/typing", Role.AGENT)
async def typing(call: Call) -> None:
    """The caller is typing a reply: the customer's channel may show it (web chat does)."""
    ix = _going(call, call.params["interaction_id"])
    if ix.agent != call.me.id and not call.me.has(Role.SUPERVISOR):
        raise ApiError(409, "accept the offer before replying")
    kind = "agent" if ix.agent == call.me.id else "supervisor"
    call.app.announce(
        ev.Typing(at=call.app.clock.now(), interaction_id=ix.id, sender=f"{kind}:{call.me.id}")
    )


@endpoint("GET", "/api/customers/{customer_id}/history", Role.SUPERVISOR, returns=list[Contact])
async def customer_history(call: Call) -> list[Contact]:
    """A customer's contacts across channels, newest first."""
    return call.app.conversations.history(call.params["customer_id"])


@endpoint("GET", "/api/customers/{customer_id}", Role.SUPERVISOR, returns=Customer)
async def customer(call: Call) -> Customer:
    """Who a customer is: name, every address on every channel, what a CRM said."""
    return _customer(call.app, call.params["customer_id"])


@endpoint(
    "POST", "/api/customers/{customer_id}/addresses", Role.SUPERVISOR, body=LinkBody,
    returns=Customer,
)  # fmt: skip
async def link_address(call: Call) -> Customer:
    """Add an address to a customer; a customer known by it merges into this one (their
    histories become one). Durable: an event in the log."""
    found = _customer(call.app, call.params["customer_id"])
    return await _link(call, found.id, call.body, f"supervisor:{call.me.id}")


@endpoint(
    "POST", "/api/interactions/{interaction_id}/customer/addresses", Role.AGENT,
    body=LinkBody, returns=Customer,
)  # fmt: skip
async def link_interaction_address(call: Call) -> Customer:
    """ "This customer is also the one with email x": add an address to the customer of
    live conversation the caller may read, merging whoever was known by it."""
    ix = _going(call, call.params["interaction_id"])
    customer_id = call.app.conversations.customer_of(ix.id)
    if customer_id is None:
        raise ApiError(409, "this conversation has no customer to link")
    kind = "supervisor" if call.me.has(Role.SUPERVISOR) else "agent"
    return await _link(call, customer_id, call.body, f"{kind}:{call.me.id}")


async def _link(call: Call, customer_id: str, body: LinkBody, by: str) -> Customer:
    address = Customer(id=customer_id, identities=[typed_identity(body.channel, body.address)])
    await _run(call.app.link_customer(customer_id, address, by))
    return _customer(call.app, customer_id)


def typed_identity(channel: str, address: str) -> Identity:
    """An address as a person types it, spelt as channels record it, so that it finds the
    customer: no surrounding space, an email in lower case ("C@Example.com" is the
    customer the email channel knows as "c@example.com"), a phone number without its
    spaces, dashes, dots and brackets."""
    channel, address = channel.strip().lower(), address.strip()
    if channel == "email":
        address = address.lower()
    elif channel == "voice":
        address = re.sub(r"[\s\-.()]", "", address)
    return Identity(channel, address)


def _customer(app: App, customer_id: str) -> Customer:
    found = app.conversations.customer(customer_id)
    if found is None:
        raise ApiError(404, f'no customer "{customer_id}" (or none of their contacts is kept)')
    return found


@endpoint("POST", "/api/outbound", Role.AGENT, body=OutboundBody, returns=Interaction, status=201)
async def start_outbound(call: Call) -> Interaction:
    """Start an outbound contact (click-to-call): it is the agent's at once, never
    queued. Agents start their own; supervisors may start one for another agent.
    Refused (409) when the agent is offline or has no free capacity on the channel."""
    body: OutboundBody = call.body
    app = call.app
    agent_id = body.agent or call.me.id
    if agent_id != call.me.id and not call.me.has(Role.SUPERVISOR):
        raise ApiError(403, "agents start their own contacts only", "agent")
    if agent_id not in app.router.agents:
        if body.agent is None:
            raise ApiError(403, f'user "{agent_id}" is not an agent')
        raise ApiError(404, f'no agent "{agent_id}"', "agent")
    if body.queue is not None and body.queue not in app.router.queues:
        raise ApiError(404, f'no queue "{body.queue}"', "queue")
    channel = body.channel.strip().lower()
    if body.customer is not None:
        found = app.conversations.customer(body.customer)
        if found is None:
            raise ApiError(404, f'no customer "{body.customer}"', "customer")
        if not call.me.has(Role.SUPERVISOR) and not _serves_customer(app, call.me, found.id):
            raise ApiError(404, f'no customer "{body.customer}"', "customer")
        addresses = [i.address for i in found.identities if i.channel == channel]
        if not addresses:
            raise ApiError(422, f"the customer has no {channel} address", "address")
        address = typed_identity(channel, body.address).address if body.address else addresses[0]
        if address not in addresses:  # else a call would link the address to them
            raise ApiError(422, f'"{address}" is not an address of this customer', "address")
    elif body.address is not None:
        address = typed_identity(channel, body.address).address
    else:
        raise ApiError(422, "give the address to contact, or the customer", "address")
    return await _run(
        app.start_outbound(
            agent_id,
            channel,
            address,
            customer_id=body.customer,
            queue=body.queue,
            subject=body.subject,
        )
    )


def _serves_customer(app: App, principal: Principal, customer_id: str) -> bool:
    """Whether the agent may reach this customer: one of the customer's contacts is
    readable by them (the customer of a conversation they hold or held)."""
    conversations = app.conversations
    return any(
        readable(app, principal, contact.id) is not None
        for contact in conversations.history(customer_id)
    )


@endpoint("POST", "/api/interactions/{interaction_id}/complete", Role.AGENT)
async def complete(call: Call) -> None:
    """The contact is over: the agent's wrap-up starts."""
    ix = _going(call, call.params["interaction_id"])
    await _run(call.app.complete(ix.id, _acting_agent(call, ix)))


@endpoint("POST", "/api/interactions/{interaction_id}/wrap-up/end", Role.AGENT)
async def end_wrap_up(call: Call) -> None:
    """End the wrap-up early: the agent is free for the next contact."""
    ix = _going(call, call.params["interaction_id"])
    await _run(call.app.end_wrap_up(ix.id, _acting_agent(call, ix)))


@endpoint("POST", "/api/interactions/{interaction_id}/transfer", Role.AGENT, body=TransferBody)
async def transfer(call: Call) -> None:
    """Transfer to a colleague (`to_agent`) or back to a queue (`to_queue`)."""
    body: TransferBody = call.body
    if (body.to_agent is None) == (body.to_queue is None):
        raise ApiError(422, "give exactly one of to_agent and to_queue", "to_agent")
    ix = _going(call, call.params["interaction_id"])
    await _run(
        call.app.transfer(
            ix.id,
            to_agent=body.to_agent,
            to_queue=body.to_queue,
            agent_id=_acting_agent(call, ix),
        )
    )


# ------------------------------------------------------------------ supervisors


@endpoint("GET", "/api/wallboard", Role.SUPERVISOR, returns=Wallboard)
async def wallboard(call: Call) -> Wallboard:
    """Every queue (waiting, longest wait, today's KPIs) and every agent by state."""
    return build_wallboard(call.app)


@endpoint("GET", "/api/queues/{queue}/waiting", Role.SUPERVISOR, returns=list[Interaction])
async def waiting(call: Call) -> list[Interaction]:
    """The interactions waiting in one queue, in the order it will serve them."""
    return call.app.router.waiting(_known_queue(call.app, call.params["queue"]))


@endpoint("GET", "/api/interactions/{interaction_id}/explain", Role.SUPERVISOR, returns=dict)
async def explain(call: Call) -> dict[str, Any]:
    """Why an interaction is where it is: who could take it and why nobody has yet."""
    _live(call.app, call.params["interaction_id"])
    return call.app.router.explain(call.params["interaction_id"])


@endpoint(
    "POST", "/api/interactions/{interaction_id}/assign", Role.SUPERVISOR, body=AssignBody,
    returns=Interaction,
)  # fmt: skip
async def assign(call: Call) -> Interaction:
    """Move a waiting interaction straight to an agent, bypassing the strategy."""
    body: AssignBody = call.body
    ix = _live(call.app, call.params["interaction_id"])
    _known_agent(call.app, body.agent)
    return await _run(call.app.assign(ix.id, body.agent))


@endpoint("GET", "/api/agents", Role.SUPERVISOR, returns=list[AgentView])
async def agents(call: Call) -> list[AgentView]:
    """Every agent with their state, load, offers and work."""
    return [agent_view(call.app, agent_id) for agent_id in call.app.router.agents]


@endpoint("PUT", "/api/agents/{agent_id}/presence", Role.SUPERVISOR, body=PresenceBody,
          returns=AgentView)  # fmt: skip
async def agent_presence(call: Call) -> AgentView:
    """Change an agent's presence (e.g. log out an agent who left)."""
    body: PresenceBody = call.body
    agent_id = _known_agent(call.app, call.params["agent_id"])
    await _run(call.app.set_presence(agent_id, body.presence, body.reason))
    return agent_view(call.app, agent_id)


# ------------------------------------------------------------------ admins


@endpoint("PUT", "/api/agents/{agent_id}", Role.ADMIN, body=Agent, returns=AgentView)
async def put_agent(call: Call) -> AgentView:
    """Create an agent or replace one's skills, capacity and queues; applies at once."""
    agent: Agent = call.body
    if agent.id != call.params["agent_id"]:
        path = call.params["agent_id"]
        raise ApiError(422, f'the body names agent "{agent.id}", the path "{path}"', "id")
    await _run(call.app.upsert_agent(agent))
    return agent_view(call.app, agent.id)


@endpoint("DELETE", "/api/agents/{agent_id}", Role.ADMIN)
async def delete_agent(call: Call) -> None:
    """Remove an agent who is offline and holds no work."""
    agent_id = _known_agent(call.app, call.params["agent_id"])
    await _run(call.app.remove_agent(agent_id))


@endpoint("GET", "/api/queues", Role.SUPERVISOR, returns=list[Queue])
async def queues(call: Call) -> list[Queue]:
    """Every queue as it runs now (the config file's, with the admin API's changes)."""
    return [queue.config for queue in call.app.router.queues.values()]


@endpoint("GET", "/api/queues/{queue}", Role.SUPERVISOR, returns=Queue)
async def get_queue(call: Call) -> Queue:
    """One queue as it runs now."""
    return call.app.router.queues[_known_queue(call.app, call.params["queue"])].config


@endpoint("PUT", "/api/queues/{queue}", Role.ADMIN, body=Queue, returns=Queue)
async def put_queue(call: Call) -> Queue:
    """Create a queue or replace one's settings (every `[[queues]]` key); applies at
    once, to the interactions already in it too, and the log keeps it across restarts.
    Refused (409) when it would strand waiting interactions on a channel it drops."""
    queue: Queue = call.body
    if queue.name != call.params["queue"]:
        path = call.params["queue"]
        raise ApiError(422, f'the body names queue "{queue.name}", the path "{path}"', "name")
    try:
        await _run(call.app.upsert_queue(queue))
    except ConfigError as exc:
        raise _invalid(exc) from None
    return call.app.router.queues[queue.name].config


@endpoint("DELETE", "/api/queues/{queue}", Role.ADMIN)
async def delete_queue(call: Call) -> None:
    """Remove a queue. Refused (409) while it holds live interactions (transfer them or
    let them finish) or while another queue overflows to it."""
    name = _known_queue(call.app, call.params["queue"])
    await _run(call.app.remove_queue(name))


# ------------------------------------------------------------------ views


def agent_view(app: App, agent_id: str) -> AgentView:
    status = app.router.agent(agent_id)
    work = []
    for interaction_id in sorted(status.work):
        try:
            work.append(_as_known(app, app.router.interaction(interaction_id)))
        except RouterError:
            continue  # finished between the two reads
    return AgentView(
        id=status.id,
        name=status.config.name,
        presence=status.presence,
        reason=status.reason,
        activity=status.activity,
        since=status.state_since,
        load=dict(status.load),
        capacity=dict(status.config.capacity),
        offers=[
            OfferView(
                id=offer.id,
                expires_at=offer.expires_at,
                interaction=_as_known(app, offer.waiting.ix),
            )
            for offer in status.offers.values()
        ],
        work=work,
    )


def _as_known(app: App, ix: Interaction) -> Interaction:
    """The interaction with its customer's name as known now (a CRM's "Carla Diaz"
    rather than the channel's display name "User424242")."""
    if ix.customer is None:
        return ix
    customer_id = app.conversations.customer_of(ix.id)
    name = app.conversations.name(customer_id) if customer_id else None
    if not name or name == ix.customer.name:
        return ix
    customer = msgspec.structs.replace(ix.customer, name=name)
    return msgspec.structs.replace(ix, customer=customer)


def build_wallboard(app: App) -> Wallboard:
    router = app.router
    now = app.clock.now()
    waiting_by_queue: dict[str, list[Interaction]] = {name: [] for name in router.queues}
    for ix in router.waiting():
        waiting_by_queue.setdefault(ix.queue, []).append(ix)
    queues = []
    for name, items in waiting_by_queue.items():
        oldest = min((ix.enqueued_at for ix in items), default=now)
        queues.append(
            QueueView(
                name=name,
                waiting=len(items),
                longest_wait=max(0.0, now - oldest),
                kpis=router.queue_stats(name).summary(),
            )
        )
    agents = [agent_view(app, agent_id) for agent_id in router.agents]
    by_activity: dict[str, int] = {}
    for agent in agents:
        by_activity[agent.activity] = by_activity.get(agent.activity, 0) + 1
    return Wallboard(at=now, queues=queues, agents=agents, agents_by_activity=by_activity)


# ------------------------------------------------------------------ checks


async def _run(command: Awaitable[Any]) -> Any:
    """Run an app command; a routing refusal (wrong state, unknown id) is a 409."""
    try:
        return await command
    except RouterError as exc:
        raise ApiError(409, str(exc)) from None


def _own_agent(call: Call) -> str:
    """The agent id of the caller, who must be an agent of the config."""
    agent_id = call.me.id
    if agent_id not in call.app.router.agents:
        raise ApiError(403, f'user "{agent_id}" is not an agent')
    return agent_id


def _own_offer(call: Call) -> str:
    """The offer id, if the offer is pending for the caller (404 otherwise, so no one
    learns which offers exist)."""
    offer_id = call.params["offer_id"]
    if offer_id not in call.app.router.agent(_own_agent(call)).offers:
        raise ApiError(404, f'no pending offer "{offer_id}" for you')
    return offer_id


def _known_agent(app: App, agent_id: str) -> str:
    if agent_id not in app.router.agents:
        raise ApiError(404, f'no agent "{agent_id}"')
    return agent_id


def _known_queue(app: App, name: str) -> str:
    if name not in app.router.queues:
        raise ApiError(404, f'no queue "{name}"')
    return name


def _live(app: App, interaction_id: str) -> Interaction:
    try:
        ix = app.router.interaction(interaction_id)
    except RouterError:
        raise ApiError(404, f'no live interaction "{interaction_id}"') from None
    if ix.state in TERMINAL_STATES:
        raise ApiError(404, f'no live interaction "{interaction_id}"')
    return ix


def readable(app: App, principal: Principal, interaction_id: str) -> Interaction | None:
    """The interaction if `principal` may read it, else None; the one place this is
    decided, for the API and for plugins' routes that serve what belongs to an
    interaction (an email's attachments, a Telegram photo).

    Live interactions: supervisors every one, agents those offered or assigned to them.
    Ended ones the conversations still keep (`Conversations.ended`), so that the
    customer's history can be read beside a conversation: supervisors every one; an
    agent those they handled and those of a customer they serve now (an offer or work
    of theirs)."""
    live = app.router.active.get(interaction_id)
    if live is not None and live.ix.state not in TERMINAL_STATES:
        if principal.has(Role.SUPERVISOR) or _holds(app, principal.id, interaction_id):
            return live.ix
        return None
    ended = app.conversations.ended(interaction_id)
    if ended is None or principal.has(Role.SUPERVISOR):
        return ended
    contact = app.conversations.contact(interaction_id)
    if contact is not None and principal.id in contact.agents:
        return ended
    customer = app.conversations.customer_of(interaction_id)
    if customer is not None and principal.id in app.router.agents:
        conversations = app.conversations
        status = app.router.agent(principal.id)
        serving = [*status.work, *(o.waiting.id for o in status.offers.values())]
        mine = {conversations.resolve(c) for i in serving if (c := conversations.customer_of(i))}
        if conversations.resolve(customer) in mine:
            return ended
    return None


def _holds(app: App, agent_id: str, interaction_id: str) -> bool:
    """Whether the interaction is offered or assigned to the agent."""
    if agent_id not in app.router.agents:
        return False
    status = app.router.agent(agent_id)
    return interaction_id in status.work or any(
        o.waiting.id == interaction_id for o in status.offers.values()
    )


def _readable(call: Call, interaction_id: str) -> Interaction:
    """The interaction, if the caller may read it (404 otherwise, so an agent cannot probe
    which ids exist)."""
    ix = readable(call.app, call.me, interaction_id)
    if ix is None:
        raise ApiError(404, f'no interaction "{interaction_id}" for you')
    return ix


def _going(call: Call, interaction_id: str) -> Interaction:
    """A readable interaction that has not ended: the only kind anyone may act on."""
    ix = _readable(call, interaction_id)
    if ix.state in TERMINAL_STATES:
        raise ApiError(409, f"the conversation is over ({ix.state.value})")
    return ix


def _acting_agent(call: Call, ix: Interaction) -> str | None:
    """Whose work it is: the caller, unless a supervisor acts for the assigned agent."""
    if call.me.has(Role.SUPERVISOR) and call.me.id != ix.agent:
        return None
    return call.me.id


def decode_body(endpoint: Endpoint, raw: bytes) -> Any:
    """The request body as the endpoint's Struct; errors name the field."""
    if endpoint.body is None:
        return None
    try:
        data = msgspec.json.decode(raw or b"null")
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    try:
        return convert(data, endpoint.body)
    except ConfigError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ConfigError) -> ApiError:
    """A 422 naming the first offending field."""
    where, sep, _ = exc.errors[0].partition(": ")
    return ApiError(422, "; ".join(exc.errors), where if sep else None)

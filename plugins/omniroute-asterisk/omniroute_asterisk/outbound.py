"""Outbound click-to-call: an agent's `OutboundStarted` interaction becomes a call.

The agent's phone rings first (so no customer ever answers to silence); once the agent
picks up they hear ringing while the customer's number is dialled through the
`[plugins.asterisk.outbound]` trunk pattern; the customer answering bridges the two
(recorded if the queue is). From then on the call is like any other: hold, transfer,
monitoring, and either hang-up completes it and starts wrap-up. A customer who does not
answer, is busy, or cannot be reached ends the interaction with that outcome, also
written in the conversation for the agent to see.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING

from omniroute import events as ev
from omniroute.app import RouterError
from omniroute.model import VOICE, Direction, Interaction, InteractionState, Message

from .ari import AriError, AriUnavailable, path
from .calls import Call, CallState, Leg, LegRole
from .settings import AsteriskSettings

if TYPE_CHECKING:
    from .channel import VoiceChannel

__all__ = ["OUTBOUND_PREFIX", "Outbound", "dial_errors", "outcome_of"]

logger = logging.getLogger("omniroute.asterisk")

#: Channel ids of an outbound call's legs: `omni-out-agent-<interaction>` and
#: `omni-out-customer-<interaction>`.
OUTBOUND_PREFIX = "omni-out-"
AGENT_LEG = f"{OUTBOUND_PREFIX}agent-"
CUSTOMER_LEG = f"{OUTBOUND_PREFIX}customer-"
#: Outcomes, as `Completed.outcome` and the interaction's `outcome` record them.
ANSWERED, NO_ANSWER, BUSY, FAILED = "answered", "no-answer", "busy", "failed"
AGENT_NO_ANSWER, CANCELLED = "agent-no-answer", "cancelled"
_TEXT = {
    NO_ANSWER: "the customer did not answer",
    BUSY: "the customer's line was busy",
    FAILED: "the call could not be placed",
    AGENT_NO_ANSWER: "your phone was not answered, so the customer was not called",
    CANCELLED: "you hung up before the customer answered",
}


def outcome_of(cause: int) -> str:
    """The outcome of a customer's leg that ended unanswered, from its Q.850 cause:
    busy (17 user busy, 21 rejected), no-answer (18 no user response, 19 no answer:
    what Asterisk gives when `customer_ring` runs out), anything else failed
    (unallocated number, congestion, the trunk down...)."""
    if cause in (17, 21):
        return BUSY
    if cause in (18, 19):
        return NO_ANSWER
    return FAILED


def dial_errors(settings: AsteriskSettings) -> list[str]:
    """What is wrong with `[plugins.asterisk.outbound]`, each naming its key."""
    where = "plugins.asterisk.outbound"
    outbound = settings.outbound
    errors = []
    dial = outbound.dial
    fields = re.findall(r"\{([^{}]*)\}", dial)
    if not re.match(r"^[A-Za-z0-9_]+/\S+$", dial):
        errors.append(
            f'{where}.dial: "{dial}" is not an endpoint such as "PJSIP/{{number}}@trunk" '
            "(technology/resource, no spaces)"
        )
    elif fields != ["number"]:
        errors.append(
            f'{where}.dial: "{dial}" must contain "{{number}}" once, and no other "{{...}}"'
        )
    try:
        re.compile(outbound.numbers)
    except re.error as exc:
        errors.append(f"{where}.numbers: not a regular expression: {exc}")
    return errors


class Outbound:
    """The outbound calls of one VoiceChannel (their legs live in its `calls`/`legs`)."""

    def __init__(self, channel: VoiceChannel) -> None:
        self.channel = channel
        self.settings: AsteriskSettings = channel.settings
        self._numbers = re.compile(self.settings.outbound.numbers)

    # ------------------------------------------------------------------ starting

    async def start(self, event: ev.OutboundStarted) -> None:
        """Ring the agent's phone for a new outbound voice interaction."""
        ix = event.interaction
        if ix.channel != VOICE or ix.id in self.channel.calls:
            return
        if not self._still_theirs(ix.id, event.agent_id):
            return  # completed from the inbox before this task ran
        number = ix.address or ""
        call = Call(ix.id, None, number, ix.queue)
        call.customer = ix.customer
        call.state = CallState.DIALLING
        self.channel.calls[ix.id] = call
        endpoint = self.settings.agents.get(event.agent_id)
        if endpoint is None:
            why = f'agent "{event.agent_id}" has no phone in plugins.asterisk.agents'
            await self._failed(call, FAILED, why, agent=event.agent_id)
            return
        if not self._numbers.fullmatch(number):
            why = f'"{number}" is not a number plugins.asterisk.outbound.numbers allows'
            await self._failed(call, FAILED, why, agent=event.agent_id)
            return
        leg = Leg(call, f"{AGENT_LEG}{ix.id}", LegRole.DIALER, event.agent_id)
        call.agent = leg
        # The agent's phone shows whom they are calling.
        ring = self.settings.outbound.agent_ring
        await self._originate(leg, endpoint, number, ring, "the agent's phone cannot be rung")

    # ------------------------------------------------------------------ ARI events

    async def answered(self, leg: Leg) -> None:
        """A leg of ours entered Stasis: it answered."""
        call = leg.call
        if call.state is not CallState.DIALLING:
            leg.hung_up = True
            await self.channel._hangup(leg.channel_id)
            return
        if leg.role is LegRole.DIALER:
            await self._dial_customer(call, leg)
        else:
            await self._customer_answered(call, leg)

    async def _dial_customer(self, call: Call, agent: Leg) -> None:
        """The agent picked up: they hear ringing while the customer's phone rings."""
        ari = self.channel.ari
        await self.channel._quietly(ari.post(path("channels", agent.channel_id, "ring")))
        outbound = self.settings.outbound
        customer = Leg(call, f"{CUSTOMER_LEG}{call.interaction_id}", LegRole.CALLED)
        call.caller = customer
        endpoint = outbound.dial.format(number=call.number)
        caller_id = outbound.caller_id or self.settings.caller_id
        await self._originate(
            customer, endpoint, caller_id, outbound.customer_ring, "the number cannot be dialled"
        )

    async def _originate(
        self, leg: Leg, endpoint: str, caller_id: str, ring: float, failure: str
    ) -> None:
        """Place one leg of the call into the app; a refusal ends the call as failed."""
        self.channel.legs[leg.channel_id] = leg
        try:
            await self.channel.ari.post(
                "channels",
                endpoint=endpoint,
                app=self.settings.app,
                appArgs=[leg.role.value, leg.call.interaction_id],
                channelId=leg.channel_id,
                callerId=caller_id,
                timeout=max(1, round(ring)),
            )
        except AriError as exc:
            if isinstance(exc, AriUnavailable):
                raise
            self.channel.legs.pop(leg.channel_id, None)
            leg.hung_up = True
            await self._failed(leg.call, FAILED, f"{failure}: {exc}")

    async def _customer_answered(self, call: Call, customer: Leg) -> None:
        """The customer picked up: from now on an ordinary call, caller and agent."""
        agent = call.agent
        assert agent is not None
        ringing = self.channel.ari.delete(path("channels", agent.channel_id, "ring"))
        await self.channel._quietly(ringing)
        customer.role = LegRole.CALLER
        agent.role = LegRole.AGENT
        call.outcome = ANSWERED
        await self.channel._connect(call)

    async def gone(self, leg: Leg, cause: int) -> None:
        """A leg of ours ended before the customer answered: the call ends with the
        outcome that says why."""
        call = leg.call
        if leg.hung_up or call.state is not CallState.DIALLING:
            return
        if leg.role is LegRole.DIALER:
            outcome = CANCELLED if leg.answered else AGENT_NO_ANSWER
        else:
            outcome = outcome_of(cause)
        leg.hung_up = True
        await self._failed(call, outcome, f"Q.850 cause {cause}")

    # ------------------------------------------------------------------ ending

    async def _failed(
        self, call: Call, outcome: str, detail: str, agent: str | None = None
    ) -> None:
        """End an outbound call that never connected: say why in the conversation,
        complete the interaction with `outcome` (wrap-up starts), hang up what is left."""
        logger.info("outbound %s to %s: %s (%s)", call.interaction_id, call.number, outcome, detail)
        call.outcome = outcome
        number = call.number or "an unknown number"
        text = f"Outbound call to {number}: {_TEXT.get(outcome, outcome)}"
        if outcome == FAILED:
            text += f" ({detail})"
        with contextlib.suppress(RouterError):  # it ended meanwhile (completed in the inbox)
            await self.channel.app.add_message(
                Message(
                    id=f"out-{call.interaction_id}",
                    interaction_id=call.interaction_id,
                    sender="system",
                    text=text,
                    attributes={"outcome": outcome},
                )
            )
        if call.agent is None and agent is not None:  # no leg was made: complete anyway
            if self._still_theirs(call.interaction_id, agent):
                await self.channel.app.complete(call.interaction_id, agent, outcome)
            await self.channel._end_call(call)
            return
        await self.channel._finish(call)

    def _still_theirs(self, interaction_id: str, agent: str) -> bool:
        try:
            ix = self.channel.app.router.interaction(interaction_id)
        except RouterError:
            return False
        return ix.state is InteractionState.ASSIGNED and ix.agent == agent

    # ------------------------------------------------------------------ re-adopting

    async def adopt(self, live: dict[str, object]) -> None:
        """After a (re)connection: outbound calls the router holds but this plugin does
        not (omniroute restarted). Both legs still up: the call goes on, bridged as it
        was; otherwise what is left is hung up and the interaction ends as failed."""
        router = self.channel.app.router
        for w in list(router.active.values()):
            ix: Interaction = w.ix
            if (
                ix.channel != VOICE
                or ix.direction is not Direction.OUTBOUND
                or ix.state is not InteractionState.ASSIGNED
                or ix.agent is None
                or ix.id in self.channel.calls
            ):
                continue
            agent_leg, customer_leg = f"{AGENT_LEG}{ix.id}", f"{CUSTOMER_LEG}{ix.id}"
            call = Call(ix.id, None, ix.address or "", ix.queue)
            call.customer = ix.customer
            self.channel.calls[ix.id] = call
            if agent_leg in live and customer_leg in live:
                agent = Leg(call, agent_leg, LegRole.AGENT, ix.agent)
                caller = Leg(call, customer_leg, LegRole.CALLER)
                agent.answered = caller.answered = True
                call.agent, call.caller = agent, caller
                call.state, call.outcome = CallState.TALKING, ANSWERED
                call.bridge = f"omni-{ix.id}"
                self.channel.legs[agent_leg] = agent
                self.channel.legs[customer_leg] = caller
                continue
            call.state = CallState.DIALLING
            for channel_id in (agent_leg, customer_leg):
                if channel_id in live:
                    await self.channel._hangup(channel_id)
            await self._failed(call, FAILED, "omniroute restarted while it rang", agent=ix.agent)

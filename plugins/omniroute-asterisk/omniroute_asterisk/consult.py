"""Consultative transfer and three-way conference, started by the agent in a call.

Consultation: the caller leaves the call's bridge and hears music (as on hold); the
colleague's phone rings (a named agent's, or the one the router picks for a queue);
answering joins the call's bridge, where the agent is alone, so the two talk privately.
Completing it hands the interaction over in the router (`App.hand_over`: one command,
the colleague must have room for it) and swaps the legs: the agent hangs up, the caller
comes back into the bridge with the colleague. Cancelling, or the colleague not
answering, declining or hanging up, brings the caller back to the agent.

Conference: a third party (another agent's phone, or an outside number through
`callback_endpoint`) joins the call's own bridge. Anyone may leave; the customer leaving
ends the call; the agent hanging up ends it too, unless `conference_agent_hangup` is
"stay": then the interaction completes (the agent wraps up) and the customer and the
third party talk on until one of them hangs up.

Each step is a durable note in the event log ("asterisk.consult", "asterisk.conference").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omniroute.app import RouterError
from omniroute.model import VOICE

from .ari import AriError, path
from .calls import CONSULT_PREFIX, GUEST_PREFIX, Call, CallError, CallState, Leg, LegRole

if TYPE_CHECKING:
    from .channel import VoiceChannel

__all__ = ["Consults"]

logger = logging.getLogger("omniroute.asterisk")

#: Q.850 causes that mean the colleague turned the call down (busy, rejected).
DECLINED_CAUSES = frozenset({17, 21})
#: Consultation states kept for the agents' view (the newest).
STATUS_KEPT = 10_000
#: What an outside party's number may look like.
NUMBER = re.compile(r"^\+?[0-9*#]{2,32}$")


class Consults:
    """The consultations and conferences of one voice channel's calls."""

    def __init__(self, voice: VoiceChannel) -> None:
        self.voice = voice
        # Legs placed so far, for unique channel ids; from the clock, so that a leg
        # placed after a restart never takes the id of one adopted from before it.
        self._count = int(voice.app.clock.now() * 1000)
        #: Interaction id -> where its last consultation stands (for the agent's view).
        self.status: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ consultation

    async def consult(
        self, interaction_id: str, *, agent: str | None = None, queue: str | None = None
    ) -> dict[str, str]:
        """Hold the caller and ring a colleague: `agent`, or who the router picks for
        `queue`. Returns the colleague and the consultation leg's channel."""
        if (agent is None) == (queue is None):
            raise CallError("a consultation needs exactly one of agent or queue")
        voice = self.voice
        call = voice.call(interaction_id)
        async with call.lock:
            current = self._attended(call, "consult")
            if call.consult is not None:
                raise CallError(f'"{interaction_id}" is already in a consultation')
            if call.guests:
                raise CallError(f'"{interaction_id}" is a conference: end it to consult')
            target = agent if agent is not None else self._pick(call, queue or "", current)
            endpoint = self._endpoint(target)
            if agent is not None:
                if agent == current.who:
                    raise CallError(f'"{agent}" is already on this call')
                status = voice.app.router.agent(agent)  # RouterError: unknown agent
                if not status.can_take(VOICE):
                    raise CallError(
                        f'agent "{agent}" cannot take a call now ({status.activity}, '
                        f"load {status.load})"
                    )
            if call.state is CallState.TALKING:
                await voice._hold(call)
            call.state = CallState.CONSULTING
            leg = self._leg(call, CONSULT_PREFIX, LegRole.CONSULT, target)
            call.consult = leg
            try:
                await self._originate(leg, endpoint, "consult", voice.settings.caller_id)
            except AriError:
                voice.legs.pop(leg.channel_id, None)
                call.consult = None
                call.state = CallState.HELD
                await voice._unhold(call)
                raise
            await self._note(call, "ringing", leg, queue=queue or "")
            return {"agent": target, "channel": leg.channel_id, "queue": queue or ""}

    async def complete(self, interaction_id: str) -> dict[str, str]:
        """The colleague takes the call: the router hands the interaction over, the
        agent's phone hangs up and the caller joins the colleague."""
        voice = self.voice
        call = voice.call(interaction_id)
        async with call.lock:
            leg = call.consult
            if call.state is not CallState.CONSULTING or leg is None or call.agent is None:
                raise CallError(f'"{interaction_id}" has no consultation to complete')
            if not leg.answered:
                raise CallError(f'"{leg.who}" has not answered yet: wait, or cancel')
            await self._hand_over(call, leg)
            return {"agent": leg.who or ""}

    async def cancel(self, interaction_id: str) -> None:
        """End the consultation: the colleague's leg hangs up, the caller comes back."""
        call = self.voice.call(interaction_id)
        async with call.lock:
            leg = call.consult
            if call.state is not CallState.CONSULTING or leg is None:
                raise CallError(f'"{interaction_id}" has no consultation to cancel')
            leg.hung_up = True
            await self._back_to_caller(call)
            await self.voice._hangup(leg.channel_id)
            await self._note(call, "cancelled", leg)

    async def _hand_over(self, call: Call, leg: Leg) -> None:
        voice = self.voice
        agent = call.agent
        assert agent is not None and leg.who is not None and call.caller is not None
        # Durable first (RouterError: the colleague has no room; the consultation stays).
        await voice.app.hand_over(call.interaction_id, leg.who, agent.who)
        call.consult = None
        leg.role = LegRole.AGENT
        call.agent = leg
        agent.hung_up = True
        voice.legs.pop(agent.channel_id, None)
        await voice._hangup(agent.channel_id)
        await voice._quietly(voice.ari.delete(path("channels", call.caller.channel_id, "moh")))
        assert call.bridge is not None
        await voice.ari.post(
            path("bridges", call.bridge, "addChannel"), channel=call.caller.channel_id
        )
        call.state = CallState.TALKING
        await self._note(call, "completed", leg, released=agent.who or "")

    async def _back_to_caller(self, call: Call) -> None:
        call.consult = None
        if call.state is CallState.CONSULTING:
            call.state = CallState.HELD
            await self.voice._unhold(call)

    def _pick(self, call: Call, queue: str, current: Leg) -> str:
        """The colleague the router would offer a call of `queue` to now, among agents
        with a phone who are not already on this or another consultation."""
        voice = self.voice
        busy = {current.who} | {
            leg.who for leg in voice.legs.values() if leg.role in (LegRole.CONSULT, LegRole.GUEST)
        }
        phoneless = set(voice.app.router.agents) - set(voice.settings.agents)
        chosen = voice.app.router.pick(queue, VOICE, excluded=busy | phoneless)
        if chosen is None:
            raise CallError(f'no agent of queue "{queue}" can take a consultation now')
        return str(chosen)

    # ------------------------------------------------------------------ conference

    async def conference(
        self, interaction_id: str, *, agent: str | None = None, number: str | None = None
    ) -> dict[str, str]:
        """Ring a third party (an agent's phone or an outside number); answering joins
        the call's bridge."""
        if (agent is None) == (number is None):
            raise CallError("a conference needs exactly one of agent or number")
        voice = self.voice
        call = voice.call(interaction_id)
        async with call.lock:
            current = self._attended(call, "conference")
            if call.state is not CallState.TALKING:
                raise CallError(f'"{interaction_id}" is not talking (take the caller off hold)')
            if agent is not None:
                if agent == current.who:
                    raise CallError(f'"{agent}" is already on this call')
                endpoint = self._endpoint(agent)
                caller_id = voice.settings.caller_id
            else:
                assert number is not None
                if not NUMBER.match(number):
                    raise CallError(f"number {number!r}: digits only, with an optional +")
                endpoint = voice.settings.callback_endpoint.format(number=number)
                caller_id = call.number or voice.settings.caller_id
            leg = self._leg(call, GUEST_PREFIX, LegRole.GUEST, agent or number)
            call.guests.append(leg)
            try:
                await self._originate(leg, endpoint, "guest", caller_id)
            except AriError:
                voice.legs.pop(leg.channel_id, None)
                call.guests.remove(leg)
                raise
            await self._note(call, "ringing", leg, kind="conference")
            return {"party": leg.who or "", "channel": leg.channel_id}

    async def drop(self, interaction_id: str, channel_id: str) -> None:
        """The agent lets a third party go (they hang up; the call goes on)."""
        call = self.voice.call(interaction_id)
        leg = next((g for g in call.guests if g.channel_id == channel_id), None)
        if leg is None:
            raise CallError(f'"{channel_id}" is not a party of "{interaction_id}"')
        call.guests.remove(leg)
        leg.hung_up = True
        self.voice.legs.pop(channel_id, None)
        await self.voice._hangup(channel_id)
        await self._note(call, "dropped", leg, kind="conference")

    # ------------------------------------------------------------------ the pages' view

    def in_effect(self, interaction_id: str) -> dict[str, dict[str, str]]:
        """What of the call's consultation and conference still goes on, by the name of
        the control that started it, each with an answer like that control's own: the
        consultation (the colleague, its channel, "ringing" or "talking") and the third
        party the last Conference added that is still on (the channel Drop lets go).
        Empty for a call without either, or no longer live here."""
        call = self.voice.calls.get(interaction_id)
        found: dict[str, dict[str, str]] = {}
        if call is None:
            return found
        leg = call.consult
        if leg is not None and call.state is CallState.CONSULTING:
            talking = "talking" if leg.answered else "ringing"
            found["consult"] = {"agent": leg.who or "", "channel": leg.channel_id, "state": talking}
        if call.guests:
            guest = call.guests[-1]
            joined = "joined" if guest.answered else "ringing"
            found["conference"] = {
                "party": guest.who or "",
                "channel": guest.channel_id,
                "state": joined,
            }
        return found

    # ------------------------------------------------------------------ ARI events

    async def answered(self, leg: Leg) -> None:
        """A consultation or conference leg picked up: into the call's bridge."""
        voice = self.voice
        call = leg.call
        wanted = (
            call.consult is leg and call.state is CallState.CONSULTING
            if leg.role is LegRole.CONSULT
            else leg in call.guests and call.state in (CallState.TALKING, CallState.HELD)
        )
        if not wanted or call.bridge is None:
            leg.hung_up = True
            await voice._hangup(leg.channel_id)
            return
        async with call.lock:
            await voice.ari.post(path("bridges", call.bridge, "addChannel"), channel=leg.channel_id)
        kind = "consult" if leg.role is LegRole.CONSULT else "conference"
        await self._note(call, "talking" if kind == "consult" else "joined", leg, kind=kind)

    async def gone(self, leg: Leg, cause: int) -> bool:
        """A leg of a call hung up: True if it is handled here (a consultation or
        conference leg, or a leg whose end a consultation or conference changes)."""
        call = leg.call
        if leg.role is LegRole.CONSULT:
            if call.consult is leg and not leg.hung_up:
                outcome = "ended" if leg.answered else _unanswered(cause)
                async with call.lock:
                    await self._back_to_caller(call)
                await self._note(call, outcome, leg)
            return True
        if leg.role is LegRole.GUEST:
            if leg in call.guests:
                call.guests.remove(leg)
                if not leg.hung_up:
                    outcome = "left" if leg.answered else _unanswered(cause)
                    await self._note(call, outcome, leg, kind="conference")
            if call.state is CallState.UNATTENDED and not call.guests:
                await self.voice._end_call(call)  # the customer is alone: done
            return True
        if leg.hung_up:
            return False
        if call.state is CallState.UNATTENDED:  # the customer left after the agent
            await self.voice._end_call(call)
            return True
        if leg.role is LegRole.AGENT and call.state is CallState.CONSULTING:
            await self._agent_left_consultation(call)
            return True
        live = [g for g in call.guests if g.answered]
        stay = self.voice.settings.conference_agent_hangup == "stay"
        if leg.role is LegRole.AGENT and call.state is CallState.TALKING and live and stay:
            await self._agent_left_conference(call, leg)
            return True
        return False

    async def _agent_left_consultation(self, call: Call) -> None:
        """The agent hung up during a consultation: an answered colleague takes the call
        (as hanging up completes an attended transfer on a PBX); one still ringing is
        hung up and the caller goes back in line."""
        leg = call.consult
        assert leg is not None and call.agent is not None
        async with call.lock:
            if leg.answered:
                try:
                    await self._hand_over(call, leg)
                    return
                except (CallError, AriError, RouterError) as exc:  # no room: back in line
                    logger.warning("consultation of %s: %s", call.interaction_id, exc)
            leg.hung_up = True
            call.consult = None
            await self.voice._hangup(leg.channel_id)
            call.state = CallState.HELD
        await self._note(call, "cancelled", leg)
        await self.voice.app.requeue(call.interaction_id, "agent left during a consultation")

    async def _agent_left_conference(self, call: Call, agent: Leg) -> None:
        """Rule "stay": the agent is done (the interaction completes, wrap-up starts);
        the customer and the third parties stay bridged."""
        voice = self.voice
        async with call.lock:
            call.state = CallState.UNATTENDED
            voice.calls.pop(call.interaction_id, None)  # the router is done with it
            call.agent = None
            await voice.app.complete(call.interaction_id, agent.who)
        await self._note(call, "agent left", agent, kind="conference")

    # ------------------------------------------------------------------ re-adopting

    def handed_over_leg(
        self, interaction_id: str, agent: str, live: Mapping[str, Any]
    ) -> str | None:
        """After a restart: the leg of the colleague `agent` a call was handed over to
        (their phone's channel, now the call's agent leg), among the channels still in
        Asterisk (id -> ari.Channel)."""
        endpoint = self.voice.settings.agents.get(agent)
        suffix = f"-{interaction_id}"
        for channel_id, channel in live.items():
            if not (channel_id.startswith(CONSULT_PREFIX) and channel_id.endswith(suffix)):
                continue
            if endpoint is not None and channel.name.startswith(f"{endpoint}-"):
                return str(channel_id)
        return None

    # ------------------------------------------------------------------ helpers

    def _attended(self, call: Call, what: str) -> Leg:
        if call.state not in (CallState.TALKING, CallState.HELD) or call.agent is None:
            raise CallError(f'"{call.interaction_id}" has no agent on the line to {what}')
        if call.bridge is None or call.caller is None:
            raise CallError(f'"{call.interaction_id}" is not bridged yet')
        return call.agent

    def _endpoint(self, agent: str) -> str:
        endpoint = self.voice.settings.agents.get(agent)
        if endpoint is None:
            raise CallError(f'agent "{agent}" has no phone in plugins.asterisk.agents')
        return endpoint

    def _leg(self, call: Call, prefix: str, role: LegRole, who: str | None) -> Leg:
        self._count += 1
        leg = Leg(call, f"{prefix}{self._count}-{call.interaction_id}", role, who)
        self.voice.legs[leg.channel_id] = leg
        return leg

    async def _originate(self, leg: Leg, endpoint: str, kind: str, caller_id: str) -> None:
        voice = self.voice
        await voice.ari.post(
            "channels",
            endpoint=endpoint,
            app=voice.settings.app,
            appArgs=[kind, leg.call.interaction_id],
            channelId=leg.channel_id,
            callerId=caller_id,
            timeout=voice.settings.consult_ring,
        )

    async def _note(
        self, call: Call, outcome: str, leg: Leg, *, kind: str = "consult", **extra: str
    ) -> None:
        data: dict[str, Any] = {
            "interaction_id": call.interaction_id,
            "state": outcome,
            "party": leg.who or "",
            "channel": leg.channel_id,
            **extra,
        }
        if kind == "consult":
            self.status.pop(call.interaction_id, None)
            self.status[call.interaction_id] = {k: str(v) for k, v in data.items()}
            if len(self.status) > STATUS_KEPT:
                del self.status[next(iter(self.status))]
        await self.voice.app.add_note(f"asterisk.{kind}", data)


def _unanswered(cause: int) -> str:
    return "declined" if cause in DECLINED_CAUSES else "no answer"

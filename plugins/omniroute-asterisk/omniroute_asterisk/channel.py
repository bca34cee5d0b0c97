"""The voice channel: calls in Asterisk become interactions, offers ring agents' phones.

Two streams drive it, each handled in order: ARI events (a call arrives, a phone rings,
answers or hangs up, a key is pressed) and omniroute's durable events (an offer, a missed
offer, a transfer, a callback or voicemail decision). The router decides; this module only
moves audio: music on hold, ringing, bridging, recording, snooping.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import msgspec

from omniroute import events as ev
from omniroute.app import RouterError
from omniroute.config import ConfigError
from omniroute.model import VOICE, Customer, Identity, Interaction, InteractionState, Message
from omniroute.wait import estimate

from . import ari_models as ari
from .ari import AriClient, AriError, AriUnavailable, path
from .calls import (
    CALLBACK_PREFIX,
    CONSULT_PREFIX,
    GUEST_PREFIX,
    Call,
    CallError,
    CallState,
    Leg,
    LegRole,
    agent_channel_id,
    interaction_id_of,
    offer_of_channel,
)
from .consult import Consults
from .outbound import OUTBOUND_PREFIX, Outbound, dial_errors
from .settings import AsteriskSettings, Number

__all__ = ["CallError", "VoiceChannel"]

logger = logging.getLogger("omniroute.asterisk")

#: Q.850 causes that mean the agent turned the call down (busy, rejected).
DECLINED_CAUSES = frozenset({17, 21})
#: Offers whose offer-to-ring time is kept (the newest).
RING_TIMES_KEPT = 100_000
#: The channel of the interaction a voicemail becomes (agents need capacity for it).
VOICEMAIL = "voicemail"
#: Spy and whisper directions of a supervisor's snoop on the agent's channel: "out" is
#: what the agent hears, "in" what the agent says.
MONITOR_MODES = {"listen": ("both", "none"), "whisper": ("both", "out")}


class VoiceChannel:
    """Channel adapter `asterisk`: its interactions are on channel "voice"."""

    name = "asterisk"

    def __init__(self, settings: AsteriskSettings, app: Any) -> None:
        errors = _config_errors(settings, set(app.router.queues), set(app.router.agents))
        if errors:
            raise ConfigError(errors)
        password = os.environ.get(settings.password_env)
        if password is None:
            raise ValueError(
                f"plugins.asterisk.password_env: the environment variable "
                f"{settings.password_env} is not set"
            )
        self.settings = settings
        self.app = app
        self.ari = AriClient(
            settings.url, settings.user, password, settings.app, on_arrival=self._arrived
        )
        self.calls: dict[str, Call] = {}  # interaction id -> call
        self.legs: dict[str, Leg] = {}  # channel id -> leg
        self._digits: dict[str, anyio.abc.ObjectSendStream[str]] = {}  # IVR key presses
        self._tg: anyio.abc.TaskGroup | None = None
        self._monitors = 0  # monitor sessions started, for unique channel ids
        self.outbound = Outbound(self)  # agents' click-to-call (outbound.py)
        self.consults = Consults(self)  # consultative transfers and conferences
        #: Offer id -> (time of the Offered event, time the phone rang), on the app's
        #: clock: what `python -m bench voice` reports as offer-to-ring.
        self.ring_times: dict[str, tuple[float, float | None]] = {}

    # ------------------------------------------------------------------ running

    async def run(self, app: Any) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._follow_router)
            await self.ari.run(self._on_ari, self._on_connected)

    async def deliver(self, interaction: Interaction, message: Message) -> None:
        raise CallError("a voice call has no text messages to deliver")

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._tg is not None
        self._tg.start_soon(self._guard, fn, *args)

    async def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a call-control task; a failure is logged for that call only."""
        try:
            await fn(*args)
        except (AriError, RouterError, CallError) as exc:
            logger.warning("%s: %s", getattr(fn, "__name__", fn), exc)

    # ------------------------------------------------------------------ ARI events

    async def _on_ari(self, event: ari.AriEvent) -> None:
        logger.debug("ARI event %s", event)
        try:
            if isinstance(event, ari.StasisStart):
                await self._stasis_start(event)
            elif isinstance(event, ari.ChannelDtmfReceived):
                await self._dtmf(event.channel.id, event.digit)
            elif isinstance(event, ari.ChannelDestroyed):
                await self._gone(event.channel.id, event.cause)
            elif isinstance(event, ari.StasisEnd):
                # Leaving the app ends its subscription: no ChannelDestroyed follows.
                await self._gone(event.channel.id, 16)
            elif isinstance(event, ari.PlaybackFinished):
                await self._playback_finished(event.playback)
            elif isinstance(event, ari.RecordingFinished | ari.RecordingFailed):
                await self._recording_done(event.recording)
        except (AriError, RouterError, CallError) as exc:
            logger.warning("handling %s: %s", type(event).__name__, exc)

    async def _stasis_start(self, event: ari.StasisStart) -> None:
        channel = event.channel
        leg = self.legs.get(channel.id)
        if leg is not None:
            leg.answered = True
            if leg.role is LegRole.AGENT:
                await self._agent_answered(leg)
            elif leg.role is LegRole.CUSTOMER:
                await self._customer_answered(leg)
            elif leg.role in (LegRole.SUPERVISOR, LegRole.SNOOP):
                await self._join_monitor(leg)
            elif leg.role in (LegRole.DIALER, LegRole.CALLED):
                await self.outbound.answered(leg)
            elif leg.role in (LegRole.CONSULT, LegRole.GUEST):
                await self.consults.answered(leg)
            return
        ours = (CALLBACK_PREFIX, OUTBOUND_PREFIX, CONSULT_PREFIX, GUEST_PREFIX)
        if channel.id.startswith(ours) or offer_of_channel(channel.id):
            await self._hangup(channel.id)  # a leg of a call that is over
            return
        if event.args and event.args[0] in ("snoop", "monitor"):
            return  # a supervisor's snoop channel: bridged by `monitor`
        self._spawn(self._inbound, channel)

    def _arrived(self, event: ari.AriEvent) -> None:
        """The moment an agent's phone rings, taken as the event arrives."""
        if not isinstance(event, ari.ChannelStateChange) or event.channel.state != "Ringing":
            return
        channel = event.channel
        leg = self.legs.get(channel.id)
        if leg is not None and leg.offer_id is not None:
            timing = self.ring_times.get(leg.offer_id)
            if timing is not None and timing[1] is None:
                self.ring_times[leg.offer_id] = (timing[0], self.app.clock.now())

    async def _dtmf(self, channel_id: str, digit: str) -> None:
        digits = self._digits.get(channel_id)
        if digits is not None:
            digits.send_nowait(digit)
            return
        leg = self.legs.get(channel_id)
        if leg is None or leg.role is not LegRole.CALLER:
            return
        call = leg.call
        if (
            call.callback_offered
            and call.state is CallState.WAITING
            and digit == self.settings.callback_digit
        ):
            await self.app.request_callback(call.interaction_id, call.number)
            call.state = CallState.CALLBACK
            leg.hung_up = True
            await self._hangup(channel_id)

    async def _gone(self, channel_id: str, cause: int) -> None:
        leg = self.legs.pop(channel_id, None)
        self._digits.pop(channel_id, None)
        if leg is None:
            return
        call = leg.call
        if leg.role in (LegRole.DIALER, LegRole.CALLED):
            await self.outbound.gone(leg, cause)
            return
        if await self.consults.gone(leg, cause):
            return
        if leg.role is LegRole.AGENT and not leg.answered:
            ringing = leg.offer_id is not None and call.offers.pop(leg.offer_id, None)
            if ringing and not leg.hung_up and cause in DECLINED_CAUSES and self._offered(call):
                assert leg.offer_id is not None
                await self.app.decline(leg.offer_id, leg.who)
            return
        if leg.role is LegRole.SUPERVISOR:
            await self._end_monitor(leg)
            return
        if leg.hung_up or leg.role is LegRole.SNOOP:
            return
        if leg.role is LegRole.CUSTOMER and call.state is CallState.DIALLING:
            # The customer did not take the callback: the agent is done with it.
            await self._finish(call)
            return
        if call.state in (CallState.IVR,):
            call.state = CallState.ENDED
            self.calls.pop(call.interaction_id, None)
            return
        if call.state is CallState.WAITING and leg.role is LegRole.CALLER:
            call.state = CallState.ENDED
            await self._revoke_legs(call)
            self.calls.pop(call.interaction_id, None)
            await self._abandon(call)
            return
        if call.state in (
            CallState.TALKING,
            CallState.HELD,
            CallState.DIALLING,
            CallState.CONSULTING,
        ):
            await self._finish(call)

    async def _abandon(self, call: Call) -> None:
        try:
            ix = self.app.router.interaction(call.interaction_id)
        except RouterError:
            return
        if ix.state in (InteractionState.WAITING, InteractionState.OFFERED):
            await self.app.abandon(call.interaction_id)

    def _assigned_to(self, call: Call, agent: str) -> bool:
        try:
            ix = self.app.router.interaction(call.interaction_id)
        except RouterError:
            return False
        return ix.state is InteractionState.ASSIGNED and ix.agent == agent

    def _offered(self, call: Call) -> bool:
        try:
            ix = self.app.router.interaction(call.interaction_id)
        except RouterError:
            return False
        return ix.state is InteractionState.OFFERED

    # ------------------------------------------------------------------ inbound

    async def _inbound(self, channel: ari.Channel) -> None:
        """A new call: IVR if its number has one, identify the caller, queue, music."""
        exten = channel.dialplan.exten if channel.dialplan else ""
        number = self.settings.numbers.get(exten) or self.settings.numbers.get("default")
        if number is None:
            logger.warning("call %s to %r: no [plugins.asterisk.numbers] entry", channel.id, exten)
            await self._hangup(channel.id)
            return
        ix_id = interaction_id_of(channel.id)
        call = Call(ix_id, None, channel.caller.number, number.queue)
        leg = Leg(call, channel.id, LegRole.CALLER)
        call.caller = leg
        self.legs[channel.id] = leg
        self.calls[ix_id] = call
        queue, skills = number.queue, dict(number.skills)
        if number.menu:
            await self.ari.post(path("channels", channel.id, "answer"))
            queue, skills = await self._menu(leg, number)
            if call.state is CallState.ENDED or channel.id not in self.legs:
                return  # hung up in the menu
        call.queue = queue
        customer = await self._customer(channel.caller)
        call.customer, call.skills = customer, skills
        ix = Interaction(
            id=ix_id,
            channel=VOICE,
            queue=queue,
            skills=skills,
            customer=customer,
            attributes={
                "asterisk": {
                    "channel": channel.id,
                    "caller_id": channel.caller.number,
                    "dialled": exten,
                }
            },
        )
        call.state = CallState.WAITING
        await self.app.submit(ix)  # durable: only now is the call answered
        try:
            if channel.id not in self.legs:
                raise CallError("hung up while being queued")
            if not number.menu:
                await self.ari.post(path("channels", channel.id, "answer"))
        except (AriError, CallError) as exc:
            if isinstance(exc, AriUnavailable):
                raise  # Asterisk is out of reach: the reconnection answers it
            call.state = CallState.ENDED
            self.calls.pop(ix_id, None)
            await self._abandon(call)  # the caller left before hearing anything
            return
        await self._music(call)
        if self.settings.announce_every > 0:
            self._spawn(self._announce_loop, call)

    async def _menu(self, leg: Leg, number: Number) -> tuple[str, dict[str, int]]:
        send, receive = anyio.create_memory_object_stream[str](16)
        self._digits[leg.channel_id] = send
        try:
            await self.ari.post(path("channels", leg.channel_id, "play"), media=number.prompt)
            deadline = self.app.clock.now() + number.menu_timeout
            while True:
                with anyio.move_on_after(max(0.0, deadline - self.app.clock.now())):
                    digit = await receive.receive()
                    option = number.menu.get(digit)
                    if option is not None:
                        return option.queue, dict(option.skills)
                    continue
                return number.queue, dict(number.skills)
        finally:
            self._digits.pop(leg.channel_id, None)

    async def _customer(self, caller: ari.CallerId) -> Customer | None:
        """The customer behind a caller ID: a CRM plugin's answer, else the one already
        known by this number, else a new one."""
        if not caller.number:
            return None
        identity = Identity(VOICE, caller.number)
        found = await self.app.host.first_result(
            "omniroute_customer_lookup", identity=identity, interaction=None
        )
        if isinstance(found, Customer):
            if identity not in found.identities:
                found = msgspec.structs.replace(found, identities=[*found.identities, identity])
            return found
        known = self.app.conversations.customer_at(VOICE, caller.number)
        return Customer(
            id=known or f"voice:{caller.number}",
            name=caller.name or None,
            identities=[identity],
        )

    async def _music(self, call: Call) -> None:
        if call.caller is not None:
            request = self.ari.post(
                path("channels", call.caller.channel_id, "moh"), mohClass=self.settings.moh_class
            )
            await self._quietly(request)  # a caller who just hung up needs none

    async def _announce_loop(self, call: Call) -> None:
        """Every `announce_every` seconds tell a waiting caller their place in line."""
        every = self.settings.announce_every
        clock = self.app.clock
        while True:
            await clock.sleep_until(clock.now() + every)
            if call.state is CallState.ENDED or call.state is CallState.CALLBACK:
                return
            if call.state is not CallState.WAITING or call.playing or call.caller is None:
                continue
            place = self.app.router.position(call.interaction_id)
            if place < 1:
                continue
            prompts = self.settings.announce_next if place == 1 else self.settings.announce_place
            media = [m.format(place=place, ahead=place - 1) for m in prompts]
            media += self._expected_wait(call)
            await self._play(call, media, "announce")

    def _expected_wait(self, call: Call) -> list[str]:
        """The expected wait, said in whole minutes rounded up (`omniroute.wait`); nothing
        when there is no honest estimate."""
        try:
            seconds = estimate(self.app.router, call.interaction_id)
        except RouterError:
            return []
        if seconds is None:
            return []
        if seconds < 60:
            return list(self.settings.announce_wait_short)
        minutes = math.ceil(seconds / 60)
        return [m.format(minutes=minutes) for m in self.settings.announce_wait]

    async def _play(self, call: Call, media: list[str], kind: str) -> None:
        """Play prompts to a waiting caller in place of the music, which then resumes."""
        assert call.caller is not None
        channel = call.caller.channel_id
        call.playing = f"{kind}-{call.interaction_id}-{int(self.app.clock.now() * 1000)}"
        await self.ari.delete(path("channels", channel, "moh"))
        await self.ari.post(path("channels", channel, "play"), media=media, playbackId=call.playing)

    async def _playback_finished(self, playback: ari.Playback) -> None:
        for call in self.calls.values():
            if call.playing == playback.id:
                call.playing = None
                if call.state is CallState.WAITING:
                    await self._music(call)
                elif call.state is CallState.VOICEMAIL and call.caller is not None:
                    await self.ari.post(
                        path("channels", call.caller.channel_id, "record"),
                        name=f"voicemail-{call.interaction_id}",
                        format="wav",
                        maxDurationSeconds=self.settings.voicemail_max,
                        beep=True,
                        terminateOn="#",
                        ifExists="overwrite",
                    )
                return

    # ------------------------------------------------------------------ router events

    async def _follow_router(self) -> None:
        with self.app.subscribe(max_buffer=100_000) as events:
            async for event in events:
                try:
                    await self._on_router(event)
                except (AriError, RouterError, CallError) as exc:
                    logger.warning("handling %s: %s", type(event).__name__, exc)

    async def _on_router(self, event: ev.Event) -> None:
        if isinstance(event, ev.OutboundStarted):
            self._spawn(self.outbound.start, event)
        elif isinstance(event, ev.Offered):
            call = self.calls.get(event.interaction_id)
            if call is not None:  # rung at once, not after the events queued behind it
                self._spawn(self._ring, call, event)
        elif isinstance(event, ev.OfferMissed | ev.OfferRevoked):
            call = self.calls.get(event.interaction_id)
            leg = call.offers.pop(event.offer_id, None) if call else None
            if leg is not None and not leg.answered:
                leg.hung_up = True
                await self._hangup(leg.channel_id)
        elif isinstance(event, ev.Transferred | ev.Requeued):
            call = self.calls.get(event.interaction_id)
            held = call is not None and call.state in (CallState.TALKING, CallState.HELD)
            if held and call is not None and not _handed_over(call, event):
                await self._back_to_queue(call)
        elif isinstance(event, ev.Completed):
            call = self.calls.get(event.interaction_id)
            if call is not None and call.state is not CallState.ENDED:
                await self._finish(call, complete=False)
        elif isinstance(event, ev.CallbackOffered):
            call = self.calls.get(event.interaction_id)
            if call is not None and call.state is CallState.WAITING and not call.callback_offered:
                call.callback_offered = True
                await self._play(call, list(self.settings.callback_prompt), "callback")
        elif isinstance(event, ev.Closed):
            call = self.calls.get(event.interaction_id)
            if call is not None and call.state is CallState.WAITING:
                await self._revoke_legs(call)
                if event.reason == "voicemail":
                    call.state = CallState.VOICEMAIL
                    await self._play(call, list(self.settings.voicemail_prompt), "voicemail")
                else:
                    await self._end_call(call)

    async def _ring(self, call: Call, offer: ev.Offered) -> None:
        """Ring the offered agent's phone; its answer accepts the offer."""
        endpoint = self.settings.agents.get(offer.agent_id)
        if endpoint is None:
            return  # an agent without a phone takes the offer in the inbox
        if offer.offer_id not in self.app.router.agent(offer.agent_id).offers:
            return  # it ended before this task ran (missed, revoked, accepted elsewhere)
        channel_id = agent_channel_id(offer.offer_id, call.interaction_id)
        leg = Leg(call, channel_id, LegRole.AGENT, offer.agent_id, offer.offer_id)
        call.offers[offer.offer_id] = leg
        self.legs[channel_id] = leg
        self.ring_times[offer.offer_id] = (offer.at, None)
        if len(self.ring_times) > RING_TIMES_KEPT:
            del self.ring_times[next(iter(self.ring_times))]
        ring_for = max(1, int(offer.expires_at - offer.at) + 5)  # the router times out first
        try:
            await self.ari.post(
                "channels",
                endpoint=endpoint,
                app=self.settings.app,
                appArgs=["agent", offer.offer_id],
                channelId=channel_id,
                callerId=call.number or self.settings.caller_id,
                timeout=ring_for,
            )
        except AriError:
            self.legs.pop(channel_id, None)
            call.offers.pop(offer.offer_id, None)
            raise
        if leg.hung_up:  # the offer ended while Asterisk was placing the call
            await self._hangup(channel_id)

    async def _agent_answered(self, leg: Leg) -> None:
        call = leg.call
        assert leg.offer_id is not None and leg.who is not None
        call.offers.pop(leg.offer_id, None)
        if call.state is CallState.CALLBACK:
            try:
                await self.app.accept(leg.offer_id, leg.who)
            except RouterError:
                leg.hung_up = True
                await self._hangup(leg.channel_id)
                raise
            call.agent = leg
            await self._dial_customer(call)
            return
        if call.state is not CallState.WAITING:
            leg.hung_up = True
            await self._hangup(leg.channel_id)
            return
        try:
            await self.app.accept(leg.offer_id, leg.who)
        except RouterError:
            if not self._assigned_to(call, leg.who):
                leg.hung_up = True  # the offer expired or went to someone else meanwhile
                await self._hangup(leg.channel_id)
                raise
            # Accepted from the inbox while the phone rang: answering connects them.
        call.agent = leg
        await self._revoke_legs(call)
        await self._connect(call)

    async def _connect(self, call: Call) -> None:
        """Bridge the caller (or the called-back customer) and the agent; record if the
        queue is recorded."""
        async with call.lock:
            if call.state is CallState.ENDED or call.agent is None or call.caller is None:
                return
            await self._bridge(call)

    async def _bridge(self, call: Call) -> None:
        assert call.caller is not None and call.agent is not None
        call.state = CallState.TALKING
        if call.playing is not None:
            call.playing = None
        bridge = await self.ari.post(
            "bridges", type="mixing", bridgeId=f"omni-{call.interaction_id}"
        )
        call.bridge = bridge["id"]
        if call.caller.role is LegRole.CALLER:
            await self._quietly(self.ari.delete(path("channels", call.caller.channel_id, "moh")))
        await self.ari.post(
            path("bridges", call.bridge, "addChannel"),
            channel=[call.caller.channel_id, call.agent.channel_id],
        )
        if call.queue in self.settings.record_queues:
            name = f"omni-{call.interaction_id}"
            await self.ari.post(
                path("bridges", call.bridge, "record"),
                name=name,
                format="wav",
                ifExists="overwrite",
            )
            call.recording = name
            await self.app.add_message(
                Message(
                    id=f"rec-{call.interaction_id}",
                    interaction_id=call.interaction_id,
                    sender="system",
                    text="call recording",
                    attachments=[recording_url(f"{name}.wav")],
                    attributes={"recording": name, "format": "wav"},
                )
            )

    async def _finish(self, call: Call, *, complete: bool = True) -> None:
        """The call is over: complete it (wrap-up starts) and hang up what is left."""
        async with call.lock:
            await self._finish_locked(call, complete=complete)

    async def _finish_locked(self, call: Call, *, complete: bool) -> None:
        if call.state is CallState.ENDED:
            return
        agent = call.agent
        call.state = CallState.ENDED
        self.calls.pop(call.interaction_id, None)
        if complete and agent is not None:
            try:
                ix = self.app.router.interaction(call.interaction_id)
            except RouterError:
                ix = None
            if ix is not None and ix.state is InteractionState.ASSIGNED:
                await self.app.complete(call.interaction_id, agent.who, call.outcome)
        await self._end_call(call)

    async def _end_call(self, call: Call) -> None:
        call.state = CallState.ENDED
        self.calls.pop(call.interaction_id, None)
        for leg in [call.caller, call.agent, call.consult, *call.guests, *call.offers.values()]:
            if leg is not None and not leg.hung_up:
                leg.hung_up = True
                await self._hangup(leg.channel_id)
        for bridge in [call.bridge, *call.monitors]:
            if bridge is not None:
                await self._quietly(self.ari.delete(path("bridges", bridge)))

    async def _revoke_legs(self, call: Call) -> None:
        """Stop ringing every other agent (ring-all, or the caller left)."""
        for offer_id, leg in list(call.offers.items()):
            if leg is not call.agent:
                call.offers.pop(offer_id, None)
                leg.hung_up = True
                await self._hangup(leg.channel_id)

    async def _back_to_queue(self, call: Call) -> None:
        """A blind transfer or requeue: the agent leaves, the caller waits with music."""
        async with call.lock:
            if call.state in (CallState.TALKING, CallState.HELD):
                await self._requeue_legs(call)

    async def _requeue_legs(self, call: Call) -> None:
        agent = call.agent
        call.agent = None
        call.state = CallState.WAITING
        if agent is not None:
            agent.hung_up = True
            await self._hangup(agent.channel_id)
        if call.bridge is not None:
            await self._quietly(self.ari.delete(path("bridges", call.bridge)))
            call.bridge = None
        await self._music(call)

    # ------------------------------------------------------------------ callback

    async def _dial_customer(self, call: Call) -> None:
        """The agent took the callback: hold them with music and ring the customer."""
        assert call.agent is not None
        call.state = CallState.DIALLING
        await self.ari.post(
            path("channels", call.agent.channel_id, "moh"), mohClass=self.settings.moh_class
        )
        channel_id = f"{CALLBACK_PREFIX}{call.interaction_id}"
        leg = Leg(call, channel_id, LegRole.CUSTOMER)
        self.legs[channel_id] = leg
        await self.ari.post(
            "channels",
            endpoint=self.settings.callback_endpoint.format(number=call.number),
            app=self.settings.app,
            appArgs=["callback", call.interaction_id],
            channelId=channel_id,
            callerId=self.settings.caller_id,
            timeout=60,
        )

    async def _customer_answered(self, leg: Leg) -> None:
        call = leg.call
        if call.state is not CallState.DIALLING or call.agent is None:
            leg.hung_up = True
            await self._hangup(leg.channel_id)
            return
        await self._quietly(self.ari.delete(path("channels", call.agent.channel_id, "moh")))
        call.caller = leg
        await self._connect(call)

    # ------------------------------------------------------------------ voicemail

    async def _recording_done(self, recording: ari.LiveRecording) -> None:
        """A voicemail is recorded: it becomes an interaction of its own (channel
        "voicemail") in the call's queue, for an agent to call back."""
        if not recording.name.startswith("voicemail-"):
            return
        ix_id = recording.name.removeprefix("voicemail-")
        call = self.calls.get(ix_id)
        if call is None or call.state is not CallState.VOICEMAIL:
            return
        await self._end_call(call)
        file = f"{recording.name}.{recording.format or 'wav'}"
        voicemail = Interaction(
            id=f"{ix_id}-voicemail",
            channel=VOICEMAIL,
            queue=call.queue,
            skills=dict(call.skills),
            customer=call.customer,
            subject=f"voicemail from {call.number or 'an unknown number'}",
            attributes={
                "asterisk": {"recording": recording.name, "file": file, "caller_id": call.number},
                "voicemail_of": ix_id,
            },
        )
        await self.app.submit(voicemail)
        await self.app.add_message(
            Message(
                id=f"vm-{ix_id}",
                interaction_id=voicemail.id,
                sender="customer",
                text="voicemail",
                attachments=[recording_url(file)],
                attributes={"recording": recording.name, "duration": recording.duration},
            )
        )

    # ------------------------------------------------------------------ in the call

    def call(self, interaction_id: str) -> Call:
        call = self.calls.get(interaction_id)
        if call is None:
            raise CallError(f'no live call for interaction "{interaction_id}"')
        return call

    async def hold(self, interaction_id: str) -> None:
        """The caller leaves the bridge and hears music; the agent stays on the line."""
        call = self.call(interaction_id)
        async with call.lock:
            await self._hold(call)

    async def _hold(self, call: Call) -> None:
        interaction_id = call.interaction_id
        if call.state is not CallState.TALKING or call.caller is None or call.bridge is None:
            raise CallError(f'"{interaction_id}" is not in a call that can be held')
        call.state = CallState.HELD
        await self.ari.post(
            path("bridges", call.bridge, "removeChannel"), channel=call.caller.channel_id
        )
        await self._music(call)

    async def unhold(self, interaction_id: str) -> None:
        call = self.call(interaction_id)
        async with call.lock:
            await self._unhold(call)

    async def _unhold(self, call: Call) -> None:
        interaction_id = call.interaction_id
        if call.state is not CallState.HELD or call.caller is None or call.bridge is None:
            raise CallError(f'"{interaction_id}" is not on hold')
        await self._quietly(self.ari.delete(path("channels", call.caller.channel_id, "moh")))
        await self.ari.post(
            path("bridges", call.bridge, "addChannel"), channel=call.caller.channel_id
        )
        call.state = CallState.TALKING

    async def monitor(self, interaction_id: str, mode: str, supervisor: str) -> dict[str, str]:
        """A supervisor listens, whispers to the agent, or barges into a live call.

        Listen and whisper snoop on the agent's channel (whisper speaks towards the agent
        only, so the customer does not hear); barge joins the call's own bridge.
        """
        call = self.call(interaction_id)
        if call.state not in (CallState.TALKING, CallState.HELD) or call.agent is None:
            raise CallError(f'"{interaction_id}" has no agent on the line to monitor')
        endpoint = self.settings.supervisors.get(supervisor)
        if endpoint is None:
            raise CallError(
                f'no phone for supervisor "{supervisor}" in plugins.asterisk.supervisors'
            )
        self._monitors += 1
        tag = f"{interaction_id}-{supervisor}-{self._monitors}"
        if mode == "barge":
            bridge = call.bridge
            snoop_id = None
        elif mode in MONITOR_MODES:
            spy, whisper = MONITOR_MODES[mode]
            snoop_id = f"omni-snoop-{tag}"
            bridge = f"omni-monitor-{tag}"
            await self.ari.post("bridges", type="mixing", bridgeId=bridge)
            call.monitors.append(bridge)
            # It joins the bridge once in the app (its StasisStart), like the supervisor.
            self.legs[snoop_id] = Leg(call, snoop_id, LegRole.SNOOP, supervisor, bridge)
            await self.ari.post(
                path("channels", call.agent.channel_id, "snoop"),
                spy=spy,
                whisper=whisper,
                app=self.settings.app,
                appArgs=["snoop", interaction_id],
                snoopId=snoop_id,
            )
        else:
            raise CallError(f'unknown mode "{mode}"; one of listen, whisper, barge')
        assert bridge is not None
        channel_id = f"omni-supervisor-{tag}"
        leg = Leg(call, channel_id, LegRole.SUPERVISOR, supervisor, offer_id=bridge)
        self.legs[channel_id] = leg
        await self.ari.post(
            "channels",
            endpoint=endpoint,
            app=self.settings.app,
            appArgs=["supervisor", interaction_id],
            channelId=channel_id,
            callerId=self.settings.caller_id,
            timeout=30,
        )
        return {"mode": mode, "bridge": bridge, "snoop": snoop_id or "", "channel": channel_id}

    async def _end_monitor(self, leg: Leg) -> None:
        """The supervisor hung up: their snoop and its bridge go too (never the call's)."""
        bridge = leg.offer_id
        if bridge is None or not bridge.startswith("omni-monitor-"):
            return
        call = leg.call
        if bridge in call.monitors:
            call.monitors.remove(bridge)
        snoop = "omni-snoop-" + bridge.removeprefix("omni-monitor-")
        self.legs.pop(snoop, None)
        await self._hangup(snoop)
        await self._quietly(self.ari.delete(path("bridges", bridge)))

    async def _join_monitor(self, leg: Leg) -> None:
        bridge = leg.offer_id  # the bridge the supervisor joins
        assert bridge is not None
        await self.ari.post(path("bridges", bridge, "addChannel"), channel=leg.channel_id)

    # ------------------------------------------------------------------ re-adopting

    async def _on_connected(self) -> None:
        """After a (re)connection: adopt the calls still in Stasis so none stays silent,
        and end what the router holds but Asterisk lost."""
        channels = msgspec.convert(await self.ari.get("channels"), list[ari.Channel])
        live = {c.id: c for c in channels}
        for channel in channels:
            known = self.legs.get(channel.id)
            if known is not None:
                await self._resume(known, channel)
                continue
            if not _in_app(channel, self.settings.app):
                continue
            ix_id = interaction_id_of(channel.id)
            try:
                ix = self.app.router.interaction(ix_id)
            except RouterError:
                ix = None
            if ix is not None:
                await self._adopt(channel, ix, live)
            elif offer_of_channel(channel.id) is None and not channel.id.startswith("omni-"):
                self._spawn(self._inbound, channel)  # its StasisStart was missed
        await self.outbound.adopt(live)
        for channel in channels:
            orphan = channel.id not in self.legs and channel.id.startswith("omni-")
            if orphan and not self._adopt_ringing(channel):
                await self._hangup(channel.id)  # a leg nobody owns any more
        for call in list(self.calls.values()):
            if call.caller is not None and call.caller.channel_id not in live:
                await self._gone(call.caller.channel_id, 16)

    def _adopt_ringing(self, channel: ari.Channel) -> bool:
        """An agent's phone still ringing for an offer the router still holds keeps
        ringing (hanging it up would count a missed offer against the agent)."""
        found = offer_of_channel(channel.id)
        call = self.calls.get(found[1]) if found else None
        if found is None or call is None or channel.state == "Up":
            return False
        offer_id = found[0]
        for agent_id in self.settings.agents:
            try:
                pending = offer_id in self.app.router.agent(agent_id).offers
            except RouterError:
                continue
            if pending:
                leg = Leg(call, channel.id, LegRole.AGENT, agent_id, offer_id)
                call.offers[offer_id] = leg
                self.legs[channel.id] = leg
                return True
        return False

    async def _resume(self, leg: Leg, channel: ari.Channel) -> None:
        """A waiting caller of ours whose answer or music a lost connection cut short."""
        call = leg.call
        if leg.role is not LegRole.CALLER or call.state is not CallState.WAITING:
            return
        if channel.state != "Up":
            await self.ari.post(path("channels", channel.id, "answer"))
        if call.playing is None:
            await self._music(call)

    async def _adopt(self, channel: ari.Channel, ix: Interaction, live: dict[str, Any]) -> None:
        call = Call(ix.id, None, channel.caller.number, ix.queue)
        call.customer, call.skills = ix.customer, dict(ix.skills)
        caller = Leg(call, channel.id, LegRole.CALLER)
        caller.answered = True
        call.caller = caller
        self.legs[channel.id] = caller
        self.calls[ix.id] = call
        if ix.state in (InteractionState.WAITING, InteractionState.OFFERED):
            call.state = CallState.WAITING
            if channel.state != "Up":
                await self.ari.post(path("channels", channel.id, "answer"))
            await self._music(call)
            if self.settings.announce_every > 0:
                self._spawn(self._announce_loop, call)
            return
        if ix.state is InteractionState.ASSIGNED and ix.agent is not None:
            agent = next(
                (c for c in live if (o := offer_of_channel(c)) and o[1] == ix.id),
                None,
            ) or self.consults.handed_over_leg(ix.id, ix.agent, live)
            if agent is not None:
                leg = Leg(call, agent, LegRole.AGENT, ix.agent)
                leg.answered = True
                call.agent = leg
                call.bridge = f"omni-{ix.id}"
                call.state = await self._talking_or_held(call)
                self.legs[agent] = leg
                return
            call.state = CallState.TALKING
            await self._finish(call)
            return
        call.state = CallState.ENDED
        await self._end_call(call)

    async def _talking_or_held(self, call: Call) -> CallState:
        """An adopted call in progress whose caller is out of the bridge was on hold (or
        in a consultation, whose leg is gone now): held, so the agent can take them back."""
        assert call.bridge is not None and call.caller is not None
        try:
            bridge = await self.ari.get(path("bridges", call.bridge))
        except AriError as exc:
            if isinstance(exc, AriUnavailable):
                raise
            return CallState.TALKING
        if not isinstance(bridge, dict):
            return CallState.TALKING
        inside = call.caller.channel_id in bridge.get("channels", ())
        return CallState.TALKING if inside else CallState.HELD

    # ------------------------------------------------------------------ helpers

    async def _hangup(self, channel_id: str) -> None:
        await self._quietly(self.ari.delete(path("channels", channel_id)))

    async def _quietly(self, request: Any) -> None:
        """A request whose 404 means it is already done (the channel hung up first)."""
        try:
            await request
        except AriError as exc:
            if exc.status not in (404, 409, 422):
                raise


def recording_url(file: str) -> str:
    """Where the web app serves a recording (see plugin.py)."""
    return f"/voice/recordings/{file}"


def _config_errors(settings: AsteriskSettings, queues: set[str], agents: set[str]) -> list[str]:
    """Names in `[plugins.asterisk]` that the rest of the config does not know."""
    where = "plugins.asterisk"
    errors = [
        f'{where}.agents."{agent}": unknown agent'
        for agent in settings.agents
        if agent not in agents
    ]
    for dialled, number in settings.numbers.items():
        if number.queue not in queues:
            errors.append(f'{where}.numbers."{dialled}".queue: unknown queue "{number.queue}"')
        for key, option in number.menu.items():
            if option.queue not in queues:
                errors.append(
                    f'{where}.numbers."{dialled}".menu."{key}".queue: '
                    f'unknown queue "{option.queue}"'
                )
    errors += [
        f'{where}.record_queues: unknown queue "{queue}"'
        for queue in settings.record_queues
        if queue not in queues
    ]
    if not settings.numbers:
        errors.append(f'{where}.numbers: name at least one number (or "default") and its queue')
    return errors + dial_errors(settings)


def _handed_over(call: Call, event: ev.Transferred | ev.Requeued) -> bool:
    """A transfer that completed a consultation (consult.py): the colleague already has
    the call, nothing to undo."""
    agent = call.agent
    return (
        isinstance(event, ev.Transferred)
        and agent is not None
        and event.to_agent is not None
        and agent.who == event.to_agent
    )


def _in_app(channel: ari.Channel, app: str) -> bool:
    dialplan = channel.dialplan
    if dialplan is None:
        return False
    return dialplan.app_name == "Stasis" and dialplan.app_data.split(",")[0] == app

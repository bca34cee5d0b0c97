"""Live events for the pages: one subscription to the app, fanned out to the sockets.

Each event is encoded once and handed to the supervisors' sockets and to the sockets of
the agents it concerns (the agent it names, or the agents an interaction is offered or
assigned to), so the cost of an event does not grow with the number of agents online.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .. import events as ev
from .auth import Principal
from .settings import Role

if TYPE_CHECKING:
    from ..app import App

__all__ = ["EventHub"]

logger = logging.getLogger("omniroute.web")

# After these nobody holds the interaction any more (Completed is followed by wrap-up,
# during which the agent still sees what the customer writes).
_ENDS = (ev.WrapUpEnded, ev.Abandoned, ev.Closed)
# The agent an event names no longer holds the interaction.
_LOSES = (ev.OfferDeclined, ev.OfferMissed, ev.OfferRevoked, ev.Requeued)


class EventHub:
    def __init__(self, app: App, max_buffer: int = 1000) -> None:
        self.app = app
        self.max_buffer = max_buffer
        self._supervisors: set[MemoryObjectSendStream[bytes]] = set()
        self._agents: dict[str, set[MemoryObjectSendStream[bytes]]] = {}
        self._owners: dict[str, set[str]] = {}  # interaction id -> agents it concerns
        self._sessions: dict[str, list[MemoryObjectSendStream[bytes]]] = {}
        self._followers: list[Callable[[ev.Event], None]] = []

    def follow(self, listener: Callable[[ev.Event], None]) -> None:
        """Call `listener(event)` for every committed event this hub sees (a logout's
        note, for the web server's sessions)."""
        self._followers.append(listener)

    def close_session(self, session: str) -> None:
        """End the streams of a session that logged out (their sockets close)."""
        for stream in self._sessions.pop(session, []):
            stream.close()

    def open(self, principal: Principal) -> MemoryObjectReceiveStream[bytes]:
        """The encoded events `principal` may see, from now on. Close it when done; it
        ends if its reader falls `max_buffer` events behind (it should reload)."""
        send, receive = anyio.create_memory_object_stream[bytes](self.max_buffer)
        if principal.session is not None:
            self._sessions = {  # forget streams whose sockets closed
                s: live
                for s, streams in self._sessions.items()
                if (live := [x for x in streams if x.statistics().open_receive_streams])
            }
            self._sessions.setdefault(principal.session, []).append(send)
        if principal.has(Role.SUPERVISOR):
            self._supervisors.add(send)
        else:
            self._agents.setdefault(principal.id, set()).add(send)
        return receive

    async def run(self) -> None:
        """Follow the app until cancelled (or until it stops)."""
        self._seed_owners()
        with self.app.subscribe(max_buffer=100_000) as events:
            async for event in events:
                try:
                    for listener in self._followers:
                        listener(event)
                    self.dispatch(event)
                except Exception:  # a bug here must not stop the app, only live updates
                    logger.exception("live events: cannot dispatch %s", type(event).__name__)
        for stream in [*self._supervisors, *(s for ss in self._agents.values() for s in ss)]:
            stream.close()

    def _seed_owners(self) -> None:
        """Who holds what already (after a restart, offers and work predate us)."""
        router = self.app.router
        for agent_id in router.agents:
            status = router.agent(agent_id)
            for interaction_id in status.work:
                self._owners.setdefault(interaction_id, set()).add(agent_id)
            for offer in status.offers.values():
                self._owners.setdefault(offer.waiting.id, set()).add(agent_id)

    def dispatch(self, event: ev.Event) -> None:
        agents = self._concerned(event)
        if not self._supervisors and not any(a in self._agents for a in agents):
            return
        data = ev.encode(event)
        for stream in list(self._supervisors):
            self._send(stream, data, self._supervisors)
        for agent_id in agents:
            streams = self._agents.get(agent_id)
            for stream in list(streams or ()):
                self._send(stream, data, streams)  # type: ignore[arg-type]
            if streams is not None and not streams:
                del self._agents[agent_id]

    def _concerned(self, event: ev.Event) -> set[str]:
        """The agents who see `event`, keeping track of who holds which interaction."""
        if isinstance(event, ev.MessageAdded):
            return set(self._owners.get(event.message.interaction_id, ()))
        agent = getattr(event, "agent_id", None)
        interaction = getattr(event, "interaction_id", None)
        if interaction is None:
            return {agent} if agent else set()
        concerned = set(self._owners.get(interaction, ()))
        if agent:
            concerned.add(agent)
        if isinstance(event, ev.Offered | ev.Assigned | ev.OutboundStarted):
            self._owners.setdefault(interaction, set()).add(event.agent_id)
        elif isinstance(event, (*_LOSES, ev.Transferred)) and interaction in self._owners:
            owners = self._owners[interaction]
            owners.discard((event.from_agent if isinstance(event, ev.Transferred) else agent) or "")
            if isinstance(event, ev.Transferred) and event.to_agent:
                owners.add(event.to_agent)
            if not owners:
                del self._owners[interaction]
        elif isinstance(event, _ENDS):
            self._owners.pop(interaction, None)
        return concerned

    def _send(
        self,
        stream: MemoryObjectSendStream[bytes],
        data: bytes,
        group: set[MemoryObjectSendStream[bytes]],
    ) -> None:
        try:
            stream.send_nowait(data)
        except anyio.WouldBlock:
            logger.warning("dropping a live socket %d events behind", self.max_buffer)
            stream.close()
            group.discard(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            group.discard(stream)  # its socket went away

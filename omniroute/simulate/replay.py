"""Recorded traffic from an exported event log (`omniroute store export`), to replay
through a different strategy or team.

Each line of the file is `{"seq": N, "event": EVENT}`, the event as
`omniroute.events.encode` writes it. From it we take, per contact:

* the arrival: `InteractionQueued` (time, queue, channel, extra skills, priority);
* the handle time: the time it was assigned to an agent, from each `Assigned` to the
  `Completed`, `Transferred` or `Requeued` that ended that agent's part (a contact never
  completed in the log gets one of the recorded handle times of its queue and channel,
  drawn at random; failing those, of the whole log);
* the patience: a customer who abandoned waited exactly as long as they were willing
  to. For the others we only know they would have waited longer than they did, so
  patience is taken as exponential with the mean that best explains the queue's
  abandons (total time waited by all its contacts / number of abandons, the maximum
  likelihood estimate with censored observations): their recorded wait plus an
  exponential draw (for a contact the system closed, the wait until it closed). A queue
  without abandons has patient customers.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

import msgspec

from .. import events as ev
from .traffic import Arrival, Kind

__all__ = ["ReplayError", "read_arrivals"]


class ReplayError(ValueError):
    """The log cannot be replayed; the message names the file and line."""


class _Line(msgspec.Struct):
    seq: int
    event: ev.AnyEvent  # type: ignore[valid-type]


class _Recorded:
    __slots__ = ("answered", "at", "closed", "ended", "handle", "kind", "since", "waited")

    def __init__(self, at: float, kind: Kind) -> None:
        self.at = at
        self.kind = kind
        self.handle = 0.0
        self.since: float | None = None  # assigned at, while an agent holds it
        self.answered: float | None = None
        self.ended: float | None = None  # abandoned at
        self.closed: float | None = None  # closed by the system (max wait, hours) at
        self.waited = 0.0


def read_arrivals(
    path: str | os.PathLike[str], queues: Iterable[str], *, seed: int = 1
) -> tuple[list[Arrival], float, float]:
    """The recorded contacts as arrivals in time order, with the first arrival's time
    and the span of the arrivals. `queues` are the queues of the config: a contact of
    any other queue is an error."""
    known = set(queues)
    source = os.fspath(path)
    decoder = msgspec.json.Decoder(_Line)
    contacts: dict[str, _Recorded] = {}
    last = 0.0
    try:
        with Path(path).open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                if not raw.strip():
                    continue
                try:
                    event = decoder.decode(raw).event
                except msgspec.DecodeError as exc:
                    raise ReplayError(f"{source}: line {number}: {exc}") from None
                last = max(last, event.at)
                _apply(event, contacts, known, f"{source}: line {number}")
    except OSError as exc:
        raise ReplayError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if not contacts:
        raise ReplayError(f"{source}: no InteractionQueued event: nothing to replay")
    return _arrivals(contacts, last, seed, source)


def _apply(event: ev.Event, contacts: dict[str, _Recorded], known: set[str], where: str) -> None:
    tp = type(event)
    if tp is ev.InteractionQueued:
        ix = event.interaction  # type: ignore[attr-defined]
        if ix.queue not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ReplayError(f'{where}: queue "{ix.queue}" is not in the config (queues: {names})')
        kind: Kind = (ix.queue, ix.channel, tuple(sorted(ix.skills.items())), ix.priority)
        contacts.setdefault(ix.id, _Recorded(event.at, kind))
        return
    contact = contacts.get(getattr(event, "interaction_id", ""))
    if contact is None:
        return  # an event about a contact queued before the log starts
    if tp is ev.Assigned:
        contact.since = event.at
        if contact.answered is None:
            contact.answered = event.at
    elif tp is ev.Completed or tp is ev.Transferred or tp is ev.Requeued:
        if contact.since is not None:
            contact.handle += event.at - contact.since
            contact.since = None
    elif tp is ev.Abandoned and contact.answered is None:
        contact.ended = event.at
    elif tp is ev.Closed and contact.answered is None:
        contact.closed = event.at


def _arrivals(
    contacts: dict[str, _Recorded], last: float, seed: int, source: str
) -> tuple[list[Arrival], float, float]:
    handles: dict[tuple[str, str], list[float]] = {}
    everything: list[float] = []
    waited: dict[str, float] = {}
    abandons: dict[str, int] = {}
    for c in contacts.values():
        queue = c.kind[0]
        if c.handle > 0:
            handles.setdefault((queue, c.kind[1]), []).append(c.handle)
            everything.append(c.handle)
        stop = next((t for t in (c.answered, c.ended, c.closed) if t is not None), last)
        c.waited = max(0.0, stop - c.at)
        waited[queue] = waited.get(queue, 0.0) + c.waited
        if c.ended is not None:
            abandons[queue] = abandons.get(queue, 0) + 1
    if not everything:
        raise ReplayError(
            f"{source}: no contact was completed by an agent, so no handle time is known"
        )
    rng = random.Random(f"{seed}:replay")
    out: list[Arrival] = []
    for c in contacts.values():
        queue = c.kind[0]
        handle = c.handle
        if handle <= 0:
            handle = rng.choice(handles.get((queue, c.kind[1])) or everything)
        patience: float | None = None
        if c.ended is not None:
            patience = c.waited
        elif abandons.get(queue):
            patience = c.waited + rng.expovariate(abandons[queue] / max(waited[queue], 1e-9))
        out.append((c.at, c.kind, handle, patience))
    out.sort(key=lambda a: a[0])
    first = out[0][0]
    return out, first, out[-1][0] - first

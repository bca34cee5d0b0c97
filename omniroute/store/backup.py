"""The event log as JSON lines, for backups and analysis, with any store.

One line per event, exactly `{"seq": N, "event": {...}}`: `seq` is the event's sequence
number in the log it came from, `event` the event as `omniroute.events.encode` writes
it (with its `type` tag). The simulator's `--replay` reads the same format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from typing import IO

import msgspec

from .. import events as ev
from .base import Store, StoreError

__all__ = ["BackupError", "Line", "export_lines", "import_lines", "parse_lines", "parse_time"]


class Line(msgspec.Struct, forbid_unknown_fields=True):
    """One line of an export."""

    seq: int
    event: ev.AnyEvent  # type: ignore[valid-type]


_decoder = msgspec.json.Decoder(Line)


class BackupError(ValueError):
    """An import file is wrong; the message names the line and what is wrong with it."""


def parse_time(text: str) -> float:
    """An ISO date or date-time as epoch seconds; without an offset it is UTC.

    Raises ValueError saying what was expected.
    """
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not an ISO date or date-time (2026-11-23, 2026-11-23T08:30, '
            "2026-11-23T08:30:00+01:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


async def export_lines(
    store: Store, since: float | None = None, until: float | None = None
) -> AsyncIterator[bytes]:
    """Lines (with their newline) for events with `since <= at < until`, in log order."""
    encode = ev.encode
    async for seq, event in store.read():
        if (since is None or event.at >= since) and (until is None or event.at < until):
            yield b'{"seq":%d,"event":%s}\n' % (seq, encode(event))


def parse_lines(lines: Iterable[bytes | str], source: str) -> list[ev.Event]:
    """Every event of an export, checked; BackupError at the first bad line.

    Lines must decode, and `seq` must increase from line to line. Blank lines are
    skipped.
    """
    events: list[ev.Event] = []
    last = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise BackupError(f"{source}:{number}: {_lower_first(str(exc))}") from None
        if line.seq <= last:
            raise BackupError(
                f"{source}:{number}: seq {line.seq} does not follow seq {last} "
                "(lines must be in log order)"
            )
        last = line.seq
        events.append(line.event)
    return events


async def import_lines(
    store: Store, file: IO[bytes], source: str, *, append: bool = False
) -> tuple[int, int]:
    """Append the events of an export to `store` in one batch (all or nothing).

    The store must be empty unless `append`; events get the store's next sequence
    numbers (an import into an empty store of a whole export keeps its numbers).
    Returns (events imported, last seq). Raises BackupError or StoreError.
    """
    before = await store.last_seq()
    if before and not append:
        raise StoreError(
            f"the store already holds {before} events; import into an empty store, "
            "or pass --append to add these after them"
        )
    events = parse_lines(file, source)
    return len(events), await store.append(events)


def _lower_first(text: str) -> str:
    text = text.replace("`", "").replace(" - at $.", " at ").replace(" - at $", "")
    return text[:1].lower() + text[1:]

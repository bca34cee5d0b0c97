"""Opening hours of a queue: weekly ranges in a time zone, minus holidays.

The SLA clock of a queue with hours counts only open seconds, so a chat that arrives at
night is not "late" when the team starts at nine.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..model import Hours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HORIZON_DAYS = 400  # a calendar with no opening within this is treated as never open


def parse_range(text: str) -> tuple[dt.timedelta, dt.timedelta]:
    """ "09:00-17:30" -> offsets from midnight; "24:00" ends a day. Raises ValueError."""
    try:
        start_s, end_s = (part.strip() for part in text.split("-"))
        start, end = _clock(start_s), _clock(end_s)
    except ValueError:
        raise ValueError(f'expected a range like "09:00-17:30", got "{text}"') from None
    if not start < end:
        raise ValueError(f'range "{text}" ends before it starts')
    return start, end


def _clock(text: str) -> dt.timedelta:
    hours, minutes = text.split(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(text)
    return dt.timedelta(hours=h, minutes=m)


class Calendar:
    """Answers "open now?", "when does that change?" and "how many open seconds?"."""

    def __init__(self, hours: Hours) -> None:
        self.zone = ZoneInfo(hours.timezone)
        self.weekly = {
            DAYS.index(day): sorted(parse_range(r) for r in ranges)
            for day, ranges in hours.weekly.items()
        }
        self.holidays = {dt.date.fromisoformat(d) for d in hours.holidays}
        self._day = lru_cache(maxsize=64)(self._day_intervals)

    def _day_intervals(self, day: dt.date) -> tuple[tuple[float, float], ...]:
        if day in self.holidays:
            return ()
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
        out = []
        for start, end in self.weekly.get(day.weekday(), ()):
            # Through naive wall time so a DST day keeps its printed hours.
            s = (midnight.replace(tzinfo=None) + start).replace(tzinfo=self.zone)
            e = (midnight.replace(tzinfo=None) + end).replace(tzinfo=self.zone)
            out.append((s.timestamp(), e.timestamp()))
        return tuple(out)

    def _intervals(self, t: float) -> Iterator[tuple[float, float]]:
        day = dt.datetime.fromtimestamp(t, self.zone).date() - dt.timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            for start, end in self._day(day):
                if end > t:
                    yield start, end
            day += dt.timedelta(days=1)

    def is_open(self, t: float) -> bool:
        for start, _end in self._intervals(t):
            return start <= t
        return False

    def next_change(self, t: float) -> float:
        """When the queue next opens or closes after `t` (inf if never)."""
        for start, end in self._intervals(t):
            return end if start <= t else start
        return math.inf

    def open_seconds(self, a: float, b: float) -> float:
        """Open seconds between `a` and `b`."""
        if b <= a:
            return 0.0
        total = 0.0
        for start, end in self._intervals(a):
            if start >= b:
                break
            total += min(end, b) - max(start, a)
        return total

    def after_open(self, a: float, seconds: float) -> float:
        """The moment when `seconds` open seconds have passed since `a` (inf if never)."""
        left = seconds
        for start, end in self._intervals(a):
            start = max(start, a)
            if end - start >= left:
                return start + left
            left -= end - start
        return math.inf

    def last_close(self, t: float) -> float:
        """When the queue last closed at or before `t` (-inf if not within a week)."""
        day = dt.datetime.fromtimestamp(t, self.zone).date() - dt.timedelta(days=8)
        last = -math.inf
        for _ in range(9):
            for _start, end in self._day(day):
                if end <= t:
                    last = max(last, end)
            day += dt.timedelta(days=1)
        return last

    def local_date(self, t: float) -> dt.date:
        return dt.datetime.fromtimestamp(t, self.zone).date()

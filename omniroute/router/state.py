"""The router's live records: agents' status, waiting interactions, and the indexes that
make a routing decision cost the same with 100 agents or 10,000.

Agents with identical skills (and queue membership) form a `Profile`; interactions with
the same queue, channel and requirement share a `Bucket`. Eligibility is computed once
per (bucket, profile) pair, not per agent. Heaps use lazy deletion: an entry carries the
`version` of its record at push time and is ignored once the record has changed.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..model import Agent, Interaction, Presence, SlaMeasure

if TYPE_CHECKING:
    from ..model import Queue
    from .hours import Calendar
    from .strategy import Strategy

SkillKey = tuple[tuple[str, int], ...]
OFFLINE: Final = Presence.OFFLINE  # constants: an enum member costs a lookup (core.py)
READY: Final = Presence.READY
_NONE: Final[list[Any]] = []  # the lists of a record not set yet: never changed in place


def skill_key(skills: Mapping[str, int]) -> SkillKey:
    """A hashable, canonical form of a skill map."""
    return tuple(sorted(skills.items()))


class AgentStatus:
    """One agent at run time: presence, load per channel and the counters strategies read."""

    __slots__ = (
        "answered",
        "config",
        "exclusive",
        "exclusive_load",
        "free",
        "id",
        "idle_since",
        "load",
        "missed_in_row",
        "offers",
        "ordinal",
        "presence",
        "profile",
        "pushed",
        "reason",
        "reserved",
        "state_since",
        "talk_time",
        "total_capacity",
        "total_load",
        "version",
        "work",
    )

    def __init__(self, config: Agent, ordinal: int, now: float) -> None:
        self.id = config.id
        self.config = config
        self.ordinal = ordinal
        self.presence = OFFLINE
        self.reason: str | None = None
        self.state_since = now
        self.exclusive = frozenset(config.exclusive)
        self.load: dict[str, int] = dict.fromkeys(config.capacity, 0)
        self.total_capacity = sum(config.capacity.values())
        self.total_load = 0
        self.exclusive_load = 0
        self.idle_since = now
        self.answered = 0
        self.talk_time = 0.0
        self.missed_in_row = 0
        self.version = 0
        self.pushed = -1  # the version last pushed into the profile's heaps
        self.offers: dict[str, Any] = {}  # offer id -> PendingOffer
        self.work: set[str] = set()  # interactions assigned or in wrap-up
        self.reserved: list[Waiting] = []  # waiting for this agent as their preferred one
        self.profile: Profile | None = None
        self.free: list[str] = []  # channels it could take at the last change

    @property
    def skills(self) -> Mapping[str, int]:
        return self.config.skills

    @property
    def capacity(self) -> Mapping[str, int]:
        return self.config.capacity

    def can_take(self, channel: str) -> bool:
        """Ready, room on this channel, and nothing exclusive in the way."""
        if self.presence is not READY:
            return False
        if self.load.get(channel, 0) >= self.config.capacity.get(channel, 0):
            return False
        if channel in self.exclusive:
            return self.total_load == 0
        return self.exclusive_load == 0

    @property
    def activity(self) -> str:
        """What a wallboard shows: offline, not_ready, ready (idle), busy."""
        if self.presence is not READY:
            return self.presence.value
        return "busy" if self.total_load else "ready"


class Profile:
    """Agents with the same skills and queue membership: one eligibility check for all."""

    __slots__ = ("agents", "dirty", "free", "heap_index", "heaps", "id", "queues", "skills")

    def __init__(self, pid: int, skills: Mapping[str, int], queues: tuple[str, ...] | None):
        self.id = pid
        self.skills = dict(skills)
        self.queues = frozenset(queues) if queues is not None else None
        self.agents: dict[str, AgentStatus] = {}
        # channel -> [(strategy, heap of (key, ordinal, version, agent))], made when a
        # match first needs one; agents who changed since wait in `dirty` until the next.
        self.heaps: dict[str, list[tuple[Any, list[Any]]]] = {}
        self.dirty: list[AgentStatus] = []
        self.heap_index: dict[tuple[str, Any], list[Any]] = {}
        self.free: dict[str, int] = {}  # channel -> agents who can take one now

    def qualifies(self, queue: str, requirement: Mapping[str, int]) -> bool:
        if self.queues is not None and queue not in self.queues:
            return False
        skills = self.skills
        return all(skills.get(s, 0) >= lvl for s, lvl in requirement.items())


class Timer:
    """A timer: at `due`, call `fn(arg)`. `seq` is the order it was armed in: timers due
    at the same moment fire in that order. In the router's heap, `fn` None marks a lane
    (`arg`), whose head's deadline and order the entry carries (`Router._at`)."""

    __slots__ = ("arg", "due", "fn", "seq")

    def __init__(self, due: float, seq: int, fn: Any, arg: Any) -> None:
        self.due = due
        self.seq = seq
        self.fn = fn
        self.arg = arg


def before(a: Timer, b: Timer) -> bool:
    return a.due < b.due or (a.due == b.due and a.seq < b.seq)


def heap_push(heap: list[Timer], timer: Timer) -> None:
    """`heapq.heappush` for timers, compared natively by (due, seq)."""
    heap.append(timer)
    pos = len(heap) - 1
    while pos > 0:
        up = (pos - 1) >> 1
        parent = heap[up]
        if not before(timer, parent):
            break
        heap[pos] = parent
        pos = up
    heap[pos] = timer


def heap_sift(heap: list[Timer], pos: int) -> None:
    """Move the timer at `pos` down to its place (its key grew, or it was put there)."""
    n = len(heap)
    timer = heap[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        other = child + 1
        if other < n and before(heap[other], heap[child]):
            child = other
        low = heap[child]
        if not before(low, timer):
            break
        heap[pos] = low
        pos = child
    heap[pos] = timer


def heap_pop(heap: list[Timer]) -> Timer:
    """Take out the first timer (`heapq.heappop`)."""
    last = heap.pop()
    if not heap:
        return last
    top = heap[0]
    heap[0] = last
    heap_sift(heap, 0)
    return top


def heap_make(heap: list[Timer]) -> None:
    """`heapq.heapify` for timers."""
    for pos in range(len(heap) // 2 - 1, -1, -1):
        heap_sift(heap, pos)


class Lanes:
    """FIFO timer lanes of one queue: in each, deadlines come in non-decreasing order.

    Two lanes hold the records themselves instead of a `Timer` each: `sla` the queue's
    waiting contacts (`Waiting`: deadline `sla_deadline`, order `sla_seq`), `offer` its
    pending offers (`PendingOffer`: `expires_at`, `seq`). The others hold Timers."""

    __slots__ = ("ladder", "max_wait", "offer", "preferred", "sla", "wrap")

    def __init__(self, rungs: int) -> None:
        self.sla: deque[Any] = deque()
        self.offer: deque[Any] = deque()
        self.wrap: deque[Any] = deque()
        self.preferred: deque[Any] = deque()
        self.max_wait: deque[Any] = deque()
        self.ladder: list[deque[Any]] = [deque() for _ in range(rungs)]


class QueueRuntime:
    """A configured queue with its strategy instance, calendar, timers and today's KPIs."""

    __slots__ = (
        "aging",
        "calendar",
        "channels",
        "closed_since",
        "config",
        "first_response",
        "ladder",
        "lanes",
        "max_wait",
        "name",
        "offer_timeout",
        "on_offer",
        "plain_buckets",
        "plain_requirements",
        "preferred_agent_wait",
        "priority",
        "sla_seconds",
        "stats",
        "stats_until",
        "strategy",
        "waiting",
        "wrap_up",
    )

    def __init__(self, config: Queue, strategy: Strategy, calendar: Calendar | None) -> None:
        self.name = config.name
        self.strategy = strategy
        self.on_offer = offer_hook(strategy)
        self.calendar = calendar
        self.set_config(config)
        self.waiting: dict[str, Waiting] = {}  # waiting or offered, by interaction id
        self.plain_buckets: dict[str, Bucket] = {}  # channel -> bucket of its own skills
        self.lanes = Lanes(len(config.escalation))
        self.stats: Any = None  # QueueKpis of the current day, kept by the router
        self.stats_until = float("-inf")
        self.closed_since = float("-inf")  # when the queue last closed (opening hours)

    def set_config(self, config: Queue) -> None:
        """Take a (new) config, and copy the fields the router reads on every contact
        into native attributes: from compiled code a msgspec Struct's field is a generic
        attribute lookup (docs/performance.md)."""
        self.config = config
        self.ladder = config.escalation
        self.plain_requirements = [(self, config.skills)]  # shared: Router._set_requirements
        self.channels = config.channels
        self.offer_timeout = float(config.offer_timeout)
        self.wrap_up = float(config.wrap_up)
        self.max_wait = float(config.max_wait or 0)
        self.preferred_agent_wait = float(config.preferred_agent_wait)
        self.aging = float(config.aging)
        self.priority = config.priority
        self.sla_seconds = float(config.sla.seconds)
        self.first_response = config.sla.measure is SlaMeasure.FIRST_RESPONSE


def offer_hook(strategy: Strategy) -> Callable[[AgentStatus], None] | None:
    """The strategy's `on_offer`, or None when it is `BaseStrategy`'s, which does nothing
    (most strategies): one call fewer per offer."""
    from .strategy import BaseStrategy

    if getattr(type(strategy), "on_offer", None) is BaseStrategy.on_offer:
        return None
    return strategy.on_offer


class Bucket:
    """Interactions waiting in one queue, on one channel, for one requirement."""

    __slots__ = (
        "alone",
        "channel",
        "group_keys",
        "heap",
        "last_key",
        "last_seq",
        "profiles",
        "pull_note",
        "queue",
        "requirement",
        "tail",
        "tail_versions",
    )

    def __init__(self, queue: QueueRuntime, channel: str, requirement: Mapping[str, int]):
        self.queue = queue
        self.channel = channel
        self.requirement = dict(requirement)
        # The line. Arrivals come in order (same priority), so most go to the end of
        # `tail` in O(1): the contact itself, and in `tail_versions` its `version` then
        # (an entry whose contact changed since is stale, dropped when reached). No
        # tuple per arrival: with 50,000 waiting, each would be one more object for the
        # garbage collector to scan (docs/performance.md). `last_key`, `last_seq`: the
        # place in line of the last one put in `tail`. One that goes back to an
        # earlier place (a decline, a priority, an escalation) goes to `heap`, as an
        # entry (order key, arrival seq, version, waiting).
        self.tail: deque[Waiting] = deque()
        self.tail_versions: deque[int] = deque()
        self.last_key = 0.0
        self.last_seq = 0
        self.heap: list[tuple[float, int, int, Waiting]] = []
        self.profiles: list[Profile] = []  # eligible profiles, kept by the router
        self.group_keys: dict[int, Any] = {}  # profile id -> strategy.group_key
        self.pull_note: str | None = None  # shared by every agent-free decision here
        self.alone = [self]  # the `buckets` of the interactions that wait only here

    def push(self, w: Waiting, version: int) -> None:
        """Put `w` in line at its place (`order_key`, `seq`), as it is at `version`."""
        key, seq = w.order_key, w.seq
        tail = self.tail
        if not tail or self.last_key < key or (self.last_key == key and self.last_seq <= seq):
            tail.append(w)
            self.tail_versions.append(version)
            self.last_key, self.last_seq = key, seq
        else:
            heapq.heappush(self.heap, (key, seq, version, w))

    def _drop_stale_tail(self) -> None:
        tail, versions = self.tail, self.tail_versions
        while tail:
            if tail[0].version == versions[0]:
                return
            tail.popleft()
            versions.popleft()

    def head(self) -> Waiting | None:
        """The first live interaction, dropping stale entries on the way."""
        self._drop_stale_tail()
        tail, heap = self.tail, self.heap
        while heap:
            _, _, version, w = heap[0]
            if w.version == version:
                break
            heapq.heappop(heap)
        if heap:
            if not tail:
                return heap[0][3]
            first = tail[0]
            top = heap[0]
            if top[0] < first.order_key or (top[0] == first.order_key and top[1] < first.seq):
                return top[3]
        return tail[0] if tail else None

    def pop(self) -> tuple[Waiting, int] | None:
        """Take out the first entry, live or not, as (waiting, version then)."""
        self._drop_stale_tail()  # a live one's place is its contact's (order_key, seq)
        tail, heap = self.tail, self.heap
        if heap:
            first = tail[0] if tail else None
            top = heap[0]
            if first is None or (
                top[0] < first.order_key or (top[0] == first.order_key and top[1] < first.seq)
            ):
                heapq.heappop(heap)
                return top[3], top[2]
        if not tail:
            return None
        w = tail.popleft()
        return w, self.tail_versions.popleft()


class Waiting:
    """Routing state of one interaction that is not yet assigned (or went back)."""

    __slots__ = (
        "aging",
        "answered",
        "assigned_at",
        "breached",
        "buckets",
        "closed_handled",
        "declined",
        "enqueued_at",
        "id",
        "ix",
        "ladder_index",
        "ladder_seq",
        "maxed",
        "offers",
        "order_key",
        "preferred_until",
        "queue",
        "rank",
        "relax",
        "requirements",
        "segment_start",
        "seq",
        "sla_deadline",
        "sla_queue",
        "sla_seq",
        "version",
    )

    def __init__(self, ix: Interaction, queue: QueueRuntime, seq: int) -> None:
        self.ix = ix
        self.id = ix.id
        self.queue = queue
        self.seq = seq
        self.enqueued_at = ix.enqueued_at
        self.segment_start = self.enqueued_at
        self.order_key = 0.0
        self.sla_deadline = 0.0
        self.sla_seq = 0  # its SLA timer's arming order: the record is the timer (Lanes)
        # The queue whose SLA the contact is measured by: the one it arrived in. A
        # transfer to another queue keeps that deadline, measure and service level.
        self.sla_queue = queue
        self.version = 0
        # Set by the router (`_set_requirements`); no list of its own until then.
        self.buckets: list[Bucket] = _NONE
        self.requirements: list[tuple[QueueRuntime, dict[str, int]]] = _NONE
        self.relax = 0
        self.ladder_index = 0
        self.ladder_seq = 0  # the arming order of its pending escalation timer, 0: none
        self.breached = False
        self.answered = ix.answered_at is not None
        self.declined: set[str] | None = None
        # agent id -> offer id, while it has offers: made at the first (most contacts
        # wait with none, and are offered to one agent at a time).
        self.offers: dict[str, str] | None = None
        self.preferred_until = 0.0
        self.assigned_at = 0.0
        self.maxed = False  # on_max_wait applied for this segment
        self.closed_handled = float("-inf")  # when the closed action last applied
        self.rank = 0  # queue priority + interaction priority, set when (re)queued
        self.aging = 0.0  # the queue's aging, set when (re)queued

    @property
    def priority(self) -> int:
        return self.ix.priority


class PendingOffer:
    """An offer waiting for its agent's answer; in its queue's offer lane, its own
    time-out timer (`Lanes`)."""

    __slots__ = ("agent", "channel", "expires_at", "id", "seq", "waiting")

    def __init__(self, oid: str, waiting: Waiting, agent: AgentStatus, expires_at: float):
        self.id = oid
        self.waiting = waiting
        self.agent = agent
        self.channel = waiting.ix.channel
        self.expires_at = expires_at
        self.seq = 0  # its time-out's arming order

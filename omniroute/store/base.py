"""What the app needs from an event log, whatever holds it (memory, SQLite, PostgreSQL).

The log is the single source of truth: routing state is rebuilt from it after a restart,
and KPIs, QA and reports are folds over it. So the contract is small and strict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from ..events import Event

__all__ = ["Purging", "SchemaError", "Store", "StoreError"]


class StoreError(Exception):
    """The store cannot do what was asked (closed, unreachable, full); says which and why."""


class SchemaError(StoreError):
    """The database's schema is not one this code can use: newer than it knows (upgrade
    omniroute), older and not yet migrated (`omniroute store migrate`), or not omniroute's.
    The message names both versions."""


@runtime_checkable
class Store(Protocol):
    """An append-only log of events, numbered in the order they were appended.

    Rules every implementation keeps:

    * Durability: when `append` returns, its events are committed: they survive a
      `kill -9` of this process and, as far as the backend promises it, a power loss
      (SQLite: WAL with synchronous=FULL; PostgreSQL: a committed transaction). Never
      return before that, never acknowledge from a cache.
    * Acknowledge only after durable: a channel tells its sender "accepted" (SMTP 250,
      HTTP 201, a Telegram update offset) only after the append holding its interaction
      returned; `App.submit` returns exactly then. An error from `append` means nothing
      may be acknowledged: the sender retries, and the app stops (fail-stop).
    * Order: sequence numbers are positive and strictly increasing in append order; a
      batch is stored whole or not at all, and `read` returns events in that order.
    * One writer: appends come from one app (the routing leader), serialised by it, so
      a store need not order concurrent appends; it may batch them (group commit).
      A store whose class sets `pipelined = True` promises more, and the app then
      calls `append` again before the previous call returned: it commits appends in
      the order they were called (a later one never before an earlier one), and after
      a failed append it refuses every later one.
    """

    async def append(self, events: Sequence[Event]) -> int:
        """Store `events` durably, in order; return the sequence number of the last one.

        An empty batch stores nothing and returns `last_seq()`. Raises StoreError.
        """
        ...

    def read(self, since: int = 0) -> AsyncIterator[tuple[int, Event]]:
        """(sequence number, event) for every event numbered above `since`, in order."""
        ...

    async def last_seq(self) -> int:
        """The sequence number of the last stored event; 0 when the log is empty."""
        ...

    async def save_snapshot(self, seq: int, data: bytes) -> None:
        """Keep `data`, the router's state after event `seq`, durably.

        Restart loads the newest snapshot and replays only the events after it, so that
        it does not replay the whole history. `data` is opaque to the store; older
        snapshots may be dropped once a newer one is durable.
        """
        ...

    async def load_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot as (seq, data), or None when there is none."""
        ...

    async def close(self) -> None:
        """Release connections and files; later calls raise StoreError. Idempotent."""
        ...


@runtime_checkable
class Purging(Protocol):
    """A store that can apply retention (`omniroute store purge`, `retention_days`)."""

    async def purge(self, before: float) -> int:
        """Replace message bodies of events that happened before `before` (epoch seconds)
        with markers, as `omniroute.store.retention.purge_bodies` does; return how many
        events changed. Every event stays, so state and KPIs rebuild as before."""
        ...

"""KPIs as folds over events, with the definitions practitioners use.

Service level counts abandoned contacts against the queue: SL = answered within the
threshold / (answered + abandoned). "Within" means before the threshold passed (wait < T),
the very moment the router records an SlaBreached event, so the two never disagree.
Waits are measured on the queue's SLA clock, which pauses outside opening hours.

Outbound contacts (an agent calls a customer) never wait in a queue, so they stay out
of every inbound figure (offered, answered, service level, ASA, abandons, AHT): they
have counters of their own, `outbound`, `outbound_completed`, `outbound_handle_time`
and `outbound_outcomes` (how they ended: "answered", "no-answer", "busy"...).
"""

from __future__ import annotations

import msgspec


class QueueKpis(msgspec.Struct, kw_only=True):
    """One queue over one period (the router keeps one for "today")."""

    queue: str
    period: str = ""  # e.g. the local date "2026-11-23"
    threshold: float = 20.0  # the SLA seconds
    target: float = 0.8
    offered: int = 0  # entered the queue
    answered: int = 0
    answered_within: int = 0  # answered within `threshold`
    abandoned: int = 0
    abandoned_within: int = 0  # abandoned before `threshold` ("short abandons")
    closed: int = 0  # ended by the system: after hours, max wait
    completed: int = 0
    wait_answered: float = 0.0  # sum of waits of answered contacts
    wait_abandoned: float = 0.0
    handle_time: float = 0.0  # talk + wrap-up of completed contacts
    max_wait: float = 0.0
    breached: int = 0  # SLA breach events
    outbound: int = 0  # contacts agents started (never in the inbound figures above)
    outbound_completed: int = 0
    outbound_handle_time: float = 0.0  # talk + wrap-up of completed outbound contacts
    outbound_outcomes: dict[str, int] = {}  # outcome -> completed outbound contacts

    # -- folds -------------------------------------------------------------------
    def on_offered(self) -> None:
        self.offered += 1

    def on_answered(self, wait: float) -> None:
        self.answered += 1
        self.wait_answered += wait
        if wait < self.threshold:
            self.answered_within += 1
        if wait > self.max_wait:
            self.max_wait = wait

    def on_abandoned(self, wait: float) -> None:
        self.abandoned += 1
        self.wait_abandoned += wait
        if wait < self.threshold:
            self.abandoned_within += 1
        if wait > self.max_wait:
            self.max_wait = wait

    def on_completed(self, handle: float) -> None:
        self.completed += 1
        self.handle_time += handle

    def on_outbound_completed(self, handle: float, outcome: str | None) -> None:
        self.outbound_completed += 1
        self.outbound_handle_time += handle
        key = outcome or "unknown"
        self.outbound_outcomes[key] = self.outbound_outcomes.get(key, 0) + 1

    # -- figures -----------------------------------------------------------------
    @property
    def service_level(self) -> float | None:
        """Answered within T over answered + abandoned; None before any contact ended."""
        base = self.answered + self.abandoned
        return self.answered_within / base if base else None

    @property
    def asa(self) -> float | None:
        """Average speed of answer: mean wait of answered contacts."""
        return self.wait_answered / self.answered if self.answered else None

    @property
    def awt(self) -> float | None:
        """Average waiting time of all contacts that stopped waiting (answered or abandoned)."""
        n = self.answered + self.abandoned
        return (self.wait_answered + self.wait_abandoned) / n if n else None

    @property
    def abandon_rate(self) -> float | None:
        """Abandoned over all contacts that stopped waiting."""
        n = self.answered + self.abandoned
        return self.abandoned / n if n else None

    @property
    def aht(self) -> float | None:
        """Average handle time: talk plus wrap-up of completed (inbound) contacts."""
        return self.handle_time / self.completed if self.completed else None

    @property
    def outbound_aht(self) -> float | None:
        """Average handle time of completed outbound contacts."""
        n = self.outbound_completed
        return self.outbound_handle_time / n if n else None

    def summary(self) -> dict[str, object]:
        """Counters plus the derived figures, for the API and the wallboard."""
        out = msgspec.structs.asdict(self)
        out.update(
            service_level=self.service_level,
            asa=self.asa,
            awt=self.awt,
            abandon_rate=self.abandon_rate,
            aht=self.aht,
            outbound_aht=self.outbound_aht,
        )
        return out

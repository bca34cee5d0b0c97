"""The router: skill-based matching, strategies, offers, SLA timers and escalation."""

from __future__ import annotations

from .core import Router, RouterError, SnapshotError
from .strategy import BaseStrategy, QueueSelector, QueueSelectorSpec, Strategy, StrategySpec

__all__ = [
    "BaseStrategy",
    "QueueSelector",
    "QueueSelectorSpec",
    "Router",
    "RouterError",
    "SnapshotError",
    "Strategy",
    "StrategySpec",
]

"""omniroute: the routing heart of a contact center.

Plugin authors need only this module: `hookimpl` to mark implementations, and the
records their hooks yield.
"""

from __future__ import annotations

import pluggy

from . import native  # noqa: F401  # first: it decides whether compiled modules load
from .model import Agent, Customer, Identity, Interaction, Message, Queue
from .router.strategy import BaseStrategy, QueueSelectorSpec, StrategySpec
from .specs import (
    AwardSpec,
    ChannelSpec,
    ConfigSpec,
    ReportSpec,
    RouteSpec,
    Score,
    ScorerSpec,
)

__version__ = "0.1.0.dev0"

hookimpl = pluggy.HookimplMarker("omniroute")

__all__ = [
    "Agent",
    "AwardSpec",
    "BaseStrategy",
    "ChannelSpec",
    "ConfigSpec",
    "Customer",
    "Identity",
    "Interaction",
    "Message",
    "Queue",
    "QueueSelectorSpec",
    "ReportSpec",
    "RouteSpec",
    "Score",
    "ScorerSpec",
    "StrategySpec",
    "__version__",
    "hookimpl",
]

"""`omniroute simulate`: a day of synthetic (or replayed) traffic through the real
router, strategies and plugins on a virtual clock, and the KPIs it produced.

`scenario` (the `[simulation]` Structs) is imported by the config loader, so this
package imports the rest lazily: reading a config never loads the simulator.
"""

from __future__ import annotations

from typing import Any

from .scenario import AgentGroup, Distribution, DistributionKind, Simulation, Traffic

__all__ = [
    "AgentGroup",
    "Distribution",
    "DistributionKind",
    "Result",
    "Simulation",
    "Traffic",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in ("Result", "run"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

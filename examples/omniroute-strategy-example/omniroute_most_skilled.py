"""The `most-skilled` routing strategy: an example omniroute plugin.

Offer each interaction to the agent with the highest total proficiency in the skills it
requires; among equally skilled agents, to the one idle the longest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from omniroute import BaseStrategy, StrategySpec, hookimpl


class MostSkilled(BaseStrategy):
    """Highest sum of required skill levels first, then longest idle.

    `group_key` is computed once per group of agents with identical skills and
    `agent_key` per agent; the router offers to the lowest (group_key, agent_key).
    """

    name = "most-skilled"

    def group_key(self, skills: Mapping[str, int], requirement: Mapping[str, int]) -> Any:
        return -sum(skills.get(skill, 0) for skill in requirement)

    def agent_key(self, agent: Any) -> Any:
        return agent.idle_since


# The strategy keeps no state, so every queue can share one instance.
_STRATEGY = MostSkilled()


@hookimpl
def omniroute_strategies() -> Iterator[StrategySpec]:
    yield StrategySpec(
        name=MostSkilled.name,
        factory=lambda queue, routing: _STRATEGY,
        description="Highest total level in the required skills, then longest idle.",
    )

"""How a plugin author tests a strategy, with the fixtures omniroute gives pytest."""

from types import SimpleNamespace

import omniroute_most_skilled

from omniroute import Queue, StrategySpec
from omniroute.model import Routing


def test_strategy_is_registered(plugin_host, register_plugin):
    register_plugin(omniroute_most_skilled)

    spec = plugin_host.strategies()["most-skilled"]

    assert isinstance(spec, StrategySpec)
    assert spec.factory(Queue(name="support"), Routing()).name == "most-skilled"


def test_more_skilled_first_then_longest_idle():
    strategy = omniroute_most_skilled.MostSkilled()
    requirement = {"billing": 2, "french": 1}
    # A stand-in with just what the strategy reads: skills (through the router's group
    # key) and idle_since.
    agents = [
        SimpleNamespace(id="novice", skills={"billing": 2, "french": 1}, idle_since=10.0),
        SimpleNamespace(id="expert", skills={"billing": 5, "french": 4}, idle_since=50.0),
        SimpleNamespace(id="rested", skills={"billing": 4, "french": 4}, idle_since=20.0),
        SimpleNamespace(id="tired", skills={"billing": 3, "french": 5}, idle_since=30.0),
    ]

    ranked = sorted(
        agents,
        key=lambda a: (strategy.group_key(a.skills, requirement), strategy.agent_key(a)),
    )

    assert [a.id for a in ranked] == ["expert", "rested", "tired", "novice"]


def test_skills_outside_the_requirement_do_not_count():
    strategy = omniroute_most_skilled.MostSkilled()

    assert strategy.group_key({"billing": 3, "german": 5}, {"billing": 1}) == -3

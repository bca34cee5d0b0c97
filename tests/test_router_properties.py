"""Random command sequences against the router: what must hold after every step.

A hypothesis state machine drives one router (several queues and strategies, escalation
ladders, max-wait actions, preferred agents, opening hours that open and close) with
submits, answers to offers, ends of work, transfers, presence changes and clock jumps,
and checks after every step that nothing is assigned twice, nothing is lost, capacity
holds and no ready agent idles while something they could take waits.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from routerkit import (
    CHANNELS,
    SKILLS,
    Kit,
    check_invariants,
    check_reads,
    could_take,
    idle_violations,
    ix,
    scenario_config,
)

from omniroute.model import Agent, InteractionState, Presence
from omniroute.router.core import RouterError

S = InteractionState
QUEUE_CHANNELS = {"sales": ("voice", "webchat"), "support": CHANNELS, "vip": ("voice",)}
QUEUE_CHANNELS["night"] = ("webchat", "email")
CUSTOMERS = ("c1", "c2", "c3")

SETTINGS = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class RouterMachine(RuleBasedStateMachine):
    """One router and the log of everything it emitted."""

    def __init__(self) -> None:
        super().__init__()
        queues, agents, routing = scenario_config()
        self.agent_ids = [a.id for a in agents]
        self.queue_names = [q.name for q in queues]
        self.kit = Kit(queues, agents, routing=routing, ready=["ana", "ben", "cid"])
        self.router = self.kit.router
        self.submitted: list[str] = []
        self.count = 0

    # ------------------------------------------------------------------ helpers
    def _ids(self, *states: InteractionState) -> list[str]:
        return sorted(i for i, w in self.router.active.items() if w.ix.state in states)

    # ------------------------------------------------------------------ rules
    @rule(
        data=st.data(),
        queue=st.sampled_from(["sales", "support", "vip", "night"]),
        priority=st.integers(0, 3),
        skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=1),
        customer=st.none() | st.sampled_from(CUSTOMERS),
        preferred=st.none() | st.sampled_from(["ana", "ben", "cid", "dee", "eve"]),
    )
    def submit(
        self,
        data: Any,
        queue: str,
        priority: int,
        skills: dict[str, int],
        customer: str | None,
        preferred: str | None,
    ) -> None:
        channel = data.draw(st.sampled_from(QUEUE_CHANNELS[queue]), label="channel")
        self.count += 1
        iid = f"i{self.count}"
        self.router.submit(
            ix(
                iid,
                queue,
                channel,
                customer=customer,
                priority=priority,
                skills=skills,
                preferred_agent=preferred,
            )
        )
        self.submitted.append(iid)

    @rule(data=st.data(), accept=st.booleans())
    def answer_offer(self, data: Any, accept: bool) -> None:
        offers = sorted(self.router.offers)
        if not offers:
            return
        oid = data.draw(st.sampled_from(offers), label="offer")
        if accept:
            self.router.accept(oid)
        else:
            self.router.decline(oid)

    @rule(data=st.data())
    def accept_offer(self, data: Any) -> None:
        offers = sorted(self.router.offers)
        if offers:
            self.router.accept(data.draw(st.sampled_from(offers), label="offer"))

    @rule(data=st.data())
    def complete(self, data: Any) -> None:
        assigned = self._ids(S.ASSIGNED)
        if assigned:
            self.router.complete(data.draw(st.sampled_from(assigned), label="assigned"))

    @rule(data=st.data(), what=st.sampled_from(["complete", "requeue", "to_agent", "to_queue"]))
    def end_work(self, data: Any, what: str) -> None:
        assigned = self._ids(S.ASSIGNED)
        if not assigned:
            return
        iid = data.draw(st.sampled_from(assigned), label="assigned")
        if what == "complete":
            self.router.complete(iid)
        elif what == "requeue":
            self.router.requeue(iid)
        elif what == "to_agent":
            holder = self.router.active[iid].ix.agent
            others = [a for a in self.agent_ids if a != holder and a in self.router.agents]
            self.router.transfer(iid, to_agent=data.draw(st.sampled_from(others)))
        else:
            w = self.router.active[iid]
            targets = [
                q for q in self.queue_names if q != w.ix.queue and w.ix.channel in QUEUE_CHANNELS[q]
            ]
            if targets:
                self.router.transfer(iid, to_queue=data.draw(st.sampled_from(targets)))

    @rule(data=st.data())
    def end_wrap_up(self, data: Any) -> None:
        ids = self._ids(S.WRAP_UP)
        if ids:
            self.router.end_wrap_up(data.draw(st.sampled_from(ids), label="wrap-up"))

    @rule(data=st.data(), callback=st.booleans())
    def customer_leaves(self, data: Any, callback: bool) -> None:
        ids = self._ids(S.WAITING, S.OFFERED)
        if not ids:
            return
        iid = data.draw(st.sampled_from(ids), label="waiting")
        if callback:
            self.router.request_callback(iid, "+351000")
        else:
            self.router.abandon(iid)

    @rule(data=st.data())
    def supervisor_assigns(self, data: Any) -> None:
        ids = self._ids(S.WAITING)
        if not ids:
            return
        iid = data.draw(st.sampled_from(ids), label="waiting")
        channel = self.router.active[iid].ix.channel
        free = [a.id for a in self.router.agents.values() if a.can_take(channel)]
        if free:
            self.router.assign(iid, data.draw(st.sampled_from(sorted(free)), label="agent"))

    @rule(
        agent=st.sampled_from(["ana", "ben", "cid", "dee", "eve"]),
        presence=st.sampled_from(list(Presence)),
    )
    def presence(self, agent: str, presence: Presence) -> None:
        if agent in self.router.agents:
            reason = "break" if presence is Presence.NOT_READY else None
            self.router.set_presence(agent, presence, reason)

    @rule(
        agent=st.sampled_from(["ana", "ben", "cid", "dee", "eve"]),
        skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=3),
    )
    def reconfigure(self, agent: str, skills: dict[str, int]) -> None:
        if agent in self.router.agents:
            old = self.router.agents[agent].config
            new = Agent(
                id=agent,
                skills=skills,
                capacity=dict(old.capacity),
                exclusive=list(old.exclusive),
                queues=old.queues,
            )
            self.router.upsert_agent(new)

    @rule(seconds=st.one_of(st.floats(0.5, 12), st.integers(13, 200)))
    def time_passes(self, seconds: float) -> None:
        self.kit.clock.advance(seconds)
        self.router.advance()

    @rule()
    def bad_command(self) -> None:
        with pytest.raises(RouterError):
            self.router.accept("o-none")

    # ------------------------------------------------------------------ invariants
    @invariant()
    def consistent(self) -> None:
        self.kit.drain()
        check_invariants(self.router, self.kit.log, self.submitted)

    @invariant()
    def reads_agree(self) -> None:
        check_reads(self.router)
        for a in self.router.agents.values():
            for channel in CHANNELS:
                assert a.can_take(channel) == could_take(self.router, a.id, channel)

    @invariant()
    def no_ready_agent_idles(self) -> None:
        self.kit.drain()
        assert idle_violations(self.router, self.kit.log) == []


RouterMachine.TestCase.settings = SETTINGS
test_router_state_machine = RouterMachine.TestCase

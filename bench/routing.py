"""Routing decisions per second, with 10,000 agents in 200 skill profiles and 50,000
interactions waiting: arrivals, accepts and completions mixed, on a virtual clock.

Each cycle one customer arrives, one agent accepts their offer and one agent completes
a contact (their wrap-up ends later and frees them for the next). Timers are real: offer
time-outs, wrap-ups, SLA breaches and escalation steps fire as the clock moves.

A *decision* is the router settling who gets what: an offer made (to a freed agent, or
to a free agent on arrival), or an arrival queued because no matching agent was free.
The time counted is all the time spent in router calls (arrivals, accepts, completions,
timers), divided by the decisions made.

Prints figures for a small (100 agents) and a large contact center, then the last line
`routing: N decisions/s, p99 X us, growth Y, peak M MB`: p99 is the latency of one
router call, growth the cost per decision of the large center over the small one's,
measured in the same run, and peak the process's peak resident memory.

Each center is measured in `--rounds` rounds (a fresh router each time), alternating
small and large, and the best round of each counts, as in `bench simulate`: the large
center's decisions wait on memory more than on the interpreter, so other processes on
the machine (which share its caches and memory bandwidth) slow some rounds by a quarter
or more; `routing-rounds:` prints every round, so the spread stays in view.

`--snapshot` prints instead the size and encode/load time of a router snapshot of the
large center, and the speed of a full replay of the log that built it.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import time
from collections import deque

from omniroute.clock import VirtualClock
from omniroute.events import Offered
from omniroute.model import Agent, EscalationStep, Interaction, Presence, Queue
from omniroute.router.core import Router
from omniroute.router.selectors import PrioritySlaWait
from omniroute.router.strategies import omniroute_strategies

SKILLS = [f"s{i}" for i in range(20)]
STRATEGIES = ["longest-idle", "fewest-answered", "best-skill", "load-balance", "round-robin"]
CHANNELS = ["voice", "webchat"]


def build(n_agents: int, n_profiles: int, seed: int) -> tuple[Router, VirtualClock, list[Queue]]:
    rng = random.Random(seed)
    queues = [
        Queue(
            name=f"q{i}",
            skills={SKILLS[i]: 2},
            strategy=STRATEGIES[i % len(STRATEGIES)],
            wrap_up=2,
            offer_timeout=30,
            escalation=[EscalationStep(after=600, relax=1)] if i % 2 else [],
        )
        for i in range(len(SKILLS))
    ]
    profiles = []
    for _ in range(n_profiles):
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, 3)}
        profiles.append(skills)
    agents = [
        Agent(
            id=f"a{i}",
            skills=profiles[i % n_profiles],
            capacity={"voice": 1, "webchat": 3},
        )
        for i in range(n_agents)
    ]
    clock = VirtualClock(1_800_000_000)
    router = Router(
        queues=queues,
        agents=agents,
        clock=clock,
        strategies={s.name: s for s in omniroute_strategies()},
        selector=PrioritySlaWait(),
    )
    return router, clock, queues


def run(n_agents: int, n_waiting: int, n_ops: int, seed: int = 1) -> dict[str, float]:
    gc.collect()  # the previous round's router (a cycle: its bound timer handlers) goes now
    rng = random.Random(seed)
    router, clock, queues = build(n_agents, min(200, n_agents), seed)
    offered_now = False
    names = [q.name for q in queues]
    counter = 0

    def contact() -> Interaction:
        nonlocal counter
        counter += 1
        return Interaction(
            id=f"i{counter}",
            channel=CHANNELS[counter % 2],
            queue=names[rng.randrange(len(names))],
        )

    # The backlog built up over the last 15 minutes, as it would in a busy center.
    fill_step = 900.0 / max(1, n_waiting)
    for _ in range(n_waiting):
        clock.advance(fill_step)
        router.submit(contact())
    for agent_id in list(router.agents):
        router.set_presence(agent_id, Presence.READY)
    router.drain()

    # Warm up: every agent accepts the offer they got when they logged in.
    assigned: list[str] = []
    for oid in list(router.offers):
        assigned.append(router.offers[oid].waiting.id)
        router.accept(oid)
    for e in router.drain():
        if type(e) is Offered:  # chat agents take more than one at once
            assigned.append(router.offers[e.offer_id].waiting.id)
            router.accept(e.offer_id)
    router.drain()
    pending: deque[str] = deque()
    step = 40.0 / n_agents  # virtual seconds per operation: a busy center of this size
    offers = 0
    decisions = 0
    latencies: list[int] = []
    total = 0
    gc.collect()
    gc.freeze()
    perf = time.perf_counter_ns
    randrange = rng.randrange
    # Steady state: each cycle one customer arrives, one agent accepts an offer, and one
    # agent completes a contact (whose wrap-up ends later and frees them).
    for i in range(n_ops):
        clock.advance(step)
        kind = i % 3
        # Prepare the call outside the timed region: only the router's work is counted.
        new: Interaction | None = None
        target: str | None = None
        if kind == 0:
            new = contact()
        elif kind == 1:
            offer = None
            while pending and offer is None:
                offer = router.offers.get(pending.popleft())
                if offer is not None and offer.expires_at <= clock.now():
                    offer = None  # it timed out: the router re-offers it
            if offer is not None:
                target = offer.id
                assigned.append(offer.waiting.id)
        elif assigned:
            j = randrange(len(assigned))
            assigned[j], assigned[-1] = assigned[-1], assigned[j]
            target = assigned.pop()
        t0 = perf()
        if new is not None:
            router.submit(new)
        elif target is None:
            router.advance()
        elif kind == 1:
            router.accept(target)
        else:
            router.complete(target)
        dt = perf() - t0
        total += dt
        latencies.append(dt)
        offered_now = False
        for e in router.drain():
            if type(e) is Offered:
                offers += 1
                pending.append(e.offer_id)
                offered_now = True
        if kind == 0 and not offered_now:
            decisions += 1  # the decision to queue: nobody matching was free
    decisions += offers  # each offer is a decision
    gc.unfreeze()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] / 1000
    return {
        "offers": offers,
        "decisions": decisions,
        "seconds": total / 1e9,
        "per_s": decisions / (total / 1e9),
        "cost_us": total / 1000 / max(1, decisions),
        "p99_us": p99,
        "waiting": sum(1 for w in router.active.values() if w.ix.state.value == "waiting"),
    }


def snapshot_figures(n_agents: int, n_waiting: int, n_ops: int, seed: int = 1) -> None:
    """Snapshot size and encode/load time for the large state, and the speed of a full
    replay of the log that built it (what a restart without a snapshot costs)."""
    router, clock, queues = build(n_agents, min(200, n_agents), seed)
    rng = random.Random(seed)
    names = [q.name for q in queues]
    log = []
    fill_step = 900.0 / max(1, n_waiting)
    for n in range(n_waiting):
        clock.advance(fill_step)
        router.submit(Interaction(id=f"i{n}", channel=CHANNELS[n % 2], queue=names[n % 20]))
    for agent_id in list(router.agents):
        router.set_presence(agent_id, Presence.READY)
    log.extend(router.drain())
    assigned: list[str] = []
    pending: deque[str] = deque(router.offers)
    step = 40.0 / n_agents
    for i in range(n_ops):  # the bench's steady state, as in `run`
        clock.advance(step)
        if i % 3 == 0:
            router.submit(Interaction(id=f"n{i}", channel=CHANNELS[i % 2], queue=names[i % 20]))
        elif i % 3 == 1:
            while pending:
                offer = router.offers.get(pending.popleft())
                if offer is not None:
                    assigned.append(offer.waiting.id)
                    router.accept(offer.id)
                    break
        elif assigned:
            j = rng.randrange(len(assigned))
            assigned[j], assigned[-1] = assigned[-1], assigned[j]
            router.complete(assigned.pop())
        for e in router.drain():
            log.append(e)
            if type(e) is Offered:
                pending.append(e.offer_id)
    perf = time.perf_counter
    t0 = perf()
    data = router.snapshot()
    encoded = perf() - t0
    waiting = sum(1 for w in router.active.values() if w.ix.state.value == "waiting")

    def fresh() -> Router:
        again, again_clock, _ = build(n_agents, min(200, n_agents), seed)
        again_clock.advance(clock.now() - again_clock.now())
        again.now = clock.now()
        return again

    again = fresh()
    t0 = perf()
    again.rebuild([], snapshot=data)
    loaded = perf() - t0
    replay = fresh()
    t0 = perf()
    replay.rebuild(log)
    replayed = perf() - t0
    print(
        f"snapshot: {n_agents} agents, {len(router.active)} active ({waiting} waiting), "
        f"{len(data) / 1e6:.1f} MB, encode {encoded:.2f} s, load {loaded:.2f} s"
    )
    print(
        f"replay: {len(log)} events in {replayed:.2f} s, {len(log) / replayed:.0f} events/s "
        f"(1,000,000 events: {1e6 / (len(log) / replayed):.1f} s)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench routing")
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--waiting", type=int, default=50_000)
    parser.add_argument("--ops", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each; the best counts")
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="instead: snapshot size and encode/load time, and full-replay speed",
    )
    args = parser.parse_args(argv)
    if args.snapshot:
        snapshot_figures(args.agents, args.waiting, args.ops)
        return 0
    small_agents = 100
    smalls, larges = [], []
    for _ in range(max(1, args.rounds)):
        smalls.append(run(small_agents, args.waiting * small_agents // args.agents, args.ops))
        larges.append(run(args.agents, args.waiting, args.ops))
    small = min(smalls, key=lambda r: r["cost_us"])
    large = min(larges, key=lambda r: r["cost_us"])
    print(
        "routing-rounds: small "
        + " / ".join(f"{r['per_s']:.0f}" for r in smalls)
        + ", large "
        + " / ".join(f"{r['per_s']:.0f}" for r in larges)
        + " decisions/s"
    )
    print(
        f"routing-small: {small_agents} agents, {small['decisions']} decisions "
        f"({small['offers']} offers), "
        f"{small['per_s']:.0f} decisions/s, p99 {small['p99_us']:.1f} us"
    )
    print(
        f"routing-large: {args.agents} agents, {large['decisions']} decisions "
        f"({large['offers']} offers), "
        f"{large['waiting']} still waiting, {large['per_s']:.0f} decisions/s, "
        f"p99 {large['p99_us']:.1f} us"
    )
    growth = large["cost_us"] / small["cost_us"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"routing: {large['per_s']:.0f} decisions/s, p99 {large['p99_us']:.0f} us, "
        f"growth {growth:.2f}, peak {peak:.0f} MB"
    )
    return 0

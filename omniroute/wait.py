"""The expected wait of a contact in line, for what a channel tells a waiting customer
("your place in line is 3, the expected wait is 4 minutes").

The estimator is the position-based one ACDs announce. The contact at place k is taken
once k agents serving its queue have freed up in turn. Its queue is served by agents who
are ready, qualify for it, and have room for its channel: together `c` places (the sum
of their capacities on the channel). A place frees when a contact ends, on average every
AHT / c seconds, where AHT is the queue's average handle time today (talk plus wrap-up of
completed contacts, from the router's KPIs). So

    expected wait = k * AHT / c

It needs history and staff: with no contact completed today, or nobody ready to serve
the queue, there is no honest figure and the estimate is None (say the place only). It
ignores callers ahead who will give up (it errs long, which customers forgive) and
agents who log in or out meanwhile; it is recomputed at each announcement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import InteractionState, Presence

if TYPE_CHECKING:
    from .router.core import Router

__all__ = ["estimate", "expected_wait", "serving_places"]


def expected_wait(position: int, handle_time: float | None, places: int) -> float | None:
    """Seconds a contact at `position` (1-based) can expect to wait, or None when there is
    no basis for a figure (no average handle time yet, nobody serving)."""
    if position < 1 or handle_time is None or handle_time <= 0 or places < 1:
        return None
    return position * handle_time / places


def serving_places(router: Router, queue: str, channel: str, skills: dict[str, int]) -> int:
    """Contacts on `channel` that ready agents qualified for `queue` (its skills plus
    `skills`) can hold at once: busy or not, they are the ones who will free up."""
    config = router.queues[queue].config
    requirement = {**config.skills, **skills}
    places = 0
    for agent in router.agents.values():
        profile = agent.profile
        if agent.presence is not Presence.READY or profile is None:
            continue
        if profile.qualifies(queue, requirement):
            places += agent.config.capacity.get(channel, 0)
    return places


def estimate(router: Router, interaction_id: str) -> float | None:
    """The expected wait of a waiting interaction in seconds (None: no honest figure,
    or it is no longer waiting)."""
    ix = router.interaction(interaction_id)
    if ix.state is not InteractionState.WAITING:
        return None
    kpis = router.queue_stats(ix.queue)
    handle = kpis.handle_time / kpis.completed if kpis.completed else None
    places = serving_places(router, ix.queue, ix.channel, ix.skills)
    return expected_wait(router.position(interaction_id), handle, places)

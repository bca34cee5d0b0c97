"""Who receives which live event: ownership followed through offers, requeues,
transfers and wrap-up, and nothing kept once an interaction is over."""

from __future__ import annotations

from typing import Any

from omniroute import events as ev
from omniroute.model import Message
from omniroute.web.hub import EventHub


class _NoApp:
    router: Any = None


def message(interaction_id: str) -> ev.MessageAdded:
    m = Message(id="m", interaction_id=interaction_id, sender="customer", text="hi")
    return ev.MessageAdded(at=0.0, message=m)


def test_ownership_follows_the_interaction() -> None:
    hub = EventHub(_NoApp())  # type: ignore[arg-type]
    concerned = hub._concerned
    assert concerned(
        ev.Offered(at=0, offer_id="o1", interaction_id="i", agent_id="ana", expires_at=9)
    ) == {"ana"}
    assert concerned(ev.Assigned(at=1, interaction_id="i", agent_id="ana")) == {"ana"}
    assert concerned(message("i")) == {"ana"}
    assert concerned(ev.Requeued(at=2, interaction_id="i", agent_id="ana", reason="r")) == {"ana"}
    assert concerned(message("i")) == set()  # ana no longer holds it
    concerned(ev.Assigned(at=3, interaction_id="i", agent_id="bob"))
    assert concerned(message("i")) == {"bob"}
    concerned(ev.Transferred(at=4, interaction_id="i", from_agent="bob", to_agent="cy"))
    assert concerned(message("i")) == {"cy"}
    concerned(ev.Completed(at=5, interaction_id="i", agent_id="cy", wrap_up_until=9))
    assert concerned(message("i")) == {"cy"}  # still shown during wrap-up
    assert concerned(ev.WrapUpEnded(at=6, interaction_id="i", agent_id="cy")) == {"cy"}
    assert concerned(message("i")) == set()
    assert hub._owners == {}  # nothing kept for a finished interaction


def test_a_declined_offer_leaves_nothing_behind() -> None:
    hub = EventHub(_NoApp())  # type: ignore[arg-type]
    hub._concerned(
        ev.Offered(at=0, offer_id="o1", interaction_id="i", agent_id="ana", expires_at=9)
    )
    hub._concerned(ev.OfferDeclined(at=1, offer_id="o1", interaction_id="i", agent_id="ana"))
    hub._concerned(ev.Abandoned(at=2, interaction_id="i"))
    assert hub._owners == {}

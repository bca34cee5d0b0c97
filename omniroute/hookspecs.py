"""Every hook omniroute calls, in one file: the plugin API at a glance.

Two kinds of hook:

* Registration hooks are synchronous and return (or yield) typed records from
  `omniroute.specs`; the host collects them from every plugin and rejects duplicates.
* Notification hooks tell plugins what happened. They may be `async def`: the host
  awaits the result, off the routing hot path. A plugin that raises is logged with its
  name and, after repeated failures, disabled; routing never stops for it.

No hook uses `firstresult`: an async implementation returning None would still stop
the chain, because a coroutine is not None. Where one answer is wanted the host takes
the first non-None result after awaiting each in turn.

Arguments are passed by name; an implementation may accept any subset of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pluggy

from . import events as ev
from .model import Customer, Identity, Interaction
from .specs import (
    AwardSpec,
    ChannelSpec,
    ConfigSpec,
    ControlSpec,
    QueueSelectorSpec,
    ReportSpec,
    RouteSpec,
    Score,
    ScorerSpec,
    StrategySpec,
)

hookspec = pluggy.HookspecMarker("omniroute")

# ------------------------------------------------------------------ registration


@hookspec
def omniroute_strategies() -> Iterable[StrategySpec]:
    """Routing strategies this plugin provides, chosen per queue by `strategy = "name"`."""


@hookspec
def omniroute_queue_selectors() -> Iterable[QueueSelectorSpec]:
    """Policies that pick which queue a freed agent serves next (`[routing] queue_selection`)."""


@hookspec
def omniroute_channels() -> Iterable[ChannelSpec]:
    """Channel adapters this plugin provides (voice, email, web chat, Telegram...), and
    the actions any node may ask of them (`ChannelSpec.actions`, `App.channel_call`)."""


@hookspec
def omniroute_config_sections() -> Iterable[ConfigSpec]:
    """Config sections this plugin reads: `[plugins.<section>]` decodes into a Struct."""


@hookspec
def omniroute_web_routes() -> Iterable[RouteSpec]:
    """Extra HTTP or WebSocket routes to mount in the web app."""


@hookspec
def omniroute_controls() -> Iterable[ControlSpec]:
    """Buttons the inbox and the wallboard show on a channel's live interactions (hold a
    call, listen to it...), each sending a request to one of this plugin's routes."""


@hookspec
def omniroute_qa_scorers() -> Iterable[ScorerSpec]:
    """Automatic QA scorers run on every completed interaction."""


@hookspec
def omniroute_reports() -> Iterable[ReportSpec]:
    """Reports that can be built on demand or on a schedule (and sent by email)."""


# ------------------------------------------------------------------ app lifecycle


@hookspec
def omniroute_startup(app: Any) -> Any:
    """The app has started: a place to open connections. May be async."""


@hookspec
def omniroute_shutdown(app: Any) -> Any:
    """The app is stopping: close what `omniroute_startup` opened. May be async."""


# ------------------------------------------------------------------ notifications


@hookspec
def omniroute_event(event: ev.Event, app: Any) -> Any:
    """Every event, after it is durable in the store. May be async."""


@hookspec
def omniroute_interaction_queued(event: ev.InteractionQueued, app: Any) -> Any:
    """A new interaction entered a queue. May be async."""


@hookspec
def omniroute_interaction_offered(event: ev.Offered, app: Any) -> Any:
    """An interaction was offered to an agent: ring their phone, show it in their inbox."""


@hookspec
def omniroute_interaction_assigned(event: ev.Assigned, app: Any) -> Any:
    """An agent accepted: the channel connects the customer and the agent. May be async."""


@hookspec
def omniroute_interaction_outbound(event: ev.OutboundStarted, app: Any) -> Any:
    """An agent started an outbound contact (`event.interaction.address` on its channel):
    the channel reaches the customer (places the call). May be async."""


@hookspec
def omniroute_interaction_transferred(event: ev.Transferred, app: Any) -> Any:
    """An interaction moved to another agent or queue. May be async."""


@hookspec
def omniroute_interaction_abandoned(event: ev.Abandoned, app: Any) -> Any:
    """The customer left before an agent answered. May be async."""


@hookspec
def omniroute_interaction_completed(event: ev.Completed, app: Any) -> Any:
    """The contact ended and wrap-up began. May be async."""


@hookspec
def omniroute_sla_at_risk(event: ev.SlaAtRisk, app: Any) -> Any:
    """An escalation step asked to alert supervisors. May be async."""


@hookspec
def omniroute_sla_breached(event: ev.SlaBreached, app: Any) -> Any:
    """An interaction waited past its queue's SLA threshold. May be async."""


@hookspec
def omniroute_agent_state_changed(event: ev.AgentStateChanged, app: Any) -> Any:
    """An agent became ready, not ready (with a reason) or offline. May be async."""


# ------------------------------------------------------------------ answers


@hookspec
def omniroute_customer_lookup(identity: Identity, interaction: Interaction | None) -> Any:
    """Find or enrich the customer behind an identity (CRM screen pop).

    Return a `Customer`, None, or an awaitable of either; the first Customer wins.
    """


@hookspec
def omniroute_qa_score(interaction: Interaction, events: list[ev.Event]) -> Any:
    """Score one completed interaction: return a `Score`, None, or an awaitable of either."""


@hookspec
def omniroute_award(event: ev.Event, app: Any) -> Any:
    """Gamification: return `AwardSpec`s (or an awaitable of a list) earned by this event."""


__all__ = [
    "AwardSpec",
    "ChannelSpec",
    "ConfigSpec",
    "ControlSpec",
    "Customer",
    "QueueSelectorSpec",
    "ReportSpec",
    "RouteSpec",
    "Score",
    "ScorerSpec",
    "StrategySpec",
    "hookspec",
]

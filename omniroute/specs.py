"""Typed records that registration hooks yield, and the small protocols behind them.

A plugin says what it provides by yielding these from a hook; the host decides order,
rejects duplicates with a clear error, and builds the objects when it needs them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from .router.strategy import QueueSelectorSpec, StrategySpec

if TYPE_CHECKING:
    from .model import Interaction, Message

__all__ = [
    "AwardSpec",
    "Channel",
    "ChannelSpec",
    "ConfigSpec",
    "ControlField",
    "ControlSpec",
    "QueueSelectorSpec",
    "ReportSpec",
    "RouteSpec",
    "Score",
    "ScorerSpec",
    "StrategySpec",
]


class Channel(Protocol):
    """A channel adapter: owns a transport, never routing.

    `run` receives contacts and hands them to the app (`app.submit(...)`) until cancelled.
    `deliver` sends an agent's message to the customer.

    Several nodes: every node runs the channel; `deliver` runs on the node that took the
    agent's request. A channel whose customers hold a connection to one node (web chat)
    delivers from the committed events instead (`app.subscribe()` sees each
    `MessageAdded` on every node) and makes `deliver` do nothing.

    Acknowledge only after durable: tell the sender "accepted" (SMTP 250, HTTP 201,
    advancing the Telegram update offset, answering a call) only after `await
    app.submit(...)` returned, because that is when the interaction is committed to the
    store and survives a crash. Never acknowledge before, from a buffer, or when
    `submit` raised: then the sender must retry (SMTP 4xx, HTTP 503, offset kept), and a
    contact is never lost between "accepted" and the log.
    """

    name: str

    async def run(self, app: Any) -> None: ...

    async def deliver(self, interaction: Interaction, message: Message) -> None: ...


class ChannelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by `omniroute_channels`. `factory(config, app)` builds the adapter; `config`
    is the plugin's decoded `[plugins.NAME]` section (or None).

    `leader_only`: on several nodes, run the adapter's `run` (its receiving side) only
    on the node that routes, for as long as it does (it is cancelled when the node stops
    leading, and called again if it leads again): for a channel that polls one shared
    source (an IMAP mailbox, Telegram long polling). Its `deliver` works on every node.
    On one node it changes nothing.

    `actions`: what web routes (any node's) may ask of the running adapter, by name:
    `async def action(adapter, *, field: type, ...) -> answer`, run by
    `app.channel_call(name, action, {"field": ...})` where the adapter runs (on the
    leader, for a leader-only channel: relayed there from a follower). Payload fields
    and the answer must be msgspec-encodable (they cross nodes as JSON); refuse with
    `omniroute.actions.ActionError(message, status)`. See docs/plugins.md.
    """

    name: str
    factory: Callable[[Any, Any], Channel]
    description: str = ""
    leader_only: bool = False
    actions: Mapping[str, Callable[..., Awaitable[Any]]] = {}


class ConfigSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by `omniroute_config_sections`: `[plugins.<section>]` decodes into `type`.

    `type` is a msgspec Struct; errors read `plugins.<section>.<field>: ...`.
    `check(settings, config)`, when given, returns what decoding cannot see (a queue the
    section names that the config lacks, an environment variable left empty) as errors
    naming their path; `omniroute check` and the start of `omniroute serve` run it, so a
    mistake is found before anything starts.
    """

    section: str
    type: type
    check: Callable[[Any, Any], Iterable[str]] | None = None


class RouteSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by `omniroute_web_routes`: an extra HTTP/WebSocket route under `path`.

    `endpoint` is an ASGI-style handler; `role` is the least role allowed
    ("public", "agent", "supervisor", "admin").
    """

    path: str
    endpoint: Callable[..., Any]
    methods: Sequence[str] = ("GET",)
    role: str = "agent"
    websocket: bool = False


ControlKind = Literal["agent", "queue", "number", "text", "choice", "me", "answer"]


class ControlField(msgspec.Struct, frozen=True, kw_only=True):
    """One field of a control's JSON body, and how the page fills it.

    `kind`: "agent", "queue", "number", "text" (typed in a box; an empty optional box is
    left out of the body), "choice" (picked from `choices`), "me" (the logged-in user's
    id, not shown), "answer" (not shown: field `name` of the last answer of control
    `source` on the same interaction, e.g. the channel a conference call added).
    """

    name: str
    kind: ControlKind
    label: str = ""
    required: bool = True
    choices: tuple[str, ...] = ()
    source: str = ""


class ControlSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by `omniroute_controls`: a button a page shows on a live interaction of
    `channel` (the interactions' `channel`, e.g. "voice") in one of `states`.

    The button sends `method path` (`{interaction_id}` filled in) with a JSON body of
    `fixed` and `fields`; `role` is the least role that sees it, and should match the
    route's own (the route still checks). `page`: "inbox" (the open conversation) or
    "wallboard" (each live interaction in "Waiting and live"). `name` is unique per
    channel; `after` shows the button only once control `after` has answered on that
    interaction (Complete after Consult). `done` is what the page says on success.
    `adapter`: the channel adapter (a `ChannelSpec` name) whose routes it calls; the
    control is offered only while the config enables it (`[plugins.NAME]`).

    `status`: where the page learns, when it opens an interaction (a reload, another
    tab or device), what this control started that still goes on: a GET path (holding
    `{interaction_id}`, same role) answering a JSON object of control names, each with
    an answer like the control's own (`{"consult": {"agent": "bob", "channel": ...}}`),
    or 204 when nothing goes on. The controls `after` one present show, with its answer
    for their "answer" fields; those after one absent hide. Controls sharing the path
    are asked once.
    """

    channel: str
    name: str
    page: Literal["inbox", "wallboard"]
    label: str
    path: str
    method: Literal["POST", "PUT", "DELETE"] = "POST"
    role: Literal["agent", "supervisor", "admin"] = "agent"
    fields: tuple[ControlField, ...] = ()
    fixed: dict[str, str] = {}
    states: tuple[str, ...] = ("assigned",)
    after: str = ""
    done: str = ""
    description: str = ""
    adapter: str = ""
    status: str = ""


class Score(msgspec.Struct, frozen=True, kw_only=True):
    """A QA result for one interaction: `value` out of `out_of` on a named scorecard."""

    scorecard: str
    value: float
    out_of: float = 100.0
    items: dict[str, float] = {}
    comment: str = ""


class ScorerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by `omniroute_qa_scorers`: scores completed interactions automatically."""

    name: str
    score: Callable[..., Score | Awaitable[Score | None] | None]
    description: str = ""


class AwardSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Returned by `omniroute_award`: points or a badge for an agent."""

    agent_id: str
    points: int = 0
    badge: str | None = None
    reason: str = ""


class ReportSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Yielded by `omniroute_reports`: a report that can be built over a time range."""

    name: str
    build: Callable[..., Any]
    description: str = ""

"""The hook implementations: the channel, its `[plugins.email]` section, and its routes
(attachments for those who may read the interaction; the outbox and the mails not
answered, for supervisors).

The channel runs on the routing leader only, and its outbox and its list of mails not
answered with it, so the supervisors' routes ask the channel for them through channel
actions (`app.channel_call`, docs/plugins.md), which any node relays to the leader:
they answer the leader's state from every node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from omniroute import hookimpl
from omniroute.actions import ActionError
from omniroute.specs import ChannelSpec, ConfigSpec, RouteSpec
from omniroute.web.api import readable

from .attachments import PREFIX, link
from .channel import EmailChannel, problems
from .outbox import Entry
from .settings import EmailSettings


@hookimpl
def omniroute_channels() -> Iterator[ChannelSpec]:
    yield ChannelSpec(
        name="email",
        factory=EmailChannel,
        description="email: an SMTP listener or IMAP mailboxes in, a durable outbox out",
        leader_only=True,  # one reader per mailbox and one sender per outbox
        actions={"outbox": outbox_entries, "retry": retry_mail, "ignored": ignored_mails},
    )


@hookimpl
def omniroute_config_sections() -> Iterator[ConfigSpec]:
    yield ConfigSpec(section="email", type=EmailSettings, check=problems)


@hookimpl
def omniroute_web_routes() -> Iterator[RouteSpec]:
    yield RouteSpec(path=PREFIX + "/{interaction_id}/{digest}/{name}", endpoint=_attachment)
    yield RouteSpec(path="/email/outbox", endpoint=_outbox, role="supervisor")
    yield RouteSpec(
        path="/email/outbox/{message}/retry", endpoint=_retry, methods=("POST",),
        role="supervisor",
    )  # fmt: skip
    yield RouteSpec(path="/email/ignored", endpoint=_ignored, role="supervisor")


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status, media_type="application/json")


def _channel(request: Request) -> EmailChannel | None:
    channel = request.scope["app"].state.omniroute.channels.get("email")
    return channel if isinstance(channel, EmailChannel) else None


async def _attachment(request: Request) -> Response:
    """One attachment, to whoever may read its interaction as the API decides
    (`readable`: an agent their own, and a reopened ticket's earlier mails too)."""
    channel = _channel(request)
    params = request.path_params
    interaction_id, digest, name = params["interaction_id"], params["digest"], params["name"]
    missing = _json({"error": "no such attachment"}, 404)
    if channel is None:
        return missing
    app = channel.app
    if readable(app, request.state.principal, interaction_id) is None:
        return missing
    wanted = link(interaction_id, digest, name)  # path parameters come decoded
    messages = app.conversations.messages(interaction_id)
    if not any(wanted in m.attachments for m in messages):
        return missing
    try:
        path = channel.files.path(digest)
    except ValueError:
        return missing
    if not path.exists():
        return missing
    # Always a download, never rendered: an HTML attachment must not run on our origin.
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=name,
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def _outbox(request: Request) -> Response:
    """Mails waiting to go out (queued, retrying with their last error, or failed)."""
    return _json(await _call(request, "outbox") if _channel(request) else [])


async def _retry(request: Request) -> Response:
    """Send a failed mail again."""
    if _channel(request) is None:
        return _json({"error": "no such mail in the outbox"}, 404)
    return _json(await _call(request, "retry", {"message": request.path_params["message"]}))


async def _ignored(request: Request) -> Response:
    """The most recent mails not answered (bounces, auto-replies...) and why."""
    return _json(await _call(request, "ignored") if _channel(request) else [])


async def _call(request: Request, action: str, payload: dict[str, Any] | None = None) -> Any:
    """An action of the channel, on the leader; its refusals (ActionError) and a leader
    out of reach (StoreError, 503) are answered by the route's guard."""
    return await request.scope["app"].state.omniroute.channel_call("email", action, payload)


# Channel actions: run on the node that runs the channel (the leader).


def _started(channel: EmailChannel) -> None:
    """Refuses while the channel has not folded the log yet (just after a start or a
    takeover), when its outbox would look empty."""
    if not channel.ready.is_set():
        raise ActionError("the email channel is starting; try again in a moment", 503)


async def outbox_entries(channel: EmailChannel) -> list[Entry]:
    """The outbox, oldest first."""
    _started(channel)
    return sorted(channel.outbox.entries.values(), key=lambda e: e.created_at)


async def retry_mail(channel: EmailChannel, *, message: str) -> Entry:
    """Send a mail of the outbox again (a repeat, as a relayed action may be, only
    queues it again, or finds it sent: 404)."""
    _started(channel)
    entry = await channel.outbox.retry(message)
    if entry is None:
        raise ActionError("no such mail in the outbox", 404)
    return entry


async def ignored_mails(channel: EmailChannel) -> list[dict[str, Any]]:
    """The most recent mails not answered, newest last."""
    _started(channel)
    return list(channel.ignored)

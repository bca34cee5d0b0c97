"""The hook implementations: the channel, its `[plugins.email]` section, and its routes
(attachments for those who may read the interaction; the outbox and the mails not
answered, for supervisors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from omniroute import hookimpl
from omniroute.specs import ChannelSpec, ConfigSpec, RouteSpec
from omniroute.web.api import readable

from .attachments import PREFIX, link
from .channel import EmailChannel, problems
from .settings import EmailSettings


@hookimpl
def omniroute_channels() -> Iterator[ChannelSpec]:
    yield ChannelSpec(
        name="email",
        factory=EmailChannel,
        description="email: an SMTP listener or IMAP mailboxes in, a durable outbox out",
        leader_only=True,  # one reader per mailbox and one sender per outbox
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
    channel = _channel(request)
    entries = list(channel.outbox.entries.values()) if channel else []
    return _json(sorted(entries, key=lambda e: e.created_at))


async def _retry(request: Request) -> Response:
    """Send a failed mail again."""
    channel = _channel(request)
    entry = await channel.outbox.retry(request.path_params["message"]) if channel else None
    if entry is None:
        return _json({"error": "no such mail in the outbox"}, 404)
    return _json(entry)


async def _ignored(request: Request) -> Response:
    """The most recent mails not answered (bounces, auto-replies...) and why."""
    channel = _channel(request)
    return _json(list(channel.ignored) if channel else [])

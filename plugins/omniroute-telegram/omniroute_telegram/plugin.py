"""The hook implementations: the channel, its `[plugins.telegram]` section, and its
routes: the webhook Telegram posts to, the files of conversations (behind the
interaction's own authorisation), and the outbox as supervisors see it.

The channel runs on the routing leader only, so the routes that need the running channel
(the webhook's updates, the outbox) ask it through channel actions (`app.channel_call`,
docs/plugins.md), which any node relays to the leader. The files are on disk under
`files`, which every node shares, so any node serves them itself."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from omniroute import hookimpl
from omniroute.actions import ActionError
from omniroute.model import TERMINAL_STATES
from omniroute.specs import ChannelSpec, ConfigSpec, RouteSpec
from omniroute.web.api import readable

from .channel import TelegramChannel, problems
from .files import FileTooLarge, original_name
from .outbox import Outgoing
from .settings import TelegramSettings

#: Telegram's updates are small; anything bigger is not one.
MAX_UPDATE = 1_000_000


@hookimpl
def omniroute_channels() -> Iterator[ChannelSpec]:
    yield ChannelSpec(
        name="telegram",
        factory=TelegramChannel,
        description="Telegram bot: customers' chats join the queue (polling or webhook)",
        leader_only=True,  # one poller per bot; the routing node sends and receives
        actions={"update": take_update, "outbox": outbox_items},
    )


@hookimpl
def omniroute_config_sections() -> Iterator[ConfigSpec]:
    yield ConfigSpec(section="telegram", type=TelegramSettings, check=problems)


@hookimpl
def omniroute_web_routes() -> Iterator[RouteSpec]:
    yield RouteSpec(path="/telegram/webhook", endpoint=_webhook, methods=("POST",), role="public")
    yield RouteSpec(path="/telegram/files/{interaction_id}/{name}", endpoint=_download)
    yield RouteSpec(path="/telegram/files/{interaction_id}", endpoint=_upload, methods=("POST",))
    yield RouteSpec(path="/telegram/outbox", endpoint=_outbox, role="supervisor")


def _channel(request: Request) -> TelegramChannel | None:
    channel: TelegramChannel | None = request.app.state.omniroute.channels.get("telegram")
    return channel


async def _webhook(request: Request) -> Response:
    """An update Telegram posts, to any node: the secret is checked here (a forgery is
    never relayed), the update is handed to the leader's channel, and its status answered
    (a leader out of reach: 503, and Telegram posts the update again)."""
    channel = _channel(request)
    if channel is None:  # not enabled: Telegram tries again
        return Response(status_code=503)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPDATE:
        return Response(status_code=413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPDATE:
            return Response(status_code=413)
    if not channel.authentic(request.headers.get("x-telegram-bot-api-secret-token")):
        return Response(status_code=403)
    app = request.app.state.omniroute
    payload = {"body": body.decode(errors="replace")}  # Telegram's updates are UTF-8 JSON
    return Response(status_code=await app.channel_call("telegram", "update", payload))


def _readable(request: Request, *, live: bool = False) -> str | Response:
    """The interaction id of the path, if the caller may read that conversation, as the
    API decides (`readable`: ended ones too, for the customer's history); `live` also
    asks that it has not ended (an upload is for a reply)."""
    app = request.app.state.omniroute
    interaction_id = str(request.path_params["interaction_id"])
    ix = readable(app, request.state.principal, interaction_id)
    if ix is None:
        return JSONResponse({"error": f'no conversation "{interaction_id}"'}, status_code=404)
    if live and ix.state in TERMINAL_STATES:
        return JSONResponse({"error": "the conversation is over"}, status_code=409)
    return interaction_id


async def _download(request: Request) -> Response:
    channel = _channel(request)
    allowed = _readable(request)
    if channel is None or isinstance(allowed, Response):
        return allowed if isinstance(allowed, Response) else Response(status_code=404)
    name = request.path_params["name"]
    path = channel.files.path(allowed, name)
    if path is None:
        return JSONResponse({"error": f'no file "{name}"'}, status_code=404)
    return FileResponse(
        path,
        filename=original_name(name),
        content_disposition_type="attachment",  # never rendered by the inbox's origin
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def _upload(request: Request) -> Response:
    """An agent's file for the customer: the body is the file, `?name=` its name.
    Answers `{"url": ...}` to put in a message's `attachments`."""
    channel = _channel(request)
    allowed = _readable(request, live=True)
    if channel is None or isinstance(allowed, Response):
        return allowed if isinstance(allowed, Response) else Response(status_code=404)
    name = request.query_params.get("name", "file")
    limit = channel.files.max_bytes
    content = b""
    async for chunk in request.stream():
        content += chunk
        if len(content) > limit:
            return JSONResponse({"error": f"files are limited to {limit} bytes"}, 413)
    try:
        url = await channel.files.save(allowed, name, content)
    except FileTooLarge as exc:
        return JSONResponse({"error": str(exc)}, status_code=413)
    return JSONResponse({"url": url}, status_code=201)


async def _outbox(request: Request) -> Response:
    """What the bot has not managed to send yet, with attempts and the last error."""
    if _channel(request) is None:
        return JSONResponse([])
    items = await request.app.state.omniroute.channel_call("telegram", "outbox")
    return JSONResponse(msgspec.to_builtins(items))


# Channel actions: run on the node that runs the channel (the leader).


class OutboxItem(msgspec.Struct, kw_only=True):
    """One thing the bot has not sent yet, as supervisors see it."""

    chat: int
    interaction: str | None
    message: str | None  # the agent's message, None for the bot's own lines
    since: float
    attempts: int
    error: str


async def take_update(channel: TelegramChannel, *, body: str) -> int:
    """An update posted to any node's webhook (its secret checked there): the status to
    answer. A repeat, as a relayed action may be, is recognised by its update id."""
    return await channel.receive(body.encode())


async def outbox_items(channel: TelegramChannel) -> list[OutboxItem]:
    """The outbox, oldest first per lane; refused while the channel starts (just after a
    start or a takeover, before it read back what was not sent)."""
    if not channel.ready.is_set():
        raise ActionError("the Telegram channel is starting; try again in a moment", 503)
    return [_item(item) for item in channel.outbox.pending()]


def _item(item: Outgoing) -> OutboxItem:
    return OutboxItem(
        chat=item.chat,
        interaction=item.interaction_id,
        message=item.message_id,
        since=item.since,
        attempts=item.attempts,
        error=item.error,
    )

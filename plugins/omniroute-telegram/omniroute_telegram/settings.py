"""`[plugins.telegram]`: the bot's token (by environment variable), how updates arrive,
which queue a chat joins, and the limits of the channel."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["TelegramSettings"]


class TelegramSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    #: The environment variable that holds the bot token BotFather gave (never the token).
    token_env: str = "TELEGRAM_BOT_TOKEN"
    #: "polling": omniroute asks Telegram for updates (works behind any firewall).
    #: "webhook": Telegram posts updates to `webhook_url` (needs a public HTTPS address).
    mode: Literal["polling", "webhook"] = "polling"
    #: The public URL of this server's `/telegram/webhook` (webhook mode).
    webhook_url: str | None = None
    #: The environment variable holding the webhook's secret token (webhook mode):
    #: 1-256 characters of A-Z, a-z, 0-9, _ and -.
    secret_env: str = "TELEGRAM_WEBHOOK_SECRET"
    #: The queue chats join when there is no topic menu.
    queue: str | None = None
    #: A menu (inline keyboard) of topics: label shown -> queue. Two or more ask first.
    topics: dict[str, str] = {}
    greeting: str = "Hello! An agent will be with you shortly."
    menu_text: str = "What is it about?"
    #: A conversation whose customer wrote nothing for this long ends (seconds).
    silence: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    #: The folder where files of conversations are kept (relative: to the working folder).
    files: str = "telegram-files"
    #: The largest file taken in either direction (Telegram bots may download 20 MB).
    max_file_bytes: Annotated[int, msgspec.Meta(gt=0)] = 20_000_000
    #: Long-polling: how long one getUpdates call waits for news (seconds).
    poll_timeout: Annotated[int, msgspec.Meta(ge=0, le=50)] = 30
    #: Tell a waiting customer their new place in line at most this often (seconds).
    position_every: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    #: The longest pause between two attempts to reach Telegram (seconds).
    max_backoff: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    #: After this many failed attempts to deliver an agent's message, the conversation
    #: says so (agents and supervisors see it); attempts go on.
    stuck_after: Annotated[int, msgspec.Meta(ge=1)] = 5
    #: The Bot API's addresses: change them for a self-hosted Bot API server.
    api_url: str = "https://api.telegram.org/bot"
    file_url: str = "https://api.telegram.org/file/bot"

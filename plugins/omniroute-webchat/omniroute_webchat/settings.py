"""`[plugins.webchat]`: topics a customer picks from, and the limits of the public socket."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["WebchatSettings"]


class WebchatSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    #: What the customer picks ("Billing") -> the queue it goes to ("billing"). One topic
    #: skips the question.
    topics: dict[str, str]
    greeting: str = "Hello! Tell us your name and what it is about."
    #: Pages allowed to open the chat (their Origin header); empty allows any page.
    allowed_origins: list[str] = []
    #: Longest message a customer may send, in characters.
    max_message: Annotated[int, msgspec.Meta(gt=0, le=100_000)] = 4000
    #: Messages a customer may send per minute (per connection).
    messages_per_minute: Annotated[int, msgspec.Meta(gt=0)] = 30
    #: Messages one chat may hold in all (a longer chat is refused: start a new one).
    messages_per_chat: Annotated[int, msgspec.Meta(gt=0)] = 1000
    #: Open chat connections allowed per client address.
    connections_per_address: Annotated[int, msgspec.Meta(gt=0)] = 20
    #: New chats allowed per client address per hour.
    chats_per_hour: Annotated[int, msgspec.Meta(gt=0)] = 30
    #: A waiting customer whose page stayed closed this long has abandoned (seconds).
    abandon_after: Annotated[float, msgspec.Meta(gt=0)] = 60.0

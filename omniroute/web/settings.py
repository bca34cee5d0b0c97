"""The `[server]` section: where the web API listens and who may use it.

Kept free of web imports so that `omniroute check` validates it without Starlette.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

__all__ = ["ROLE_RANK", "Role", "Server", "User"]


class Role(enum.StrEnum):
    """What a user may do; each role may do everything the ones before it may."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


#: agent < supervisor < admin
ROLE_RANK: dict[Role, int] = {Role.AGENT: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


class User(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Someone who logs in. A user with role "agent" is the agent of the same `id`.

    `password_hash` and `token_hashes` come from `omniroute passwd` (never the secret
    itself): a user logs in with their password, a program with one of its tokens.
    """

    id: Annotated[str, msgspec.Meta(min_length=1)]
    role: Role = Role.AGENT
    name: str | None = None
    password_hash: str | None = None
    token_hashes: list[str] = []


class Server(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """How `omniroute serve` listens, signs sessions and limits requests."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    #: Signs session tokens. Set it (e.g. "${OMNIROUTE_SECRET}") so that sessions survive
    #: a restart and work on every node; unset, each start makes a random one.
    secret: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    session_ttl: Annotated[float, msgspec.Meta(gt=0)] = 8 * 3600.0
    #: Largest request body accepted, in bytes.
    max_body: Annotated[int, msgspec.Meta(gt=0)] = 1_000_000
    #: Failed logins allowed per client address per minute, before 429.
    login_attempts: Annotated[int, msgspec.Meta(ge=1)] = 10
    users: list[User] = []

"""Who is calling: logins, session tokens, and the role check every endpoint makes.

A session is a token signed with `[server] secret` (itsdangerous), carrying the user id
and a random session id; it is sent as a Bearer token or in the `omniroute_session`
cookie that the pages use. The role is read from the config on every request, never
from the token, so demoting or removing a user takes effect at once. Logging out
revokes the session id until the token would have expired anyway, and closes the live
sockets of that session: at once on the node that served it, and on every other node of
a cluster when the logout's note (`session.revoked`, in the event log) reaches it. A
restart forgets revocations made before it: keep `session_ttl` short where that matters.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .. import events as ev
from .passwords import verify_password, verify_token
from .settings import ROLE_RANK, Role, Server, User

__all__ = ["COOKIE", "SESSION_REVOKED", "Auth", "Principal"]

COOKIE = "omniroute_session"
#: The kind of the Note a logout records, so every node of a cluster revokes the session.
SESSION_REVOKED = "session.revoked"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller of one request."""

    user: User
    session: str | None  # None when authenticated by an API token

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role

    def has(self, role: Role) -> bool:
        return ROLE_RANK[self.user.role] >= ROLE_RANK[role]


class Auth:
    """Checks passwords and tokens against `[server] users`, issues and reads sessions."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.users = {user.id: user for user in server.users}
        secret = server.secret or secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(secret, salt="omniroute-session")
        self._revoked: dict[str, float] = {}  # session id -> when its token expires
        # Login attempts in the last minute, by client address and by user id. An attempt
        # counts from the moment it starts, so parallel guesses cannot outrun the limit.
        self._attempts: dict[str, deque[float]] = {}
        self._logout_listeners: list[Callable[[str], None]] = []
        self._hashing: anyio.Semaphore | None = None

    @property
    def hashing(self) -> anyio.Semaphore:
        """Bounds the password checks running at once (made in the running loop)."""
        if self._hashing is None:
            self._hashing = anyio.Semaphore(4)
        return self._hashing

    # -- logging in ---------------------------------------------------------------
    def start_login(self, user_id: str, client: str) -> None:
        """Count a login attempt; raises TooManyAttempts when the address or the user
        tried too often in the last minute (checked before any hash is spent)."""
        now = time.monotonic()
        keys = (f"address:{client}", f"user:{user_id}")
        for key in keys:
            times = self._attempts.get(key)
            while times and times[0] < now - 60.0:
                times.popleft()
            if times is not None and len(times) >= self.server.login_attempts:
                raise TooManyAttempts(int(times[0] + 60.0 - now) + 1)
        for key in keys:
            self._attempts.setdefault(key, deque()).append(now)
        if len(self._attempts) > 10_000:  # forget addresses and users seen long ago
            self._attempts = {k: t for k, t in self._attempts.items() if t and t[-1] > now - 60}

    def check_password(self, user_id: str, password: str) -> User | None:
        """The user when the password is right (slow on purpose: run it in a thread)."""
        user = self.users.get(user_id)
        if user is None or not user.password_hash:
            verify_password(password, _DUMMY_HASH)  # same cost: do not reveal who exists
            return None
        return user if verify_password(password, user.password_hash) else None

    def succeeded(self, user: User, client: str) -> str:
        """After a right password: forget the attempts, answer a session token."""
        self._attempts.pop(f"address:{client}", None)
        self._attempts.pop(f"user:{user.id}", None)
        return self._signer.dumps({"u": user.id, "s": secrets.token_urlsafe(12)})

    def logout(self, principal: Principal) -> dict[str, Any] | None:
        """Revoke `principal`'s session here; the note to record so that every node
        revokes it too (`apply`), or None for an API token (it has no session)."""
        if principal.session is None:
            return None
        until = time.time() + self.server.session_ttl
        self.revoke(principal.session, until)
        return {"session": principal.session, "until": until}

    def revoke(self, session: str, until: float) -> None:
        """Refuse `session` until `until` (epoch seconds) and close its live sockets."""
        now = time.time()
        if until <= now:
            return
        self._revoked = {s: t for s, t in self._revoked.items() if t > now}
        self._revoked[session] = until
        for listener in self._logout_listeners:
            listener(session)

    def apply(self, event: ev.Event) -> None:
        """Follow the log: a logout recorded on any node revokes its session here."""
        if isinstance(event, ev.Note) and event.kind == SESSION_REVOKED:
            session, until = event.data.get("session"), event.data.get("until")
            if isinstance(session, str) and isinstance(until, int | float):
                self.revoke(session, float(until))

    def on_logout(self, listener: Callable[[str], None]) -> None:
        """Call `listener(session_id)` when a session logs out (live sockets close)."""
        self._logout_listeners.append(listener)

    # -- each request ---------------------------------------------------------------
    def authenticate(self, credential: str | None) -> Principal | None:
        """The principal a session token or API token names, if it is valid now."""
        if not credential:
            return None
        try:
            data = self._signer.loads(credential, max_age=self.server.session_ttl)
        except SignatureExpired:
            return None
        except BadSignature:
            return self._by_api_token(credential)
        if not isinstance(data, dict):
            return None
        user = self.users.get(data.get("u", ""))
        session = data.get("s")
        if user is None or not isinstance(session, str) or session in self._revoked:
            return None
        return Principal(user=user, session=session)

    def _by_api_token(self, token: str) -> Principal | None:
        for user in self.users.values():
            if any(verify_token(token, stored) for stored in user.token_hashes):
                return Principal(user=user, session=None)
        return None


class TooManyAttempts(Exception):
    """Too many logins from one address or for one user; retry after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


_DUMMY_HASH = "scrypt$16384$8$1$" + "A" * 22 + "==$" + "A" * 43 + "="

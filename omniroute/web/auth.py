"""Who is calling: logins, session tokens, and the role check every endpoint makes.

A session is a token signed with `[server] secret` (itsdangerous), carrying the user id
and a random session id; it is sent as a Bearer token or in the `omniroute_session`
cookie that the pages use. The role is read from the config on every request, never
from the token, so demoting or removing a user takes effect at once. Logging out
revokes the session id on this node until the token would have expired anyway.
"""

from __future__ import annotations

import secrets
import time
from collections import deque

import msgspec
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .passwords import verify_password, verify_token
from .settings import ROLE_RANK, Role, Server, User

__all__ = ["COOKIE", "Auth", "Principal"]

COOKIE = "omniroute_session"


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
        self._failures: dict[str, deque[float]] = {}  # client address -> failure times

    # -- logging in ---------------------------------------------------------------
    def login(self, user_id: str, password: str, client: str) -> tuple[User, str] | None:
        """(user, session token) when the password is right; None otherwise.

        Raises TooManyAttempts when `client` failed too often in the last minute, before
        spending a hash on the attempt.
        """
        self._check_attempts(client)
        user = self.users.get(user_id)
        if user is None or not user.password_hash:
            verify_password(password, _DUMMY_HASH)  # same cost: do not reveal who exists
            ok = False
        else:
            ok = verify_password(password, user.password_hash)
        if not ok:
            self._failures.setdefault(client, deque()).append(time.monotonic())
            return None
        self._failures.pop(client, None)
        return user, self._signer.dumps({"u": user.id, "s": secrets.token_urlsafe(12)})

    def logout(self, principal: Principal) -> None:
        if principal.session is not None:
            now = time.time()
            self._revoked = {s: t for s, t in self._revoked.items() if t > now}
            self._revoked[principal.session] = now + self.server.session_ttl

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

    def _check_attempts(self, client: str) -> None:
        times = self._failures.get(client)
        if not times:
            return
        horizon = time.monotonic() - 60.0
        while times and times[0] < horizon:
            times.popleft()
        if len(times) >= self.server.login_attempts:
            raise TooManyAttempts(int(times[0] - horizon) + 1)


class TooManyAttempts(Exception):
    """Too many failed logins from one address; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


_DUMMY_HASH = "scrypt$16384$8$1$" + "A" * 22 + "==$" + "A" * 43 + "="

"""A real omniroute web server on loopback for tests, and a client that logs in as
any user of the test config."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from omniroute.app import App
from omniroute.model import Interaction
from omniroute.testing import serving as serve_for_test
from omniroute.web.passwords import hash_password, hash_token

PASSWORD = "correct horse"
TOKEN = "a-long-random-api-token-for-the-crm-0123456789"
_HASH = hash_password(PASSWORD, n=2**10)  # cheap for tests; the default costs 16 MiB


def document() -> dict[str, Any]:
    user = {"password_hash": _HASH}
    return {
        "queues": [
            {"name": "support", "skills": {"support": 1}, "offer_timeout": 60, "wrap_up": 30},
            {"name": "sales", "skills": {"sales": 1}},
        ],
        "agents": [
            {"id": "ana", "name": "Ana", "skills": {"support": 3}, "capacity": {"webchat": 2}},
            {"id": "bob", "skills": {"support": 2, "sales": 2}, "capacity": {"webchat": 1}},
        ],
        "server": {
            "port": 0,
            "secret": "a-test-secret-of-enough-length",
            "login_attempts": 5,
            "users": [
                {"id": "ana", **user},
                {"id": "bob", **user},
                {"id": "sue", "role": "supervisor", **user},
                {"id": "root", "role": "admin", **user},
                {"id": "crm", "role": "supervisor", "token_hashes": [hash_token(TOKEN)]},
            ],
        },
    }


class Site:
    """A running server and helpers to call it as one user or another."""

    def __init__(self, app: App, url: str, client: httpx.AsyncClient) -> None:
        self.app = app
        self.url = url
        self.client = client
        self.tokens: dict[str, str] = {}

    async def login(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            r = await self.client.post("/api/login", json={"user": user, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def call(self, user: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = await self.login(user) if user else {}
        self.client.cookies.clear()
        return await self.client.request(method, path, headers=headers, **kw)

    async def submit(self, queue: str = "support", **fields: Any) -> Interaction:
        n = len(self.app.router.active) + 1
        fields.setdefault("id", f"chat-{n}-{queue}")
        return await self.app.submit(Interaction(channel="webchat", queue=queue, **fields))


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[Site]:
    """Run `app` with its web server on a free port for the duration of the block."""
    async with serve_for_test(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield Site(app, url, client)

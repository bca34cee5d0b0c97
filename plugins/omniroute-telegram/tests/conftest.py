"""Fixtures: a local Bot API (`bot_api`, see omniroute_telegram.fakeapi) and a contact
center running the Telegram channel against it with its web server (`center`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from omniroute_telegram.fakeapi import TOKEN, FakeBotApi
from telegramkit import Center, config, running

from omniroute.store import open_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def bot_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotApi]:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret-token_for-tests")
    async with FakeBotApi.running() as api:
        yield api


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
async def center(bot_api: FakeBotApi, tmp_path: Path, store_path: Path) -> AsyncIterator[Center]:
    store = open_store({"path": str(store_path)})
    async with running(config(bot_api, tmp_path / "files"), store) as running_center:
        yield running_center
    await store.close()

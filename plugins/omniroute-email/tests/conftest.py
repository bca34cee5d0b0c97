"""Fixtures of the email tests (helpers are in emailkit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from emailkit import Sink, free_port


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """A real SMTP server on loopback that keeps what it receives."""
    s = Sink(free_port())
    await s.start()
    yield s
    s.stop()

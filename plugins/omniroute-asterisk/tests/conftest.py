"""The voice tests' Asterisk: one per test session, in the chroot that
`scripts/install-asterisk` prepares; the real-Asterisk tests skip (saying why, once)
when it cannot run here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from omniroute_asterisk.testing import Asterisk, asterisk_missing, free_udp_ports
from voicekit import PHONES


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def asterisk() -> Iterator[Asterisk]:
    why = asterisk_missing()
    if why is not None:
        pytest.skip(f"VOICE TESTS AGAINST ASTERISK SKIPPED: {why}")
    ports = free_udp_ports(len(PHONES))
    server = Asterisk(dict(zip(PHONES, ports, strict=True)))
    server.start()
    try:
        yield server
    finally:
        server.stop()

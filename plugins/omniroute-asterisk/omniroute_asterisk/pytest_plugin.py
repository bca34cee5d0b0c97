"""The `asterisk` pytest fixture (entry point `pytest11`): one real Asterisk per test
session, in the chroot that `scripts/install-asterisk` prepares, with SIP phones named
`PHONES` (each a PJSIP endpoint whose contact is a loopback port for a sipp phone). A
test that uses it skips, saying why in one line, when Asterisk cannot run here.

Importing this module starts nothing; the fixture does, the first time a test asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import Asterisk, asterisk_missing, free_udp_ports

__all__ = ["PHONES", "asterisk"]

#: The endpoints of the session's Asterisk: three agents' phones and a supervisor's.
PHONES = ("ana", "bob", "cy", "sam")


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

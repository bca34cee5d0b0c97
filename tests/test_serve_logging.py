"""`omniroute serve`'s log: libraries that log secrets or every step are kept to warnings."""

from __future__ import annotations

import logging

import httpx
import pytest

from omniroute.web.serve import QUIET, quiet_libraries


def test_request_urls_with_a_bot_token_stay_out_of_the_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in QUIET:  # as a fresh process has them
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    caplog.set_level(logging.INFO)  # serve logs INFO
    quiet_libraries()
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=transport) as client:
        client.post("http://127.0.0.1/bot123456:SECRET-TOKEN/getUpdates")
    assert "SECRET-TOKEN" not in caplog.text
    logging.getLogger("httpx").warning("a warning still shows")
    assert "a warning still shows" in caplog.text

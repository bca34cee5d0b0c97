"""`[plugins.email]` mistakes that only the whole config shows are named by `omniroute
check` (and before anything starts), not found once the channel runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from emailkit import config, host

from omniroute.config import ConfigError, from_dict, validate_with_host


def test_unknown_queues_and_a_channel_without_input_are_named(tmp_path: Path) -> None:
    document = config(tmp_path, 2526, default_queue="suport")
    document["plugins"]["email"]["rules"][0]["queue"] = "billng"
    del document["plugins"]["email"]["listen"]
    with pytest.raises(ConfigError) as info:
        validate_with_host(from_dict(document), host())
    assert info.value.errors == [
        'plugins.email.default_queue: unknown queue "suport"',
        'plugins.email.rules[0].queue: unknown queue "billng"',
        "plugins.email: give [plugins.email.listen] or [[plugins.email.imap]]",
    ]


def test_a_good_section_passes(tmp_path: Path) -> None:
    decoded = validate_with_host(from_dict(config(tmp_path, 2526)), host())
    assert decoded["email"].default_queue == "support"

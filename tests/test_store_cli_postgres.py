"""`omniroute store migrate | import | export | purge` on the real PostgreSQL server.

Needs the postgres store and its test kit (`tests/pgkit.py`); skips, saying why, where
either is missing or no server answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("omniroute.store.postgres", reason="the postgres store is not installed")
pgkit = pytest.importorskip("pgkit", reason="tests/pgkit.py comes with the postgres store")

from omniroute import cli  # noqa: E402

pytestmark = pgkit.needs_postgres
schema = pgkit.schema  # the fixture: a fresh schema, dropped afterwards

LINES = (
    b'{"seq":1,"event":{"type":"note","kind":"message","data":{"text":"hi"},"at":1.0}}\n'
    b'{"seq":2,"event":{"type":"note","kind":"qa","data":{"score":9},"at":2.0}}\n'
)


def test_the_store_commands_work_on_postgres(
    schema: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "omniroute.toml"
    config.write_text(f'[store]\nbackend = "postgres"\ndsn = "{pgkit.DSN}"\nschema = "{schema}"\n')
    assert cli.main(["store", "migrate", str(config)]) == 0
    assert "schema version 0 -> " in capsys.readouterr().out
    backup = tmp_path / "in.jsonl"
    backup.write_bytes(LINES)
    assert cli.main(["store", "import", str(backup), str(config)]) == 0
    assert cli.main(["store", "import", str(backup), str(config)]) == 1  # not empty now
    assert cli.main(["store", "purge", "--before", "1970-01-01T00:00:01.5", str(config)]) == 0
    out = tmp_path / "out.jsonl"
    assert cli.main(["store", "export", "--since", "1970-01-01", str(config), "-o", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["seq"] for line in exported] == [1, 2]
    assert exported[0]["event"]["data"] == {"purged": True}
    assert exported[1]["event"]["data"] == {"score": 9}

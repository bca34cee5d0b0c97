"""`omniroute store migrate | export | import | purge` on real files, run through `main`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from omniroute import cli
from omniroute import events as ev
from omniroute.model import Interaction
from omniroute.store.sqlite import SqliteStore

DAY = 86400.0
NOV_1 = 1_793_491_200.0  # 2026-11-01T00:00:00Z


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "site" / "omniroute.toml"
    path.parent.mkdir()
    path.write_text('[[queues]]\nname = "support"\n\n[store]\npath = "data/events.db"\n')
    return path


def db_of(config: Path) -> Path:
    return config.parent / "data" / "events.db"


def fill(path: Path, events: list[ev.Event]) -> None:
    async def main() -> None:
        store = SqliteStore(path)
        await store.append(events)
        await store.close()

    anyio.run(main)


def read(path: Path) -> list[ev.Event]:
    async def main() -> list[ev.Event]:
        store = SqliteStore(path)
        events = [e async for _, e in store.read()]
        await store.close()
        return events

    return anyio.run(main)


def days(n: int) -> list[ev.Event]:
    """One queued email a day from Nov 1st, with a subject and a body."""
    return [
        ev.InteractionQueued(
            at=NOV_1 + i * DAY,
            interaction=Interaction(
                id=f"i{i}", channel="email", queue="support", subject=f"s{i}", attributes={"b": i}
            ),
        )
        for i in range(n)
    ]


def test_migrate_creates_the_database_next_to_the_config(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["store", "migrate", str(config)]) == 0
    assert "schema version 0 -> 1" in capsys.readouterr().out
    assert db_of(config).exists()
    assert cli.main(["store", "migrate", str(config)]) == 0
    assert "schema version 1, nothing to do" in capsys.readouterr().out


def test_migrate_refuses_a_newer_database(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(db_of(config), [])
    with sqlite3.connect(db_of(config)) as conn:
        conn.execute("PRAGMA user_version = 7")
    assert cli.main(["store", "migrate", str(config)]) == 1
    err = capsys.readouterr().err
    assert "omniroute store migrate: error:" in err
    assert "schema version 7, newer than this omniroute knows (version 1)" in err


def test_export_writes_json_lines_between_dates(config: Path, tmp_path: Path) -> None:
    events = days(5)
    fill(db_of(config), events)
    out = tmp_path / "backup.jsonl"
    argv = ["store", "export", "--since", "2026-11-02", "--until", "2026-11-04T00:00"]
    assert cli.main([*argv, str(config), "-o", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [2, 3]
    assert lines[0] == b'{"seq":2,"event":%s}' % ev.encode(events[1])
    assert not out.with_name("backup.jsonl.partial").exists()


def test_export_to_stdout_and_offsets(
    config: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    fill(db_of(config), days(3))
    # 2026-11-02T01:00+01:00 is midnight UTC: the second day and after.
    assert cli.main(["store", "export", "--since", "2026-11-02T01:00+01:00", str(config)]) == 0
    captured = capsysbinary.readouterr()
    assert [json.loads(line)["seq"] for line in captured.out.splitlines()] == [2, 3]
    assert b"exported 2 events" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], '"yesterday" is not an ISO date or date-time'),
        (["--since", "2026-11-01"], "store.path: no database at"),
    ],
)
def test_export_errors(
    config: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "yesterday" in argv:
        fill(db_of(config), [])
    assert cli.main(["store", "export", *argv, str(config)]) == 1
    assert message in capsys.readouterr().err


def test_export_then_import_round_trips(config: Path, tmp_path: Path) -> None:
    events = days(4)
    fill(db_of(config), events)
    backup = tmp_path / "all.jsonl"
    assert (
        cli.main(["store", "export", "--since", "2000-01-01", str(config), "-o", str(backup)]) == 0
    )
    other = tmp_path / "other.toml"
    other.write_text('[store]\npath = "restored.db"\n')
    assert cli.main(["store", "import", str(backup), str(other)]) == 0
    restored = read(tmp_path / "restored.db")
    assert [ev.encode(e) for e in restored] == [ev.encode(e) for e in events]
    # Not into a store that holds events, unless asked.
    assert cli.main(["store", "import", str(backup), str(other)]) == 1
    assert cli.main(["store", "import", "--append", str(backup), str(other)]) == 0
    assert len(read(tmp_path / "restored.db")) == 8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"seq": 1, "event": {"type": "note", "at": 1, "kind": "x"}}\nnot json\n', "x.jsonl:2: "),
        (b'{"seq": 1, "event": {"type": "nope", "at": 1}}\n', "x.jsonl:1: invalid value 'nope'"),
        (b'{"seq": 1, "event": {"type": "note", "kind": "x"}}\n', "x.jsonl:1: object missing"),
        (b'{"seq": 1, "evnt": {}}\n', "x.jsonl:1: object contains unknown field evnt"),
        (
            b'{"seq": 2, "event": {"type": "note", "at": 1, "kind": "x"}}\n'
            b'{"seq": 2, "event": {"type": "note", "at": 1, "kind": "x"}}\n',
            "x.jsonl:2: seq 2 does not follow seq 2",
        ),
    ],
)
def test_import_names_the_bad_line_and_imports_nothing(
    config: Path, tmp_path: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_bytes(content)
    assert cli.main(["store", "import", str(bad), str(config)]) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert read(db_of(config)) == []


def test_purge_uses_the_retention_window(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(db_of(config), days(3))
    assert cli.main(["store", "purge", str(config)]) == 1
    assert "set [store] retention_days" in capsys.readouterr().err
    assert cli.main(["store", "purge", "--before", "2026-11-02T12:00", str(config)]) == 0
    assert "purged message bodies of 2 events" in capsys.readouterr().out
    subjects = [e.interaction.subject for e in read(db_of(config))]  # type: ignore[attr-defined]
    assert subjects == ["[purged]", "[purged]", "s2"]
    # A window of one day, long past: everything is older.
    with config.open("a") as file:
        file.write("retention_days = 1\n")
    assert cli.main(["store", "purge", str(config)]) == 0
    assert "purged message bodies of 1 events" in capsys.readouterr().out


def test_import_reads_standard_input(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    line = b'{"seq": 1, "event": {"type": "note", "at": 1, "kind": "x"}}\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(line)))
    assert cli.main(["store", "import", "-", str(config)]) == 0
    assert "imported 1 events" in capsys.readouterr().out
    assert read(db_of(config)) == [ev.Note(at=1.0, kind="x")]

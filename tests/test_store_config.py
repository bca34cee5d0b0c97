"""`[store]`: backends, options, errors with `store.` paths, paths relative to the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniroute.config import ConfigError
from omniroute.store import MemoryStore, StoreConfig, StoreError, open_store, store_config
from omniroute.store.sqlite import SqliteStore


def test_no_section_means_sqlite_next_to_the_config(tmp_path: Path) -> None:
    assert store_config(None) == StoreConfig(backend="sqlite", path="omniroute.db")
    store = open_store(None, root=tmp_path)
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "omniroute.db"


def test_paths(tmp_path: Path) -> None:
    store = open_store({"path": "data/events.db"}, root=tmp_path)
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "data" / "events.db"
    absolute = tmp_path / "abs.db"
    store = open_store({"backend": "sqlite", "path": str(absolute)}, root="/elsewhere")
    assert isinstance(store, SqliteStore) and store.path == absolute


def test_memory_backend() -> None:
    store = open_store({"backend": "memory", "encode": True, "retention_days": 30})
    assert isinstance(store, MemoryStore) and store.encode


def test_settings_apply_to_every_backend() -> None:
    options = store_config({"backend": "memory", "retention_days": 7.5, "snapshot_every": 0})
    assert (options.retention_days, options.snapshot_every) == (7.5, 0)
    assert store_config({}).snapshot_every == 100_000
    assert store_config({}).retention_days is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "mysql"}, 'store.backend: unknown backend "mysql"; known: "sqlite"'),
        ({"encode": "yes", "backend": "memory"}, "store.encode: expected bool, got str"),
        ({"pth": "x.db"}, 'store: unknown option "pth"; [store] takes: backend, path'),
        ({"retention_days": 0}, "store.retention_days: expected float > 0.0"),
        ({"snapshot_every": -1}, "store.snapshot_every: expected int >= 0"),
        ({"backend": "memory", "path": "x.db"}, "store.path: only for backend 'sqlite', not"),
        ({"dsn": "postgresql://x"}, "store.dsn: only for backend 'postgres', not \"sqlite\""),
        ({"backend": "postgres"}, 'store.dsn: required for backend "postgres"'),
        ({"schema": "x"}, "store.schema: only for backend 'postgres', not \"sqlite\""),
        (
            {"backend": "postgres", "dsn": "postgresql://x", "connect_timeout": 0},
            "store.connect_timeout: expected float > 0.0",
        ),
    ],
)
def test_errors_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(section)
    assert info.value.errors[0].startswith(message), info.value.errors


def test_postgres_is_imported_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "omniroute.store.postgres", None)  # not installed
    with pytest.raises(StoreError, match="postgres store is not available"):
        open_store({"backend": "postgres", "dsn": "postgresql://127.0.0.1/test"})


def test_postgres_gets_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handshake with omniroute.store.postgres: keyword options by these names."""
    import sys
    import types

    module = types.ModuleType("omniroute.store.postgres")

    class PostgresStore:
        def __init__(self, **options: object) -> None:
            self.options = options

    module.PostgresStore = PostgresStore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omniroute.store.postgres", module)
    section = {"backend": "postgres", "dsn": "postgresql://h/db", "schema": "center2"}
    store = open_store(section, migrate=True)
    assert store.options == {  # type: ignore[attr-defined]
        "dsn": "postgresql://h/db",
        "schema": "center2",
        "migrate": True,
        "connect_timeout": 10.0,
    }

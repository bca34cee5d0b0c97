"""Where events are kept: the `Store` protocol and the backends behind `[store]`.

* `sqlite` (the default, also when `[store]` is absent): one file, one machine.
* `postgres`: several nodes share one contact center (omniroute.store.postgres).
* `memory`: tests and simulation; a restart loses everything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ..config import ConfigError
from .base import Purging, SchemaError, Store, StoreError
from .memory import MemoryStore

__all__ = [
    "BACKENDS",
    "MemoryStore",
    "Purging",
    "SchemaError",
    "Store",
    "StoreConfig",
    "StoreError",
    "open_store",
    "store_config",
]

#: Backends `[store] backend = "..."` may name.
BACKENDS: tuple[str, ...] = ("sqlite", "postgres", "memory")
#: Options only some backends take, by option.
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "path": ("sqlite",),
    "dsn": ("postgres",),
    "schema": ("postgres",),
    "connect_timeout": ("postgres",),
    "encode": ("memory",),
}


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The `[store]` table. Relative `path`s are relative to the config file's folder."""

    backend: str = "sqlite"
    path: str = "omniroute.db"
    dsn: str | None = None
    #: PostgreSQL schema holding omniroute's tables (several centers can share a database).
    schema: str = "omniroute"
    connect_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    encode: bool = False
    #: Purge message bodies of events older than this many days; None keeps them forever.
    retention_days: Annotated[float, msgspec.Meta(gt=0)] | None = None
    #: Save a routing snapshot every this many events; 0 never.
    snapshot_every: Annotated[int, msgspec.Meta(ge=0)] = 100_000


def store_config(config_section: Mapping[str, Any] | None) -> StoreConfig:
    """Decode and check `[store]`; raises ConfigError with `store.` locations."""
    section = dict(config_section or {})
    backend = section.get("backend", "sqlite")
    if backend not in BACKENDS:
        known = ", ".join(f'"{name}"' for name in BACKENDS)
        raise ConfigError([f'store.backend: unknown backend "{backend}"; known: {known}'])
    try:
        options = msgspec.convert(section, StoreConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError([_where(str(exc))]) from None
    errors = [
        f'store.{key}: only for backend {" or ".join(repr(b) for b in backends)}, not "{backend}"'
        for key, backends in _ONLY_FOR.items()
        if key in section and backend not in backends
    ]
    if backend == "postgres" and not options.dsn:
        errors.append(
            'store.dsn: required for backend "postgres" '
            '(e.g. "postgresql://omniroute@db.example/omniroute")'
        )
    if errors:
        raise ConfigError(errors)
    return options


def open_store(
    config_section: Mapping[str, Any] | None,
    *,
    root: str | Path | None = None,
    migrate: bool = False,
) -> Store:
    """The store the `[store]` section asks for; no section means SQLite at
    `omniroute.db`.

    `root` is the folder a relative `path` is relative to: the config file's folder
    (`omniroute serve` and `omniroute store` pass it); None means the current one.
    `migrate=True` upgrades an older schema instead of raising SchemaError.
    Raises ConfigError for bad options, StoreError/SchemaError when the store cannot
    be opened.
    """
    options = store_config(config_section)
    if options.backend == "memory":
        return MemoryStore(encode=options.encode)
    if options.backend == "postgres":
        try:
            from .postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise StoreError(
                f"store.backend: the postgres store is not available in this installation ({exc})"
            ) from None
        store: Store = PostgresStore(
            dsn=options.dsn,
            schema=options.schema,
            migrate=migrate,
            connect_timeout=options.connect_timeout,
        )
        return store
    from .sqlite import SqliteStore

    path = Path(options.path).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(root) / path
    return SqliteStore(path, migrate=migrate)


def _where(message: str) -> str:
    """msgspec's "Expected `bool`, got `str` - at `$.encode`" as "store.encode: expected..."."""
    text, _, path = message.partition(" - at `$")
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", text)
    if unknown:
        fields = ", ".join(StoreConfig.__struct_fields__)
        return f'store: unknown option "{unknown[1]}"; [store] takes: {fields}'
    where = "store" + path.rstrip("`")
    return f"{where}: {text[:1].lower()}{text[1:]}".replace("`", "")

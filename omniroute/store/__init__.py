"""Where events are kept: the `Store` protocol and the backends behind `[store]`.

Only the memory backend exists so far. The durable ones, SQLite (one machine, the
default once it lands) and PostgreSQL (several nodes), come in a later release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from ..config import ConfigError
from .base import SchemaError, Store, StoreError
from .memory import MemoryStore

__all__ = ["BACKENDS", "MemoryStore", "SchemaError", "Store", "StoreError", "open_store"]

#: Backends `[store] backend = "..."` may name.
BACKENDS: tuple[str, ...] = ("memory",)
_LATER = "the durable sqlite and postgres stores come in a later release"


class _MemoryOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    backend: str = "memory"
    encode: bool = False


def open_store(config_section: Mapping[str, Any] | None) -> Store:
    """The store the `[store]` section asks for; no section means the memory store.

    Raises ConfigError (with `store.` locations, like the rest of the config) for an
    unknown backend or option.
    """
    section = dict(config_section or {})
    backend = section.get("backend", "memory")
    if backend not in BACKENDS:
        known = ", ".join(f'"{name}"' for name in BACKENDS)
        raise ConfigError(
            [f'store.backend: unknown backend "{backend}"; known: {known} ({_LATER})']
        )
    try:
        options = msgspec.convert(section, _MemoryOptions)
    except msgspec.ValidationError as exc:
        raise ConfigError([_where(str(exc))]) from None
    return MemoryStore(encode=options.encode)


def _where(message: str) -> str:
    """msgspec's "Expected `bool`, got `str` - at `$.encode`" as "store.encode: expected..."."""
    text, _, path = message.partition(" - at `$")
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", text)
    if unknown:
        fields = ", ".join(_MemoryOptions.__struct_fields__)
        return f'store: unknown option "{unknown[1]}"; the memory store takes: {fields}'
    where = "store" + path.rstrip("`")
    return f"{where}: {text[:1].lower()}{text[1:]}".replace("`", "")

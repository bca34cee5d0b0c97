"""Which modules run compiled, and a guard against stale compiled modules.

The build compiles the hot modules (the router's core and state, the simulator's
engine) with mypyc (hatch_build.py) next to their `.py` sources, and Python prefers
the compiled module. In an editable install the sources can change after that; the
build wrote a hash of each source it compiled, so when one differs (or
`OMNIROUTE_PURE_PYTHON=1` is set) every compiled module is loaded from its source
instead: a stale build never runs, and compiled and Python modules never mix (they
share their classes). `omniroute/__init__.py` imports this first.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

_ROOT = Path(__file__).parent.parent  # where the `omniroute` package lives


def _source(module: str) -> Path:
    return _ROOT.joinpath(*module.split(".")).with_suffix(".py")


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds the named modules' `.py` files, ahead of their compiled versions."""

    def __init__(self, names: dict[str, Path]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.names.get(fullname)
        return importlib.util.spec_from_file_location(fullname, source) if source else None


def _stale(compiled: dict[str, str]) -> list[str]:
    return [
        name
        for name, digest in compiled.items()
        if hashlib.sha256(_source(name).read_bytes()).hexdigest() != digest
    ]


def _guard() -> dict[str, str]:
    """The compiled modules in use (name -> source hash); loads sources instead when
    asked to or when a compiled one is stale."""
    try:
        compiled: dict[str, str] = json.loads((_ROOT / "omniroute/_compiled.json").read_text())
    except (OSError, ValueError):
        return {}
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    compiled = {
        name: digest
        for name, digest in compiled.items()
        if any(_source(name).with_suffix(suffix).exists() for suffix in suffixes)
    }
    stale = _stale(compiled)
    if stale or os.environ.get("OMNIROUTE_PURE_PYTHON"):
        if stale:
            warnings.warn(
                f"omniroute: {', '.join(stale)} changed since compiled; running "
                f"{', '.join(compiled)} as pure Python (install again to compile)",
                stacklevel=3,
            )
        names = {n: _source(n) for n in compiled}
        sys.meta_path.insert(0, _FromSource(names))
        return {}
    return compiled


#: The modules that run compiled in this process (empty: all pure Python).
COMPILED = tuple(sorted(_guard()))


_SOURCES: dict[str, ModuleType] = {}


def typed(cls: type, name: str) -> Any:
    """`cls.name` with its annotations, for `typing.get_type_hints`: compiled functions
    keep none, so for a compiled class this is the attribute of the same class loaded
    once, privately, from its `.py` source."""
    attr = getattr(cls, name)
    if getattr(attr, "__annotations__", None) is not None:
        return attr
    module = sys.modules[cls.__module__]
    source = _SOURCES.get(module.__name__)
    if source is None:
        path = Path(module.__file__ or "").parent / f"{module.__name__.rpartition('.')[2]}.py"
        private = f"{module.__name__}__source"  # same package, so relative imports resolve
        spec = importlib.util.spec_from_file_location(private, path)
        assert spec is not None and spec.loader is not None
        source = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(source)
        _SOURCES[module.__name__] = source
    return getattr(getattr(source, cls.__qualname__), name)

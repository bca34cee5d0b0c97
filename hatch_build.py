"""Build hook: compile the hot modules with mypyc, keep them as Python too.

The router's decisions (and the simulator's loop around them) are pure in-memory
Python; compiled by mypyc they run about twice as fast (`python -m bench routing`,
docs/performance.md). The `.py` files stay the source and the fallback: the wheel
holds both, and Python loads the compiled module when it is there.

Compiling needs a C compiler. Without one (or with `OMNIROUTE_PURE_PYTHON=1` set at
build time) the build warns and makes a pure-Python wheel, which behaves the same.
After compiling, the hook writes `omniroute/_compiled.json` with a hash of each
compiled source, so an editable install whose sources changed since runs them as
Python rather than stale machine code (`omniroute/native.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hatch_mypyc.plugin import MypycBuildHook

MANIFEST = "omniroute/_compiled.json"


class RouterBuildHook(MypycBuildHook):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        manifest = Path(self.root, MANIFEST)
        manifest.unlink(missing_ok=True)
        if self.target_name != "wheel":
            return
        if os.environ.get("OMNIROUTE_PURE_PYTHON"):
            self.app.display_info("OMNIROUTE_PURE_PYTHON is set: not compiling the router")
            self.clean([version])
            return
        try:
            super().initialize(version, build_data)
        except Exception as exc:  # no compiler, or mypyc failed: Python still works
            self.clean([version])
            self.app.display_warning(f"the router stays pure Python (mypyc failed): {exc}")
            return
        sources = {
            f.removesuffix(".py").replace("/", "."): hashlib.sha256(
                Path(self.root, f).read_bytes()
            ).hexdigest()
            for f in self.normalized_included_files
        }
        manifest.write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
        build_data["artifacts"].append(f"/{MANIFEST}")

    def clean(self, versions: list[str]) -> None:
        super().clean(versions)
        Path(self.root, MANIFEST).unlink(missing_ok=True)


def get_build_hook() -> type[RouterBuildHook]:
    return RouterBuildHook

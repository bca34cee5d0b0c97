"""`python -m bench serve` runs end to end and prints its figure line (a tiny run: the
benchmark measures, this only checks that it works)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("omniroute_webchat")
ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_bench_serve_prints_its_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "serve", "--agents", "5", "--rate", "10", "--duration=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"serve: \d+ interactions/s, offer p99 \d+\.\d ms", last), last

"""`python -m bench store` keeps working: a tiny run prints the figure line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_store_bench_prints_its_figure_line(tmp_path: Path) -> None:
    argv = ["--seconds", "0.3", "--submitters", "20", "--events", "3000", "--dir", str(tmp_path)]
    out = subprocess.run(
        [sys.executable, "-m", "bench", "store", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    last = out.strip().splitlines()[-1]
    figures = r"store: sqlite \d+ events/s, postgres (\d+ events/s|n/a), restart \d+\.\d\ds"
    assert re.fullmatch(figures + r" for \d+ events", last), out
    assert list(tmp_path.iterdir()) == []  # its files are gone

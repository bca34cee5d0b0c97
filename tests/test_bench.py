"""The benchmarks keep working: a tiny run prints the figure line (numbers not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_routing_bench_prints_its_figure_line() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "routing",
            "--agents",
            "300",
            "--waiting",
            "1500",
            "--ops",
            "3000",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"routing: \d+ decisions/s, p99 \d+ us, growth \d+\.\d\d, peak \d+ MB", last
    ), out


def test_unknown_benchmark_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "usage: python -m bench" in result.stderr

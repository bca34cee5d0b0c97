"""`python -m bench simulate` keeps working: a tiny run prints its figure line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_simulate_bench_prints_its_figure_line() -> None:
    pytest.importorskip("simpy", reason="the bench extra (SimPy) is not installed")
    argv = ["--agents", "20", "--calls", "2000", "--rounds", "1", "--profile"]
    out = subprocess.run(
        [sys.executable, "-m", "bench", "simulate", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("simulate-kpis: 20 agents")
    assert lines[1].startswith("simulate-profile: ")
    assert re.fullmatch(r"simulate: \d+ calls/s, simpy \d+ calls/s, ratio \d+\.\d\d", lines[-1])

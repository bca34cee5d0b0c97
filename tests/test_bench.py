"""The benchmarks keep working: a tiny run of each prints its figure line (the numbers
are measured by the benchmarks themselves, not checked here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench(*argv: str) -> list[str]:
    """The output lines of `python -m bench ARGV` run from the checkout."""
    out = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return out.strip().splitlines()


def test_routing() -> None:
    last = bench("routing", "--agents", "300", "--waiting", "1500", "--ops", "3000")[-1]
    figure = r"routing: \d+ decisions/s, p99 \d+ us, growth \d+\.\d\d, peak \d+ MB"
    assert re.fullmatch(figure, last), last


def test_store(tmp_path: Path) -> None:
    argv = ["--seconds", "0.3", "--submitters", "20", "--events", "3000", "--dir", str(tmp_path)]
    last = bench("store", *argv)[-1]
    figures = r"store: sqlite \d+ events/s, postgres (\d+ events/s|n/a), restart \d+\.\d\ds"
    assert re.fullmatch(figures + r" for \d+ events", last), last
    assert list(tmp_path.iterdir()) == []  # its files are gone


def test_simulate() -> None:
    pytest.importorskip("simpy", reason="the bench extra (SimPy) is not installed")
    lines = bench("simulate", "--agents", "20", "--calls", "2000", "--rounds", "1", "--profile")
    assert lines[0].startswith("simulate-kpis: 20 agents")
    assert lines[1].startswith("simulate-profile: ")
    assert re.fullmatch(r"simulate: \d+ calls/s, simpy \d+ calls/s, ratio \d+\.\d\d", lines[-1])


@pytest.mark.slow
def test_serve() -> None:
    pytest.importorskip("omniroute_webchat")
    lines = bench("serve", "--agents", "5", "--rate", "10", "--duration=1")
    line = r"serve: \d+ interactions/s, offer p99 \d+\.\d ms, store sqlite"
    assert re.fullmatch(line, lines[-1]), lines[-1]
    split = r"serve-detail: the machine's CPUs while chats arrived: user \d+%, nice \d+%.*"
    assert re.fullmatch(split, lines[-2]), lines[-2]


def test_the_cpu_split_adds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # the bench folder is not installed
    from bench.machine import cpu_times, split

    before = (100, 0, 50, 800, 10, 5, 5, 30)
    after = (150, 20, 70, 900, 10, 5, 5, 40)  # 200 ticks in all
    assert split(before, after) == ("user 25%, nice 10%, system 10%, idle 50%, iowait 0%, steal 5%")
    assert split(None, after) == ""
    now = cpu_times()
    assert now is not None and len(now) == 8  # Linux: /proc/stat


def test_channels(tmp_path: Path) -> None:
    pytest.importorskip("omniroute_email", reason="the email plugin is not installed")
    pytest.importorskip("omniroute_telegram", reason="the Telegram plugin is not installed")
    argv = ["--emails", "40", "--processes", "1", "--connections", "2", "--updates", "200"]
    last = bench("channels", *argv, "--dir", str(tmp_path))[-1]
    assert re.fullmatch(r"channels: email \d+ msgs/s, telegram \d+ updates/s", last), last
    assert list(tmp_path.iterdir()) == []  # its files are gone


def test_voice() -> None:
    testing = pytest.importorskip("omniroute_asterisk.testing")
    why = testing.asterisk_missing()
    if why is not None:
        pytest.skip(f"VOICE BENCHMARK SKIPPED: {why}")
    argv = ["--agents", "3", "--rate", "4", "--duration", "2", "--talk", "2"]
    last = bench("voice", *argv)[-1]
    assert re.fullmatch(r"voice: \d+ calls, offer-to-ring p99 \d+ ms, lost 0", last), last


def test_unknown_benchmark_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "usage: python -m bench" in result.stderr

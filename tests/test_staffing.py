"""Erlang B, C and A: published values, stability at 2,000 agents, and `omniroute staff`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from omniroute import cli
from omniroute.staffing import erlang_a, erlang_b, erlang_c, required_agents, schedule

# Published values. Sources:
# [CRAN] R package ErlangC 0.1.0, README (the worked example of Call Centre Helper):
#        100 calls per 30 minutes, AHT 180 s, 20 s threshold.
# [WOLFRAM] Wolfram Language reference, ErlangC: ErlangC[3, 2] = 4/9.
# [TABLE] Erlang B tables (e.g. ITU-T E.523 style tables): 10 circuits offered 5 Erlangs
#        block 1.84% of calls; 10 circuits carry 4.46 Erlangs at 1% blocking.
CRAN_RATE = 100 / 1800


@pytest.mark.parametrize(
    ("agents", "wait_probability", "service_level", "asa", "occupancy"),
    [
        (14, 0.1741319, 0.88835, 7.835937, 0.7142857),  # [CRAN] erlang_c(..., n = 14)
        (11, 0.6821182, 0.3896138, None, 10 / 11),  # [CRAN] first row of the search
    ],
)
def test_erlang_c_agrees_with_published_values(
    agents: int,
    wait_probability: float,
    service_level: float,
    asa: float | None,
    occupancy: float,
) -> None:
    s = erlang_c(agents, CRAN_RATE, 180, 20)
    assert s.wait_probability == pytest.approx(wait_probability, abs=5e-7)
    assert s.service_level == pytest.approx(service_level, abs=5e-6)
    assert s.occupancy == pytest.approx(occupancy, abs=5e-7)
    if asa is not None:
        assert s.asa == pytest.approx(asa, abs=5e-6)


def test_erlang_c_of_three_servers_and_two_erlangs_is_four_ninths() -> None:
    assert erlang_c(3, 2 / 100, 100, 20).wait_probability == pytest.approx(4 / 9)  # [WOLFRAM]


def test_erlang_b_table_values() -> None:
    assert erlang_b(10, 5.0) == pytest.approx(0.01838, abs=5e-5)  # [TABLE]
    assert erlang_b(10, 4.46) == pytest.approx(0.01, abs=2e-4)  # [TABLE]
    assert erlang_b(0, 3.0) == 1.0


def test_cran_staffing_answer_with_shrinkage() -> None:
    # [CRAN] calculate_agents: 14 agents for 80/20 (and 13 do not reach it).
    s = required_agents(CRAN_RATE, 180, 20, 0.8, shrinkage=0.3)
    assert s.agents == 14
    assert s.scheduled == 20  # 14 / 0.7
    assert erlang_c(13, CRAN_RATE, 180, 20).service_level < 0.8


def test_two_thousand_agents_are_stable() -> None:
    load = 1900.0  # Erlangs
    rate = load / 180
    s = required_agents(rate, 180, 20, 0.8)
    assert load < s.agents < 2000
    assert erlang_c(s.agents - 1, rate, 180, 20).service_level < 0.8 <= s.service_level
    for n in (1901, 1950, 2000, 2500):
        figures = erlang_c(n, rate, 180, 20)
        assert all(
            math.isfinite(x) and 0 <= x <= 1
            for x in (figures.service_level, figures.wait_probability, figures.occupancy)
        )
    assert erlang_b(2000, 1.0) == 0.0  # underflows cleanly, no overflow or NaN
    a = erlang_a(2000, rate, 180, 20, 120)
    assert 0 < a.service_level <= 1 and math.isfinite(a.asa)
    overloaded = erlang_a(1000, rate, 180, 20, 600)  # twice the load the team can carry
    assert overloaded.abandon_rate == pytest.approx(0.47, abs=0.02)
    assert overloaded.occupancy == pytest.approx(1.0, abs=1e-3)


def test_no_more_agents_than_erlangs_never_reaches_a_steady_state() -> None:
    s = erlang_c(10, 10 / 180, 180, 20)
    assert s.service_level == 0 and s.asa == math.inf and s.wait_probability == 1


def test_erlang_a_tends_to_erlang_c_when_customers_are_patient() -> None:
    c = erlang_c(14, CRAN_RATE, 180, 20)
    a = erlang_a(14, CRAN_RATE, 180, 20, 1e9)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-6)
    assert a.asa == pytest.approx(c.asa, rel=1e-5)
    assert a.wait_probability == pytest.approx(c.wait_probability, abs=1e-6)
    assert a.abandon_rate < 1e-7


def test_erlang_a_abandons_follow_littles_law_and_shrink_the_queue() -> None:
    patient = erlang_a(14, CRAN_RATE, 180, 20, 600)
    impatient = erlang_a(14, CRAN_RATE, 180, 20, 60)
    assert 0 < patient.abandon_rate < impatient.abandon_rate < 0.1
    assert impatient.asa < patient.asa
    # Erlang A is stable even with fewer agents than Erlangs.
    assert 0 < erlang_a(8, CRAN_RATE, 180, 20, 120).service_level < 0.5


def test_erlang_a_needs_fewer_agents_than_erlang_c() -> None:
    c = required_agents(900 / 3600, 180, 20, 0.8)
    a = required_agents(900 / 3600, 180, 20, 0.8, patience=120)
    assert a.agents < c.agents
    assert erlang_a(a.agents - 1, 900 / 3600, 180, 20, 120).service_level < 0.8


def test_schedule_per_interval() -> None:
    plan = schedule([0, 100, 200], interval=1800, aht=180, threshold=20, target=0.8)
    assert [s.agents for s in plan] == [0, 14, required_agents(200 / 1800, 180, 20, 0.8).agents]


@pytest.mark.parametrize(
    "kwargs",
    [{"target": 1.0}, {"target": 0.8, "shrinkage": 1.0}, {"target": 0.8, "aht": 0}],
)
def test_bad_inputs_are_refused(kwargs: dict[str, float]) -> None:
    args = {"rate": 0.1, "aht": 180.0, "threshold": 20.0, **kwargs}
    with pytest.raises(ValueError):
        required_agents(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ omniroute staff


def test_staff_prints_erlang_c_and_a(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["staff", "--rate", "100", "--interval", "1800", "--aht", "180", "--sl", "80/20"]
    assert cli.main([*argv, "--patience", "120", "--shrinkage", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "load: 10.00 Erlangs" in out
    assert "Erlang C: 14 agents (20 scheduled with 30% shrinkage)" in out
    assert "service level 88.8% within 20 s" in out
    assert "Erlang A (patience 120 s):" in out


def test_staff_json_has_the_issue_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["staff", "--rate", "900", "--aht", "180", "--sl", "80/20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"agents", "service_level", "asa", "occupancy", "wait_probability"}
    assert out["agents"] == required_agents(0.25, 180, 20, 0.8).agents
    argv = ["staff", "--rate", "900", "--aht", "180", "--patience", "120", "--json"]
    assert cli.main(argv) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["agents"] < both["erlang_c"]["agents"]
    assert 0 < both["abandon_rate"] < 0.2


def test_staff_forecast_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("time,calls,aht\n08:00,100,\n08:30,200,240\n09:00,0,\n")
    argv = ["staff", "--forecast", str(forecast), "--interval", "1800", "--aht", "180"]
    assert cli.main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["intervals"]
    assert [r["interval"] for r in rows] == ["08:00", "08:30", "09:00"]
    assert rows[0]["agents"] == 14
    assert rows[1]["agents"] == required_agents(200 / 1800, 240, 20, 0.8).agents
    assert rows[2]["agents"] == 0
    assert out["agent_hours"] == pytest.approx((14 + rows[1]["agents"]) / 2)
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    header = ["INTERVAL", "ARRIVALS", "AGENTS", "SL", "ASA", "OCCUPANCY", "P(WAIT)"]
    assert text.splitlines()[0].split() == header


def test_staff_forecast_without_header_names_rows_by_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forecast = tmp_path / "f.csv"
    forecast.write_text("100\n150\n")
    argv = ["staff", "--forecast", str(forecast), "--interval", "900", "--aht", "60", "--json"]
    assert cli.main(argv) == 0
    assert [r["interval"] for r in json.loads(capsys.readouterr().out)["intervals"]] == [
        "00:00",
        "00:15",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "10", "--aht", "180", "--sl", "80"], "--sl: expected PERCENT/SECONDS"),
        (["--aht", "180"], "give either --rate or --forecast"),
        (["--rate", "10", "--aht", "180", "--shrinkage", "30"], "--shrinkage must be"),
        (["--rate", "10", "--aht", "0"], "--aht must be > 0"),
    ],
)
def test_staff_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["staff", *argv]) == 1
    assert message in capsys.readouterr().err


def test_staff_forecast_bad_cell_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forecast = tmp_path / "f.csv"
    forecast.write_text("time,arrivals\n08:00,100\n08:30,lots\n")
    assert cli.main(["staff", "--forecast", str(forecast), "--aht", "180"]) == 1
    assert "f.csv: line 3: arrivals: expected a number >= 0, got 'lots'" in capsys.readouterr().err

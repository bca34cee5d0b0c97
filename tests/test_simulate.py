"""`omniroute simulate`: the [simulation] section, the run loop, its outputs and replay."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import pluggy
import pytest

from omniroute import cli
from omniroute import events as ev
from omniroute.config import ConfigError, from_dict, loads
from omniroute.model import Interaction
from omniroute.plugins import PluginHost
from omniroute.simulate.engine import _Engine, run
from omniroute.simulate.replay import ReplayError, read_arrivals
from omniroute.simulate.result import Run, gini
from omniroute.simulate.traffic import synthetic

hookimpl = pluggy.HookimplMarker("omniroute")

DAY = """
[[queues]]
name = "billing"
skills = { billing = 2 }
sla = { target = 0.8, seconds = 20 }

[[queues]]
name = "support"
wrap_up = 5

[[agents]]
id = "ana"
skills = { billing = 5 }

[simulation]
duration = 7200
seed = 3
warmup = 300

[[simulation.agents]]
name = "billing"
count = 12
skills = { billing = 3 }
capacity = { voice = 1 }

[[simulation.agents]]
count = 8
capacity = { voice = 1, webchat = 2 }
accept_delay = { distribution = "exponential", mean = 4 }

[[simulation.traffic]]
queue = "billing"
rate = 200
handle = { distribution = "lognormal", mean = 180, sd = 120 }
patience = { mean = 90 }

[[simulation.traffic]]
queue = "support"
channel = "webchat"
rate = 150
handle = { distribution = "constant", mean = 200 }
start = 1800
"""

QUEUE_KEYS = {
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "asa",
    "awt",
    "aht",
    "max_wait",
}
AGENT_KEYS = {"count", "occupancy", "answered_min", "answered_max", "answered_gini"}


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost(entry_points=False)


@pytest.fixture
def day_file(tmp_path: Path) -> Path:
    path = tmp_path / "day.toml"
    path.write_text(DAY)
    return path


@pytest.fixture
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "plugin_host", lambda: PluginHost(entry_points=False))


# ------------------------------------------------------------------ the section


def test_the_section_decodes_into_structs() -> None:
    config = loads(DAY)
    sim = config.simulation
    assert sim is not None
    assert (sim.duration, sim.seed, sim.warmup) == (7200, 3, 300)
    assert [g.count for g in sim.agents] == [12, 8]
    assert sim.group_names() == ["billing", "sim2"]
    assert sim.traffic[0].handle.sd == 120
    assert sim.traffic[1].start == 1800


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"seed": "x"}, "simulation.seed: expected int, got str"),
        ({"speed": 2}, 'simulation: unknown field "speed"; did you mean "seed"?'),
        (
            {"traffic": [{"queue": "biling", "rate": 5, "handle": {"mean": 1}}]},
            'simulation.traffic[0].queue: unknown queue "biling"; queues: billing',
        ),
        (
            {"traffic": [{"queue": "billing", "rate": 5, "handle": {"mean": 3, "sd": 1}}]},
            "simulation.traffic[0].handle.sd: only a lognormal distribution has sd",
        ),
        (
            {
                "traffic": [
                    {
                        "queue": "billing",
                        "rate": 5,
                        "handle": {"distribution": "lognormal", "mean": 3},
                    }
                ]
            },
            "simulation.traffic[0].handle.sd: a lognormal distribution needs sd",
        ),
        (
            {"traffic": [{"queue": "billing", "rate": 0, "handle": {"mean": 3}}]},
            "simulation.traffic[0].rate: expected float > 0.0",
        ),
        (
            {"agents": [{"count": 2, "accept_delay": {"distribution": "weibull", "mean": 1}}]},
            'simulation.agents[0].accept_delay.distribution: invalid value "weibull"; '
            'expected one of "exponential", "lognormal", "constant"',
        ),
        (
            {"agents": [{"count": 0}, {"count": 1, "queues": ["nope"]}]},
            "simulation.agents[0].count: expected int >= 1",
        ),
        ({"agents": [{"count": 1, "name": "x"}, {"count": 1, "name": "x"}]}, "used twice"),
        ({"agents": [{"count": 2, "name": "a"}]}, 'agent id "a-1" is also in [[agents]]'),
        ({"warmup": 100, "duration": 50}, "simulation.warmup: must be shorter than duration"),
    ],
)
def test_mistakes_are_named_by_path(change: dict[str, Any], error: str) -> None:
    data = {
        "queues": [{"name": "billing", "channels": ["voice"]}],
        "agents": [{"id": "a-1"}],
        "simulation": {"duration": 3600, **change},
    }
    with pytest.raises(ConfigError) as caught:
        from_dict(data)
    assert any(error in line for line in caught.value.errors), caught.value.errors


def test_every_bad_entry_is_reported_not_only_the_first() -> None:
    data = {
        "queues": [{"name": "q"}],
        "simulation": {
            "agents": [{"count": 0}, {"count": -1}],
            "traffic": [{"queue": "q", "rate": -1, "handle": {"mean": 1}}],
        },
    }
    with pytest.raises(ConfigError) as caught:
        from_dict(data)
    assert caught.value.errors == [
        "simulation.agents[0].count: expected int >= 1",
        "simulation.agents[1].count: expected int >= 1",
        "simulation.traffic[0].rate: expected float > 0.0",
    ]


# ------------------------------------------------------------------ the run


def test_a_day_runs_and_counts_every_contact(host: PluginHost) -> None:
    config = loads(DAY)
    out = run(config, host)
    billing, support = out.result.queues["billing"], out.result.queues["support"]
    assert billing.offered > 300 and support.offered > 200
    for q in (billing, support):
        assert q.answered + q.abandoned == q.offered  # everyone measured left the queue
        assert q.service_level is not None and 0 <= q.service_level <= 1
    assert billing.abandoned > 0 and support.abandoned == 0  # no patience given: nobody leaves
    assert support.aht == pytest.approx(205)  # constant 200 s plus 5 s of wrap-up
    assert support.asa is not None and support.asa > 0  # accept delays ring first
    agents = out.result.agents
    assert agents.count == 21  # 1 from [[agents]] + 12 + 8
    assert agents.occupancy is not None and 0 < agents.occupancy < 1
    assert out.result.events > 5 * (billing.offered + support.offered)
    assert out.unfinished == 0 and not out.exact


def test_runs_are_reproducible_and_the_seed_matters(host: PluginHost) -> None:
    config = loads(DAY)
    first, second = run(config, host).result, run(config, host).result
    assert _figures(first) == _figures(second)
    assert config.simulation is not None
    other = msgspec.structs.replace(
        config, simulation=msgspec.structs.replace(config.simulation, seed=4)
    )
    assert _figures(run(other, host).result) != _figures(first)


def test_every_strategy_sees_the_same_traffic(host: PluginHost) -> None:
    config = loads(DAY)
    results = {s: run(config, host, strategy=s).result for s in ("longest-idle", "round-robin")}
    offered = {s: [q.offered for q in r.queues.values()] for s, r in results.items()}
    assert offered["longest-idle"] == offered["round-robin"]
    assert _figures(results["longest-idle"]) != _figures(results["round-robin"])


@pytest.mark.parametrize(
    ("strategy", "pickup"), [(None, 4), ("ring-all", 4), ("random", 4), (None, 12)]
)
def test_fast_timers_change_nothing(host: PluginHost, strategy: str | None, pickup: int) -> None:
    """Fast mode (timers fired lazily) and exact mode give the very same run, also when
    slow pick-ups make offers ring out (15 s) and agents go not ready after misses."""
    config = loads(DAY.replace("mean = 4 }", f"mean = {pickup} }}"))
    if strategy is not None:
        queues = [msgspec.structs.replace(q, strategy=strategy) for q in config.queues]
        config = msgspec.structs.replace(config, queues=queues)
    assert config.simulation is not None
    arrivals = synthetic(config.simulation)
    fast = _Engine(config, host, config.simulation, fast=True).run(arrivals, False, None)
    exact = _Engine(config, host, config.simulation, fast=False).run(arrivals, False, None)
    assert _figures(fast.result) == _figures(exact.result)
    assert fast.result.events == exact.result.events


def test_queues_with_escalation_run_with_exact_timers(host: PluginHost) -> None:
    config = loads(
        DAY.replace(
            'name = "support"\n',
            'name = "support"\nmax_wait = 30\non_max_wait = { action = "close" }\n',
        )
    )
    out = run(config, host)
    assert out.exact
    support = out.result.queues["support"]
    assert support.answered + support.abandoned < support.offered  # the closed ones


def test_contacts_nobody_can_take_are_reported(host: PluginHost) -> None:
    config = from_dict(
        {
            "queues": [{"name": "q", "skills": {"french": 3}}],
            "simulation": {
                "duration": 600,
                "agents": [{"count": 2}],
                "traffic": [{"queue": "q", "rate": 60, "handle": {"mean": 60}}],
            },
        }
    )
    out = run(config, host)
    assert out.unfinished == out.result.queues["q"].offered > 0
    assert out.result.queues["q"].service_level is None


def test_gini() -> None:
    assert gini([5, 5, 5]) == 0
    assert gini([0, 0, 9]) == pytest.approx(2 / 3)
    assert gini([]) is None and gini([0, 0]) is None


class Observer:
    """A plugin that watches the simulated day, one hook sync and one async."""

    def __init__(self) -> None:
        self.events = 0
        self.completed: list[str] = []
        self.started = self.stopped = False

    @hookimpl
    def omniroute_startup(self, app: Any) -> None:
        self.started = app.simulated

    @hookimpl
    def omniroute_event(self, event: ev.Event) -> None:
        self.events += 1

    @hookimpl
    async def omniroute_interaction_completed(self, event: ev.Completed) -> None:
        self.completed.append(event.interaction_id)

    @hookimpl
    def omniroute_shutdown(self) -> None:
        self.stopped = True


def test_plugins_observe_the_simulated_events() -> None:
    host = PluginHost(entry_points=False)
    observer = Observer()
    host.register(observer, name="observer")
    config = loads(DAY.replace("duration = 7200", "duration = 2400"))
    out = run(config, host)
    assert observer.started and observer.stopped
    assert observer.events == out.result.events
    assert len(observer.completed) == len(set(observer.completed)) > 100


# ------------------------------------------------------------------ the command


def test_simulate_prints_a_table(
    builtins_only: None, day_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["simulate", str(day_file), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == [
        "QUEUE",
        "OFFERED",
        "ANSWERED",
        "ABANDONED",
        "SL",
        "ASA",
        "AWT",
        "AHT",
        "MAX",
        "WAIT",
    ]
    assert lines[1].startswith("billing") and lines[2].startswith("support")
    assert "agents: 21, occupancy" in out
    assert err == ""


def test_simulate_json_has_exactly_the_issue_shape(
    builtins_only: None, day_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["simulate", str(day_file), "--json", "--seed", "9"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"queues", "agents", "events", "wall_seconds"}
    assert set(out["queues"]) == {"billing", "support"}
    assert all(set(q) == QUEUE_KEYS for q in out["queues"].values())
    assert set(out["agents"]) == AGENT_KEYS
    config = loads(DAY)
    assert config.simulation is not None
    config = msgspec.structs.replace(
        config, simulation=msgspec.structs.replace(config.simulation, seed=9)
    )
    direct = run(config, PluginHost(entry_points=False)).result
    assert out["queues"]["billing"]["offered"] == direct.queues["billing"].offered


def test_simulate_compare(
    builtins_only: None, day_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", str(day_file), "--compare", "longest-idle,fewest-answered"]
    assert cli.main([*argv, "--duration", "3600"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["KPI", "longest-idle", "fewest-answered"]
    assert "billing service_level" in out and "agents answered_gini" in out
    assert cli.main([*argv, "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert list(both) == ["longest-idle", "fewest-answered"]
    assert (
        both["longest-idle"]["queues"]["billing"]["offered"]
        == (both["fewest-answered"]["queues"]["billing"]["offered"])
    )


def test_simulate_compare_unknown_strategy(
    builtins_only: None, day_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["simulate", str(day_file), "--compare", "longest-idle,fastest"]) == 1
    assert "unknown strategy 'fastest'; installed: best-skill" in capsys.readouterr().err


def test_simulate_progress_bar(
    builtins_only: None, day_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["simulate", str(day_file), "--progress", "--duration", "1200"]) == 0
    err = capsys.readouterr().err
    assert "simulate [" in err and "100%" in err and err.endswith("\n")


def test_simulate_config_errors_are_prefixed_by_the_file(
    builtins_only: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(DAY.replace("seed = 3", 'seed = "three"'))
    assert cli.main(["simulate", str(path)]) == 1
    assert f"{path}: simulation.seed: expected int, got str" in capsys.readouterr().err


def test_simulate_without_a_section(
    builtins_only: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('[[queues]]\nname = "q"\n')
    assert cli.main(["simulate", str(path)]) == 1
    assert "has no [simulation] section" in capsys.readouterr().err


def test_simulate_plot(
    builtins_only: None, day_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "day.png"
    assert cli.main(["simulate", str(day_file), "--plot", str(png), "--duration", "3600"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {png}" in capsys.readouterr().out


def test_plot_without_matplotlib_names_the_extra(
    builtins_only: None,
    day_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert cli.main(["simulate", str(day_file), "--plot", str(tmp_path / "x.png")]) == 1
    assert "pip install 'omniroute[plot]'" in capsys.readouterr().err


# ------------------------------------------------------------------ replay

T0 = 1_767_600_000.0


def _queued(at: float, cid: str, queue: str = "billing") -> ev.Event:
    ix = Interaction(id=cid, channel="voice", queue=queue, enqueued_at=at, created_at=at)
    return ev.InteractionQueued(at=at, interaction=ix)


def write_log(path: Path, events: list[ev.Event]) -> Path:
    """The export format of `omniroute store export`: one {"seq", "event"} per line."""
    with path.open("wb") as out:
        for seq, event in enumerate(events, 1):
            out.write(b'{"seq": %d, "event": %s}\n' % (seq, ev.encode(event)))
    return path


def recorded_day(path: Path) -> Path:
    return write_log(
        path,
        [
            _queued(T0, "c1"),
            ev.Assigned(at=T0 + 5, interaction_id="c1", agent_id="x", offer_id="o1"),
            _queued(T0 + 10, "c2"),
            _queued(T0 + 20, "c3"),
            ev.Assigned(at=T0 + 30, interaction_id="c3", agent_id="y", offer_id="o2"),
            ev.Abandoned(at=T0 + 40, interaction_id="c2"),
            ev.Transferred(at=T0 + 50, interaction_id="c3", from_agent="y", to_queue="billing"),
            ev.Assigned(at=T0 + 60, interaction_id="c3", agent_id="z", offer_id="o3"),
            ev.Completed(at=T0 + 100, interaction_id="c3", agent_id="z", wrap_up_until=T0 + 110),
            ev.Completed(at=T0 + 125, interaction_id="c1", agent_id="x", wrap_up_until=T0 + 135),
            _queued(T0 + 200, "c4", queue="support"),
            _queued(T0 + 210, "c5"),
            ev.Closed(at=T0 + 220, interaction_id="c5", reason="max_wait"),
            ev.Note(at=T0 + 900, kind="end of the export"),
        ],
    )


def test_replay_reads_arrivals_handle_times_and_patience(tmp_path: Path) -> None:
    log = recorded_day(tmp_path / "events.jsonl")
    arrivals, first, span = read_arrivals(log, ["billing", "support"])
    assert (first, span) == (T0, 210)
    by_time = {round(a[0] - T0): a for a in arrivals}
    assert sorted(by_time) == [0, 10, 20, 200, 210]
    assert by_time[0][1] == ("billing", "voice", (), 0)
    assert by_time[0][2] == 120  # assigned at +5, completed at +125
    assert by_time[20][2] == 60  # 20 s with the first agent, 40 s after the transfer
    assert by_time[10][3] == 30  # abandoned after 30 s: that was their patience
    assert by_time[0][3] is not None and by_time[0][3] > 5  # waited 5 s, would have more
    assert by_time[200][2] in (120, 60)  # never completed: a recorded handle time
    assert by_time[200][3] is None  # no abandons in "support": patient customers
    # Closed after 10 s: would have waited at least that long, not until the log ends.
    patience = by_time[210][3]
    assert patience is not None and 10 < patience < 500


def test_replay_through_the_command(
    builtins_only: None, tmp_path: Path, day_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = recorded_day(tmp_path / "events.jsonl")
    day_file.write_text(DAY.replace("warmup = 300", ""))  # count every replayed contact
    assert cli.main(["simulate", str(day_file), "--replay", str(log), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["queues"]["billing"]["offered"] + out["queues"]["support"]["offered"] == 5


def test_replay_errors_name_file_and_line(tmp_path: Path) -> None:
    log = recorded_day(tmp_path / "events.jsonl")
    with pytest.raises(ReplayError, match=r'line 11: queue "support" is not in the config'):
        read_arrivals(log, ["billing"])
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(log.read_bytes() + b'{"seq": 15, "event": {"type": "nope"}}\n')
    with pytest.raises(ReplayError, match=r"broken.jsonl: line 15: "):
        read_arrivals(broken, ["billing", "support"])
    with pytest.raises(ReplayError, match="cannot read"):
        read_arrivals(tmp_path / "missing.jsonl", ["billing"])


def _figures(result: Any) -> Any:
    """Everything but the wall-clock time."""
    data = msgspec.to_builtins(result)
    data.pop("wall_seconds")
    return data


def test_run_returns_a_run(host: PluginHost) -> None:
    assert isinstance(run(loads(DAY.replace("7200", "3600")), host), Run)


class Recorder:
    """Writes every simulated event in the export format, as `omniroute store export`."""

    def __init__(self, path: Path) -> None:
        self.out = path.open("wb")
        self.seq = 0

    @hookimpl
    def omniroute_event(self, event: ev.Event) -> None:
        self.seq += 1
        self.out.write(b'{"seq": %d, "event": %s}\n' % (self.seq, ev.encode(event)))

    @hookimpl
    def omniroute_shutdown(self) -> None:
        self.out.close()


def test_replaying_a_day_reproduces_it(tmp_path: Path) -> None:
    """The contacts of a recorded day, replayed through the same team and strategies,
    meet the same fate: same arrivals, handle times and (for those who left) patience."""
    config = loads(DAY.replace("warmup = 300", "").replace("duration = 7200", "duration = 3600"))
    recording = PluginHost(entry_points=False)
    log = tmp_path / "day.jsonl"
    recording.register(Recorder(log), name="recorder")
    original = run(config, recording).result
    arrivals, _, _ = read_arrivals(log, ["billing", "support"])
    replayed = run(config, PluginHost(entry_points=False), arrivals=arrivals).result
    for name in ("billing", "support"):
        before, after = original.queues[name], replayed.queues[name]
        assert (after.offered, after.answered, after.abandoned) == (
            before.offered,
            before.answered,
            before.abandoned,
        )
        assert after.service_level == before.service_level
        assert after.asa == pytest.approx(before.asa, rel=1e-9)
        assert after.aht == pytest.approx(before.aht, rel=1e-9)

"""The `omniroute` command line, run in-process through `main` and once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

import omniroute
from omniroute import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "omniroute.toml"


class Info(msgspec.Struct):
    name: str
    version: str | None
    distribution: str | None
    builtin: bool
    hooks: list[str]


class TelegramConfig(msgspec.Struct, forbid_unknown_fields=True):
    token: str


class FakeHost:
    """Stands in for omniroute.plugins.PluginHost: registries and describe()."""

    def strategies(self) -> dict[str, object]:
        return {"round-robin": object(), "longest-idle": object(), "best-skill": object()}

    def channels(self) -> dict[str, object]:
        return {}

    def queue_selectors(self) -> dict[str, object]:
        return {"priority-sla-wait": object()}

    def config_sections(self) -> dict[str, Any]:
        return {"telegram": TelegramConfig}

    def describe(self) -> list[Info]:
        return [
            Info("omniroute.router.strategies", None, None, True, ["omniroute_strategies"]),
            Info("telegram", "1.2.0", "omniroute-telegram", False, ["omniroute_channels"]),
        ]


@pytest.fixture
def fake_host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    host = FakeHost()
    monkeypatch.setattr(cli, "plugin_host", lambda: host)
    return host


@pytest.fixture
def only_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real PluginHost, blind to whatever else is installed."""
    pytest.importorskip("omniroute.plugins")
    monkeypatch.setenv("OMNIROUTE_LOAD_PLUGINS", "")
    monkeypatch.delenv("OMNIROUTE_DISABLED_PLUGINS", raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omniroute.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------ top level


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: omniroute")
    assert "check" in out and "plugins" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"omniroute {omniroute.__version__}\n"


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: omniroute" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_commands_are_registered_in_a_registry() -> None:
    assert {"check", "plugins"} <= set(cli.COMMANDS)


def test_a_new_command_is_one_decorated_function(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))

    def arguments(parser: Any) -> None:
        parser.add_argument("--name", default="world")

    @cli.command("hello", "say hello", arguments)
    def hello(args: Any) -> int:
        print(f"hello {args.name}")
        return 3

    assert cli.main(["hello", "--name", "omniroute"]) == 3
    assert capsys.readouterr().out == "hello omniroute\n"


# ------------------------------------------------------------------ check


def test_check_ok(fake_host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        '[[queues]]\nname = "a"\nstrategy = "round-robin"\n'
        '[[queues]]\nname = "b"\nstrategy = "best-skill"\n'
        '[[agents]]\nid = "x"\n[plugins.telegram]\ntoken = "t"\n',
    )
    assert cli.main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ok: 2 queues, 1 agent\n"
    assert captured.err == ""


def test_check_prints_every_error_prefixed_by_the_file(
    fake_host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '[[queues]]\nname = "a"\nstrategy = "round-robin"\n'
        '[[queues]]\nname = "b"\nsla = { seconds = "20" }\nstratgy = "x"\n',
    )
    assert cli.main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}: queues[1].sla.seconds: expected int, got str",
        f'{path}: queues[1]: unknown field "stratgy"; did you mean "strategy"?',
    ]


def test_check_runs_plugin_checks(
    fake_host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '[[queues]]\nname = "a"\nstrategy = "longest-idl"\n[plugins.telegram]\ntokn = "t"\n',
    )
    assert cli.main(["check", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f'{path}: queues[0].strategy: unknown strategy "longest-idl"; '
        "installed: best-skill, longest-idle, round-robin",
        f'{path}: plugins.telegram: unknown field "tokn"; did you mean "token"?',
        f'{path}: plugins.telegram: missing required field "token"',
    ]


def test_check_syntax_error_is_not_prefixed_twice(
    fake_host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "a = = 1\n")
    assert cli.main(["check", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: line 1, column 5: invalid value\n"


def test_check_missing_file(
    fake_host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.toml"
    assert cli.main(["check", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: cannot read: No such file or directory\n"


def test_check_runs_a_sections_own_cross_checks(
    fake_host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plugin section naming a queue the file lacks is found by `check`, not only
    once `serve` has started the channel (ConfigSpec.check)."""
    from omniroute.specs import ConfigSpec

    def check(settings: TelegramConfig, config: Any) -> list[str]:
        if settings.token in {q.name for q in config.queues}:
            return []
        return [f'plugins.telegram.token: no queue "{settings.token}"']

    spec = ConfigSpec(section="telegram", type=TelegramConfig, check=check)
    monkeypatch.setattr(fake_host, "config_sections", lambda: {"telegram": spec})
    good = write(tmp_path, '[[queues]]\nname = "a"\n[plugins.telegram]\ntoken = "a"\n')
    assert cli.main(["check", str(good)]) == 0
    bad = write(tmp_path, '[[queues]]\nname = "a"\n[plugins.telegram]\ntoken = "b"\n')
    assert cli.main(["check", str(bad)]) == 1
    assert capsys.readouterr().err == f'{bad}: plugins.telegram.token: no queue "b"\n'


def test_check_without_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check"]) == 2
    assert "CONFIG" in capsys.readouterr().err


def test_check_example_with_the_real_plugin_host(
    only_builtins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == "ok: 4 queues, 7 agents\n"


def test_check_unknown_strategy_with_the_real_plugin_host(
    only_builtins: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[[queues]]\nname = "a"\nstrategy = "longest-idl"\n')
    assert cli.main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f'{path}: queues[0].strategy: unknown strategy "longest-idl"; installed: '
    )
    assert "longest-idle" in err and "round-robin" in err


# ------------------------------------------------------------------ plugins


def test_plugins_table(fake_host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "BUILTIN", "HOOKS"]
    assert lines[1].split() == [
        "omniroute.router.strategies",
        omniroute.__version__,
        "yes",
        "omniroute_strategies",
    ]
    assert lines[2].split() == ["telegram", "1.2.0", "no", "omniroute_channels"]
    assert "strategies: best-skill, longest-idle, round-robin" in lines
    assert "queue selectors: priority-sla-wait" in lines
    assert "config sections: telegram" in lines


def test_plugins_json(fake_host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strategies"] == ["best-skill", "longest-idle", "round-robin"]
    assert data["queue_selectors"] == ["priority-sla-wait"]
    assert data["config_sections"] == ["telegram"] and data["channels"] == []
    assert data["plugins"] == [
        {
            "name": "omniroute.router.strategies",
            "version": cli.__version__,
            "distribution": None,
            "builtin": True,
            "hooks": ["omniroute_strategies"],
        },
        {
            "name": "telegram",
            "version": "1.2.0",
            "distribution": "omniroute-telegram",
            "builtin": False,
            "hooks": ["omniroute_channels"],
        },
    ]


def test_plugins_with_the_real_plugin_host(
    only_builtins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "omniroute.router.strategies" in out
    strategies = next(line for line in out.splitlines() if line.startswith("strategies: "))
    assert "longest-idle" in strategies and "round-robin" in strategies
    assert any(line.startswith("queue selectors: ") for line in out.splitlines())


def test_plugins_json_with_the_real_plugin_host(
    only_builtins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {item["name"]: item for item in data["plugins"]}
    assert by_name["omniroute.router.strategies"]["builtin"] is True
    assert set(data["plugins"][0]) == {"name", "version", "distribution", "builtin", "hooks"}
    assert "longest-idle" in data["strategies"]


def test_plugin_load_failure_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = pytest.importorskip("omniroute.plugins")

    def broken() -> Any:
        raise plugins.PluginError("plugin 'x' implements unknown hook 'omniroute_strategy'")

    monkeypatch.setattr(cli, "plugin_host", broken)
    assert cli.main(["plugins"]) == 1
    assert capsys.readouterr().err == (
        "omniroute: error: cannot load plugins: "
        "plugin 'x' implements unknown hook 'omniroute_strategy'\n"
    )


# ------------------------------------------------------------------ as a program


@pytest.mark.slow
def test_python_dash_m_omniroute(only_builtins: None) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    version = subprocess.run(
        [sys.executable, "-m", "omniroute", "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"omniroute {omniroute.__version__}\n"
    checked = subprocess.run(
        [sys.executable, "-m", "omniroute", "check", "examples/omniroute.toml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "ok: 4 queues, 7 agents\n"

"""The plugin host: registration records, entry points, env switches, failure isolation."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from omniroute import (
    ChannelSpec,
    ConfigSpec,
    Identity,
    QueueSelectorSpec,
    ReportSpec,
    RouteSpec,
    ScorerSpec,
    StrategySpec,
    hookimpl,
)
from omniroute.plugins import PluginError, PluginHost, PluginInfo
from omniroute.testing import EchoChannel

# Once omniroute is installed its pytest11 entry point loads omniroute.testing; from a
# plain checkout load it here (loading it both ways would be an error).
if not importlib.metadata.entry_points(group="pytest11", name="omniroute"):
    pytest_plugins = ["omniroute.testing"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "omniroute-strategy-example"
ENV_SWITCHES = ("OMNIROUTE_LOAD_PLUGINS", "OMNIROUTE_DISABLED_PLUGINS", "OMNIROUTE_TRACE_PLUGINS")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_SWITCHES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def host() -> PluginHost:
    """A host with nothing in it: no built-ins, no entry points."""
    return PluginHost(entry_points=False, builtins=())


def _strategy(name: str) -> StrategySpec:
    return StrategySpec(name=name, factory=lambda queue: None)  # type: ignore[arg-type,return-value]


class Strategies:
    """A plugin providing the strategies it is given."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def omniroute_strategies(self) -> Iterator[StrategySpec]:
        for name in self.names:
            yield _strategy(name)


class Recorder:
    """A notification plugin that records its calls and can be told to fail."""

    def __init__(self, answer: Any = None, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def omniroute_event(self, event: Any, app: Any) -> Any:
        self.calls.append({"event": event, "app": app})
        if self.fail:
            raise RuntimeError("boom")
        return self.answer


# ---------------------------------------------------------------------- registration


def test_default_host_registers_the_builtins_first() -> None:
    host = PluginHost(entry_points=False)

    assert "longest-idle" in host.strategies()
    assert host.queue_selectors()
    infos = host.describe()
    assert [i.name for i in infos] == ["omniroute.router.strategies", "omniroute.router.selectors"]
    assert infos[0] == PluginInfo(
        name="omniroute.router.strategies",
        version=None,
        distribution=None,
        builtin=True,
        hooks=["omniroute_strategies"],
    )


def test_every_collector_returns_the_records_of_its_hook(host: PluginHost) -> None:
    class Everything:
        @hookimpl
        def omniroute_strategies(self) -> Any:
            yield _strategy("s")

        @hookimpl
        def omniroute_queue_selectors(self) -> Any:
            return [QueueSelectorSpec(name="q", factory=object)]  # a list is fine too

        @hookimpl
        def omniroute_channels(self) -> Any:
            return ChannelSpec(name="c", factory=lambda config, app: EchoChannel())  # one record

        @hookimpl
        def omniroute_config_sections(self) -> Any:
            yield ConfigSpec(section="everything", type=msgspec.Struct)

        @hookimpl
        def omniroute_web_routes(self) -> Any:
            yield RouteSpec(path="/x", endpoint=print)
            yield RouteSpec(path="/x", endpoint=print, methods=("POST",))
            yield RouteSpec(path="/x", endpoint=print, websocket=True)

        @hookimpl
        def omniroute_qa_scorers(self) -> Any:
            yield ScorerSpec(name="polite", score=lambda interaction: None)

        @hookimpl
        def omniroute_reports(self) -> Any:
            yield ReportSpec(name="daily", build=print)

    host.register(Everything(), name="everything")

    assert list(host.strategies()) == ["s"]
    assert list(host.queue_selectors()) == ["q"]
    assert list(host.channels()) == ["c"]
    assert list(host.config_sections()) == ["everything"]
    assert len(host.web_routes()) == 3
    assert list(host.qa_scorers()) == ["polite"]
    assert list(host.reports()) == ["daily"]
    assert host.describe()[0].hooks == sorted(
        f"omniroute_{hook}"
        for hook in (
            "strategies",
            "queue_selectors",
            "channels",
            "config_sections",
            "web_routes",
            "qa_scorers",
            "reports",
        )
    )


def test_records_come_in_registration_order_not_pluggy_call_order(host: PluginHost) -> None:
    host.register(Strategies("a1", "a2"), name="a")
    host.register(Strategies("b1"), name="b")

    assert list(host.strategies()) == ["a1", "a2", "b1"]


def test_a_duplicate_name_names_both_plugins(register_plugin: Any, plugin_host: Any) -> None:
    register_plugin(Strategies("longest-idle"), name="my-plugin")

    with pytest.raises(PluginError) as info:
        plugin_host.strategies()

    assert str(info.value) == (
        "strategy 'longest-idle' is provided by both 'omniroute.router.strategies' and 'my-plugin'"
    )


def test_a_duplicate_web_route_is_per_path_and_method(host: PluginHost) -> None:
    class Routes:
        def __init__(self, *methods: str) -> None:
            self.methods = methods

        @hookimpl
        def omniroute_web_routes(self) -> Any:
            yield RouteSpec(path="/hook", endpoint=print, methods=self.methods)

    host.register(Routes("GET"), name="one")
    host.register(Routes("POST"), name="two")
    assert len(host.web_routes()) == 2

    host.register(Routes("post"), name="three")
    with pytest.raises(PluginError, match="web route 'POST /hook' is provided by both 'two' and"):
        host.web_routes()


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ([ChannelSpec(name="c", factory=print)], r"gave ChannelSpec .* expected StrategySpec"),
        (["longest-idle"], r"gave str 'longest-idle'; expected StrategySpec"),
        (42, r"returned int; expected StrategySpec records"),
    ],
)
def test_records_of_the_wrong_type_are_rejected(
    host: PluginHost, returned: Any, message: str
) -> None:
    class Wrong:
        @hookimpl
        def omniroute_strategies(self) -> Any:
            return returned

    host.register(Wrong(), name="wrong")

    with pytest.raises(PluginError, match=r"plugin 'wrong', hook 'omniroute_strategies'"):
        host.strategies()
    with pytest.raises(PluginError, match=message):
        host.strategies()


def test_a_registration_hook_must_be_synchronous(host: PluginHost) -> None:
    class Async:
        @hookimpl
        async def omniroute_strategies(self) -> Any:
            return [_strategy("late")]

    host.register(Async(), name="async")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed, not left un-awaited
        with pytest.raises(PluginError, match=r"'async'.* must be synchronous"):
            host.strategies()


def test_a_registration_hook_that_raises_fails_loudly(host: PluginHost) -> None:
    class Broken:
        @hookimpl
        def omniroute_channels(self) -> Any:
            raise KeyError("token")

    host.register(Broken(), name="broken")

    with pytest.raises(PluginError, match=r"plugin 'broken', hook 'omniroute_channels' raised"):
        host.channels()


def test_a_misspelt_hook_fails_at_registration(host: PluginHost) -> None:
    class Misspelt:
        @hookimpl
        def omniroute_strategy(self) -> Any:
            yield _strategy("x")

    with pytest.raises(PluginError) as info:
        host.register(Misspelt(), name="typo")

    assert str(info.value) == (
        "plugin 'typo' implements unknown hook 'omniroute_strategy'; "
        "did you mean 'omniroute_strategies'?"
    )
    assert host.describe() == []  # nothing half-registered is left behind


def test_a_misspelt_hook_in_a_builtin_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("omniroute_test_typo")

    @hookimpl
    def omniroute_strategy() -> Any:
        return []

    module.omniroute_strategy = omniroute_strategy  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)

    with pytest.raises(PluginError, match="'omniroute_test_typo' implements unknown hook"):
        PluginHost(entry_points=False, builtins=[module.__name__])


def test_a_bad_signature_is_rejected_and_rolled_back(host: PluginHost) -> None:
    class BadArgs:
        @hookimpl
        def omniroute_event(self, event: Any, customer: Any) -> None: ...

    with pytest.raises(
        PluginError, match=r"Plugin 'bad' for hook 'omniroute_event'; .*\{'customer'\} are declared"
    ):
        host.register(BadArgs(), name="bad")
    assert host.describe() == []
    assert host.register(Recorder(), name="bad") == "bad"  # the name is free again


def test_hook_wrappers_are_refused(host: PluginHost) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def omniroute_strategies(self) -> Any:
            return (yield)

    with pytest.raises(PluginError, match=r"'wrap'.* do not support wrappers"):
        host.register(Wrapper(), name="wrap")
    assert host.describe() == []


def test_register_and_unregister(host: PluginHost) -> None:
    plugin = Strategies("x")

    assert host.register(plugin) is not None  # a canonical name is made up
    with pytest.raises(PluginError, match="already registered"):
        host.register(plugin, name="again")

    assert host.register(Strategies("y"), name="mine") == "mine"
    assert host.unregister("mine") is not None
    assert host.unregister("mine") is None
    assert list(host.strategies()) == ["x"]


def test_describe_is_json_ready(host: PluginHost) -> None:
    host.register(Recorder(), name="recorder")

    assert json.loads(msgspec.json.encode(host.describe())) == [
        {
            "name": "recorder",
            "version": None,
            "distribution": None,
            "builtin": False,
            "hooks": ["omniroute_event"],
        }
    ]


# ---------------------------------------------------------------------- entry points


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution 'omniroute-test-plugins' 1.2.3 with entry points alpha and beta."""
    modules = {"omniroute_test_alpha": "a", "omniroute_test_beta": "b"}
    for module, strategy in modules.items():
        (tmp_path / f"{module}.py").write_text(
            textwrap.dedent(f"""
                from omniroute import StrategySpec, hookimpl

                @hookimpl
                def omniroute_strategies():
                    yield StrategySpec(name={strategy!r}, factory=lambda queue: None)
            """)
        )
    _dist(
        tmp_path,
        "omniroute-test-plugins",
        "1.2.3",
        beta="omniroute_test_beta",
        alpha="omniroute_test_alpha",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in modules:
        sys.modules.pop(module, None)


def _dist(where: Path, name: str, version: str, **entry_points: str) -> None:
    info = where / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {module}\n" for ep, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[omniroute]\n{lines}")


def test_entry_point_plugins_load_sorted_by_name_after_builtins(installed: Path) -> None:
    host = PluginHost(builtins=())

    assert list(host.strategies()) == ["a", "b"]
    ours = [info for info in host.describe() if info.distribution == "omniroute-test-plugins"]
    assert ours == [
        PluginInfo(
            name=name,
            version="1.2.3",
            distribution="omniroute-test-plugins",
            builtin=False,
            hooks=["omniroute_strategies"],
        )
        for name in ("alpha", "beta")
    ]


def test_entry_points_false_loads_none(installed: Path) -> None:
    assert PluginHost(entry_points=False, builtins=()).describe() == []


def test_load_plugins_loads_only_those(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIROUTE_LOAD_PLUGINS", " beta, ")

    assert [i.name for i in PluginHost(builtins=()).describe()] == ["beta"]

    monkeypatch.setenv("OMNIROUTE_LOAD_PLUGINS", "")
    assert PluginHost(builtins=()).describe() == []


def test_load_plugins_with_an_unknown_name_fails(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIROUTE_LOAD_PLUGINS", "alpha,gamma")

    with pytest.raises(PluginError, match="OMNIROUTE_LOAD_PLUGINS names 'gamma'"):
        PluginHost(builtins=())


def test_disabled_plugins_are_blocked(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIROUTE_DISABLED_PLUGINS", "beta,omniroute.router.selectors")

    host = PluginHost()

    names = [
        i.name for i in host.describe() if i.builtin or i.distribution == "omniroute-test-plugins"
    ]
    assert names == ["omniroute.router.strategies", "alpha"]
    assert host.disabled == {
        "beta": "blocked by OMNIROUTE_DISABLED_PLUGINS",
        "omniroute.router.selectors": "blocked by OMNIROUTE_DISABLED_PLUGINS",
    }
    assert host.register(Strategies(), name="beta") is None  # a blocked name stays blocked


def test_an_entry_point_that_cannot_load_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "omniroute_test_broken.py").write_text("raise RuntimeError('no config')\n")
    _dist(tmp_path, "omniroute-test-broken", "0.1", broken="omniroute_test_broken")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(PluginError, match=r"cannot load plugin 'broken': RuntimeError"):
        PluginHost(builtins=())


def test_trace_prints_every_call_with_arguments_and_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMNIROUTE_TRACE_PLUGINS", "1")
    host = PluginHost(entry_points=False, builtins=())
    host.register(Recorder(answer="seen"), name="recorder")
    host.register(Strategies("x"), name="strategies")

    host.call_sync("omniroute_event", event="E1", app=None)
    host.strategies()
    host.pm.hook.omniroute_event(event="E2", app=None)

    err = capsys.readouterr().err
    assert "recorder.omniroute_event(event='E1', app=None) -> 'seen'" in err
    assert "strategies.omniroute_strategies() -> [StrategySpec(name='x'" in err
    assert "pm.hook.omniroute_event(event='E2', app=None)" in err
    assert "pm.hook.omniroute_event -> ['seen']" in err


def test_no_trace_by_default(host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    host.register(Recorder(), name="recorder")
    host.call_sync("omniroute_event", event="E", app=None)

    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------- isolation


@pytest.mark.anyio
async def test_a_failing_plugin_is_logged_and_the_others_still_run(
    host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    first, broken, last = Recorder("first"), Recorder(fail=True), Recorder("last")
    host.register(first, name="first")
    host.register(broken, name="broken")
    host.register(last, name="last")

    with caplog.at_level(logging.ERROR, logger="omniroute.plugins"):
        results = await host.notify("omniroute_event", event="E", app="APP")

    assert results == ["last", "first"]  # pluggy's order: last registered first
    assert broken.calls == [{"event": "E", "app": "APP"}]
    [record] = caplog.records
    assert record.name == "omniroute.plugins"
    assert "plugin 'broken' failed in omniroute_event (1 of 5 in a row)" in record.getMessage()
    assert record.exc_info is not None


@pytest.mark.anyio
async def test_a_plugin_is_disabled_after_max_failures_in_a_row(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = PluginHost(entry_points=False, builtins=(), max_failures=3)
    broken, healthy = Recorder(fail=True), Recorder("ok")
    host.register(broken, name="broken")
    host.register(healthy, name="healthy")

    for _ in range(3):
        assert await host.notify("omniroute_event", event="E", app=None) == ["ok"]

    assert "disabled after 3 consecutive failures" in caplog.records[-1].getMessage()
    assert "plugin 'broken'" in caplog.records[-1].getMessage()
    assert host.disabled == {
        "broken": "3 consecutive failures, the last in omniroute_event: RuntimeError('boom')"
    }
    assert [i.name for i in host.describe()] == ["healthy"]

    await host.notify("omniroute_event", event="E", app=None)
    assert len(broken.calls) == 3
    assert len(healthy.calls) == 4


@pytest.mark.anyio
async def test_a_success_resets_the_failure_count() -> None:
    host = PluginHost(entry_points=False, builtins=(), max_failures=2)
    flaky = Recorder()
    host.register(flaky, name="flaky")

    for fail in (True, False, True, False, True):
        flaky.fail = fail
        await host.notify("omniroute_event", event="E", app=None)

    assert host.disabled == {}


@pytest.mark.anyio
async def test_async_implementations_are_awaited_and_get_only_their_arguments(
    host: PluginHost,
) -> None:
    seen: list[Any] = []

    class Async:
        @hookimpl
        async def omniroute_event(self, event: Any) -> str:
            await anyio.sleep(0)
            seen.append(event)
            return f"async {event}"

    host.register(Async(), name="async")

    assert await host.notify("omniroute_event", event="E", app="APP") == ["async E"]
    assert seen == ["E"]


@pytest.mark.anyio
async def test_calls_must_pass_exactly_the_hook_arguments(host: PluginHost) -> None:
    with pytest.raises(TypeError, match=r"omniroute_event takes \['app', 'event'\]"):
        await host.notify("omniroute_event", event="E")
    with pytest.raises(PluginError, match="no hook named 'omniroute_evnt'"):
        await host.notify("omniroute_evnt", event="E", app=None)


def test_call_sync_isolates_and_refuses_awaitables(
    host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    class Async:
        @hookimpl
        async def omniroute_event(self, event: Any) -> str:
            return "never"

    host.register(Async(), name="async")
    host.register(Recorder(fail=True), name="broken")
    host.register(Recorder("sync"), name="sync")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed, not left un-awaited
        assert host.call_sync("omniroute_event", event="E", app=None) == ["sync"]

    messages = [r.getMessage() for r in caplog.records]
    assert any("plugin 'broken' failed" in m for m in messages)
    assert any("plugin 'async' failed" in m and "synchronously" in m for m in messages)


@pytest.mark.anyio
async def test_first_result_awaits_each_in_turn(host: PluginHost) -> None:
    calls: list[str] = []

    def lookup(name: str, answer: Any, *, fail: bool = False) -> object:
        class Lookup:
            @hookimpl
            async def omniroute_customer_lookup(self, identity: Identity) -> Any:
                calls.append(name)
                if fail:
                    raise ConnectionError("CRM down")
                return answer

        return Lookup()

    host.register(lookup("fallback", "fallback customer"), name="fallback")
    host.register(lookup("crm", None), name="crm")  # an async None does not stop the chain
    host.register(lookup("down", None, fail=True), name="down")

    identity = Identity("voice", "+3212345678")
    result = await host.first_result(
        "omniroute_customer_lookup", identity=identity, interaction=None
    )

    assert result == "fallback customer"
    assert calls == ["down", "crm", "fallback"]
    host.unregister("fallback")
    assert (
        await host.first_result("omniroute_customer_lookup", identity=identity, interaction=None)
        is None
    )


# ---------------------------------------------------------------------- pytest fixtures


@pytest.fixture
def registered_names(plugin_host: PluginHost) -> Iterator[list[str]]:
    """Set up before `register_plugin`, so torn down after it: checks its clean-up."""
    names: list[str] = []
    yield names
    registered = {info.name for info in plugin_host.describe()}
    assert names and not registered & set(names)


def test_register_plugin_removes_its_plugins_at_teardown(
    registered_names: list[str], plugin_host: PluginHost, register_plugin: Any
) -> None:
    registered_names.append(register_plugin(Strategies("temporary"), name="temporary"))

    assert "temporary" in plugin_host.strategies()
    assert "longest-idle" in plugin_host.strategies()  # built-ins, but no entry points


@pytest.mark.anyio
async def test_echo_channel_is_a_channel_driven_by_hand(
    plugin_host: PluginHost, echo_channel: EchoChannel
) -> None:
    from omniroute import Message

    spec = plugin_host.channels()["echo"]
    assert spec.factory(None, "APP") is echo_channel

    first = echo_channel.contact("billing", subject="Invoice")
    second = echo_channel.contact(address="alice", id="chat-7")
    assert (first.id, first.channel, first.queue, first.subject) == (
        "echo-1",
        "echo",
        "billing",
        "Invoice",
    )
    assert second.id == "chat-7"
    assert second.customer is not None
    assert second.customer.identities == [Identity("echo", "alice")]
    assert echo_channel.contacts == [first, second]

    async with anyio.create_task_group() as tg:
        tg.start_soon(echo_channel.run, "APP")
        await anyio.sleep(0)
        assert echo_channel.running and echo_channel.app == "APP"
        await echo_channel.deliver(
            first, Message(id="m1", interaction_id=first.id, sender="agent:ann", text="Hi")
        )
        tg.cancel_scope.cancel()
    assert not echo_channel.running
    assert echo_channel.messages(first.id) == ["Hi"]


# ---------------------------------------------------------------------- the example


def _pytest_plugin_args() -> list[str]:
    """`-p omniroute.testing` unless omniroute is installed (then pytest loads it)."""
    if importlib.metadata.entry_points(group="pytest11", name="omniroute"):
        return []
    return ["-p", "omniroute.testing"]


@pytest.mark.slow
def test_the_example_distribution_installs_as_a_plugin(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        cwd=tmp_path,
    )
    script = textwrap.dedent("""
        import msgspec
        from omniroute.plugins import PluginHost

        host = PluginHost()
        assert "most-skilled" in host.strategies(), host.strategies()
        [info] = [i for i in host.describe() if i.name == "most-skilled"]
        print(msgspec.json.encode(info).decode())
    """)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTE_")},
        "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "name": "most-skilled",
        "version": "0.1.0",
        "distribution": "omniroute-strategy-example",
        "builtin": False,
        "hooks": ["omniroute_strategies"],
    }


@pytest.mark.slow
def test_the_example_tests_pass(tmp_path: Path) -> None:
    example = shutil.copytree(EXAMPLE, tmp_path / EXAMPLE.name)  # leave no files behind
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *_pytest_plugin_args()],
        cwd=example,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout

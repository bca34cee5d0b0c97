"""Channel actions on one node: declared by a plugin, run by `App.channel_call` with
their payload and answer decoded as declared, refused by name, answered over HTTP with
the status the action chose (the cluster's relay: tests/test_cluster_actions.py)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import anyio
import pytest
import relay_probe
from relay_probe import Where
from webkit import document, serving

from omniroute import hookimpl
from omniroute.actions import ActionError, UnknownAction
from omniroute.app import App
from omniroute.plugins import PluginHost
from omniroute.router.core import RouterError
from omniroute.specs import ChannelSpec, ConfigSpec
from omniroute.store import MemoryStore

if not importlib.metadata.entry_points(group="pytest11", name="omniroute"):
    pytest_plugins = ["omniroute.testing"]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def probe_app(plugin_host: PluginHost) -> App:
    plugin_host.register(relay_probe, name="relay-probe")
    return App.from_dict(
        {**document(), "plugins": {"probe": {}}}, store=MemoryStore(encode=True), host=plugin_host
    )


async def test_an_action_runs_on_the_channel_with_its_declared_types(
    plugin_host: PluginHost,
) -> None:
    async with probe_app(plugin_host).running() as app:
        await anyio.wait_all_tasks_blocked()
        answer = await app.channel_call("probe", "where", {"tag": "one"})
        assert isinstance(answer, Where)  # decoded to the declared return type
        assert (answer.role, answer.running, answer.count, answer.tag) == ("leader", True, 1, "one")
        assert (await app.channel_call("probe", "where")).count == 2  # defaults apply
        assert await app.channel_call("probe", "note", {"text": "hi"}) == app.seq


async def test_unknown_actions_and_bad_payloads_are_refused_by_name(
    plugin_host: PluginHost,
) -> None:
    async with probe_app(plugin_host).running() as app:
        with pytest.raises(UnknownAction, match=r'no action "hold" \(actions: conflict, crash'):
            await app.channel_call("probe", "hold", {})
        with pytest.raises(UnknownAction, match='no channel "voice" runs') as caught:
            await app.channel_call("voice", "hold", {})
        assert caught.value.status == 404
        with pytest.raises(ActionError, match=r"probe.where: payload: .*str.*\$.tag") as bad:
            await app.channel_call("probe", "where", {"tag": 3})
        assert bad.value.status == 422
        with pytest.raises(ActionError, match="unknown field `colour`"):
            await app.channel_call("probe", "where", {"colour": "red"})
        with pytest.raises(ActionError, match="missing required field `status`"):
            await app.channel_call("probe", "refuse", {})
        assert app.channels["probe"].count == 0  # nothing ran


async def test_errors_come_back_as_on_every_node(plugin_host: PluginHost) -> None:
    async with probe_app(plugin_host).running() as app:
        with pytest.raises(ActionError, match="gone") as caught:
            await app.channel_call("probe", "refuse", {"status": 410, "message": "gone"})
        assert caught.value.status == 410
        with pytest.raises(RouterError, match="i9"):
            await app.channel_call("probe", "conflict")
        # A plugin's bug is logged where it ran; the caller learns which action failed.
        with pytest.raises(RuntimeError, match=r"probe\.crash failed: KeyError"):
            await app.channel_call("probe", "crash")


async def test_a_plugin_route_answers_an_actions_refusal_with_its_status(
    plugin_host: PluginHost,
) -> None:
    async with serving(probe_app(plugin_host)) as site:
        ok = await site.call("ana", "POST", "/probe/where", json={"tag": "web"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["tag"] == "web"
        gone = await site.call("ana", "POST", "/probe/refuse", json={"status": 404})
        assert (gone.status_code, gone.json()["error"]) == (404, "refused")
        unknown = await site.call("ana", "POST", "/probe/teleport")
        assert unknown.status_code == 404 and '"teleport"' in unknown.json()["error"]
        bad = await site.call("ana", "POST", "/probe/where", json={"tag": 1})
        assert bad.status_code == 422 and "$.tag" in bad.json()["error"]
        conflict = await site.call("ana", "POST", "/probe/conflict")
        assert conflict.status_code == 409
        anonymous = await site.client.post("/probe/where", json={})
        assert anonymous.status_code == 401


class BadDeclaration:
    def __init__(self, action: Any) -> None:
        self.action = action

    @hookimpl
    def omniroute_channels(self) -> Any:
        yield ChannelSpec(name="probe", factory=relay_probe.Probe, actions={"go": self.action})

    @hookimpl
    def omniroute_config_sections(self) -> Any:
        yield ConfigSpec(section="probe", type=relay_probe.ProbeSettings)


def sync_action(channel: Any, *, x: int) -> None:
    pass


async def unannotated(channel: Any, *, x) -> None:  # type: ignore[no-untyped-def]
    pass


async def loose(channel: Any, **payload: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (sync_action, "not an `async def` function"),
        (unannotated, "annotate payload field 'x'"),
        (loose, r"name every payload field \(no \*args, \*\*kwargs\)"),
    ],
)
async def test_a_badly_declared_action_stops_the_start_by_name(
    plugin_host: PluginHost, action: Any, error: str
) -> None:
    plugin_host.register(BadDeclaration(action), name="bad")
    app = App.from_dict(
        {**document(), "plugins": {"probe": {}}}, store=MemoryStore(), host=plugin_host
    )
    with pytest.raises(TypeError, match=f"channel 'probe', action 'go': .*{error}"):
        async with app.running():
            pass

"""Controls that channel plugins declare for the pages (`omniroute_controls`): served by
`GET /api/controls` to the roles that may use them, described in the OpenAPI document,
and refused when malformed or declared twice, naming the plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from webkit import Site, document, serving

from omniroute import hookimpl
from omniroute.app import App
from omniroute.controls import for_role
from omniroute.plugins import PluginError, PluginHost
from omniroute.specs import ChannelSpec, ControlField, ControlSpec
from omniroute.store import MemoryStore

pytestmark = pytest.mark.anyio

PATH = "/phone/{interaction_id}/hold"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Phone:
    """A channel plugin's controls: one for agents, one for supervisors."""

    def __init__(self, *extra: ControlSpec) -> None:
        self.extra = extra

    @hookimpl
    def omniroute_controls(self) -> Any:
        yield ControlSpec(channel="phone", name="hold", page="inbox", label="Hold", path=PATH)
        yield ControlSpec(
            channel="phone",
            name="listen",
            page="wallboard",
            label="Listen <b>now</b>",
            path="/phone/{interaction_id}/monitor",
            role="supervisor",
            fields=(ControlField(name="supervisor", kind="me"),),
            fixed={"mode": "listen"},
        )
        yield from self.extra


def host(*plugins: object) -> PluginHost:
    found = PluginHost(entry_points=False)
    for n, plugin in enumerate(plugins):
        found.register(plugin, name=f"p{n}")
    return found


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    app = App.from_dict(document(), store=MemoryStore(encode=True), host=host(Phone()))
    async with serving(app) as running:
        yield running


async def test_each_role_gets_the_controls_it_may_use(site: Site) -> None:
    agent = await site.call("ana", "GET", "/api/controls")
    assert agent.status_code == 200
    assert [c["name"] for c in agent.json()] == ["hold"]
    (hold,) = agent.json()
    assert hold["path"] == PATH and hold["method"] == "POST" and hold["states"] == ["assigned"]
    supervisor = await site.call("sue", "GET", "/api/controls")
    assert [c["name"] for c in supervisor.json()] == ["hold", "listen"]
    listen = supervisor.json()[1]
    assert listen["label"] == "Listen <b>now</b>"  # data: the pages insert it as text
    me = {"name": "supervisor", "kind": "me", "label": "", "required": True}
    assert listen["fields"] == [{**me, "choices": [], "source": ""}]
    assert listen["fixed"] == {"mode": "listen"}
    assert hold["status"] == listen["status"] == ""  # nothing either starts goes on
    assert (await site.call(None, "GET", "/api/controls")).status_code == 401


async def test_a_control_s_status_path_is_served_for_the_pages_to_ask() -> None:
    """Consult says where the page learns, on opening the interaction, whether a
    consultation goes on: Complete (after it) is then shown again after a reload."""
    status = "/phone/{interaction_id}/controls"
    consult = ControlSpec(
        channel="phone", name="consult", page="inbox", label="Consult",
        path="/phone/{interaction_id}/consult", status=status,
    )  # fmt: skip
    complete = ControlSpec(
        channel="phone", name="complete", page="inbox", label="Complete",
        path="/phone/{interaction_id}/consult/complete", after="consult",
    )  # fmt: skip
    app = App.from_dict(
        document(), store=MemoryStore(encode=True), host=host(Extra(consult, complete))
    )
    async with serving(app) as running:
        served = (await running.call("ana", "GET", "/api/controls")).json()
        doc = (await running.client.get("/api/openapi.json")).json()
    assert [(c["name"], c["status"], c["after"]) for c in served] == [
        ("consult", status, ""),
        ("complete", "", "consult"),
    ]
    assert doc["components"]["schemas"]["ControlSpec"]["properties"]["status"]["type"] == "string"


async def test_the_openapi_document_describes_the_controls(site: Site) -> None:
    doc = (await site.client.get("/api/openapi.json")).json()
    get = doc["paths"]["/api/controls"]["get"]
    assert get["tags"] == ["agent"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["items"]["$ref"].endswith("/ControlSpec")
    spec = doc["components"]["schemas"]["ControlSpec"]
    assert spec["properties"]["page"]["enum"] == ["inbox", "wallboard"]


class PhoneChannel:
    """The adapter `phone` whose routes the controls call, when the config enables it."""

    @hookimpl
    def omniroute_channels(self) -> Any:
        yield ChannelSpec(name="phone", factory=lambda config, app: None)


async def test_controls_of_a_channel_the_config_does_not_enable_are_not_offered() -> None:
    hold = ControlSpec(
        channel="phone", name="hold", page="inbox", label="Hold", path=PATH, adapter="phone"
    )
    app = App.from_dict(
        document(), store=MemoryStore(encode=True), host=host(PhoneChannel(), Extra(hold))
    )
    async with serving(app) as running:
        assert (await running.call("sue", "GET", "/api/controls")).json() == []
    app.channels["phone"] = object()  # type: ignore[assignment]  # as [plugins.phone] would
    assert for_role(app.host.controls(), "agent", app.channels) == [hold]


class Extra:
    def __init__(self, *controls: ControlSpec) -> None:
        self.controls = controls

    @hookimpl
    def omniroute_controls(self) -> Any:
        yield from self.controls


def test_a_control_declared_twice_is_refused() -> None:
    with pytest.raises(PluginError, match="control 'phone/hold' is provided by both 'p0' and 'p1'"):
        host(Phone(), Phone()).controls()


def bad(**fields: Any) -> ControlSpec:
    """A control "phone/x" with `fields` changed."""
    base: dict[str, Any] = {"channel": "phone", "name": "x", "page": "inbox", "label": "X"}
    return ControlSpec(**{**base, "path": PATH, **fields})


@pytest.mark.parametrize(
    "control,error",
    [
        (bad(path="/phone/x"), r"path '/phone/x' must start with / and hold \{interaction_id\}"),
        (bad(role="boss"), r"Invalid enum value 'boss' - at `\$\.role`"),
        (bad(after="consult"), "after names no control 'consult' of 'phone'"),
        (
            bad(fields=(ControlField(name="mode", kind="choice"),)),
            "field 'mode' is a choice without choices",
        ),
        (
            bad(fields=(ControlField(name="channel", kind="answer", source="nope"),)),
            "field 'channel' takes the answer of no control",
        ),
        (bad(adapter="fax"), "adapter names no channel adapter 'fax'"),
        (
            bad(status="/phone/controls"),
            r"status '/phone/controls' must start with / and hold \{interaction_id\}",
        ),
        (bad(status="phone/{interaction_id}"), r"status 'phone/\{interaction_id\}' must start"),
    ],
)
def test_a_malformed_control_is_refused_naming_the_plugin(control: ControlSpec, error: str) -> None:
    with pytest.raises(PluginError, match=rf"plugin 'p0', control phone/x: .*{error}"):
        host(Phone(control)).controls()


def test_the_web_app_refuses_to_start_with_a_malformed_control() -> None:
    from omniroute.web.asgi import create_asgi_app
    from omniroute.web.settings import Server

    bad = ControlSpec(channel="phone", name="x", page="inbox", label="X", path="/x")
    app = App.from_dict(document(), store=MemoryStore(encode=True), host=host(Phone(bad)))
    with pytest.raises(PluginError, match="must start with / and hold"):
        create_asgi_app(app, Server(secret="a-test-secret-of-enough-length"))

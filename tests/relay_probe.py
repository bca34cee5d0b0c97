"""A third party's plugin for the channel-action tests: a leader-only channel "probe"
with actions, and a web route that asks for them (`POST /probe/{action}`, JSON payload).

In-process tests register the module on a PluginHost; the `omniroute serve` cluster
test installs it through an entry point, as a plugin distribution would be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omniroute import hookimpl
from omniroute.actions import ActionError
from omniroute.router.core import RouterError
from omniroute.specs import ChannelSpec, ConfigSpec, RouteSpec


class ProbeSettings(msgspec.Struct, forbid_unknown_fields=True):
    pass


class Where(msgspec.Struct, frozen=True):
    """Where an action ran: the process, its App's role, whether the channel ran."""

    pid: int
    role: str
    running: bool
    count: int
    tag: str


class Probe:
    """A channel with no transport: it counts the actions run on it."""

    name = "probe"

    def __init__(self, settings: Any, app: Any) -> None:
        self.app = app
        self.running = False
        self.count = 0

    async def run(self, app: Any) -> None:
        self.running = True
        try:
            await anyio.sleep_forever()
        finally:
            self.running = False

    async def deliver(self, interaction: Any, message: Any) -> None:
        pass


async def where(probe: Probe, *, tag: str = "") -> Where:
    """Where this ran; counts the calls, so a test sees one that ran twice."""
    probe.count += 1
    return Where(os.getpid(), probe.app.role, probe.running, probe.count, tag)


async def refuse(probe: Probe, *, status: int, message: str = "refused") -> None:
    raise ActionError(message, status)


async def conflict(probe: Probe) -> None:
    raise RouterError('no interaction "i9"')


async def crash(probe: Probe) -> None:
    raise KeyError("a plugin bug")


async def note(probe: Probe, *, text: str) -> int:
    """Writes an event (through the leader's App); answers the log position after it."""
    await probe.app.add_note("probe.note", {"text": text})
    return int(probe.app.seq)


@hookimpl
def omniroute_channels() -> Iterator[ChannelSpec]:
    yield ChannelSpec(
        name="probe",
        factory=Probe,
        leader_only=True,
        actions={
            "where": where,
            "refuse": refuse,
            "conflict": conflict,
            "crash": crash,
            "note": note,
        },
    )


@hookimpl
def omniroute_config_sections() -> Iterator[ConfigSpec]:
    yield ConfigSpec(section="probe", type=ProbeSettings)


@hookimpl
def omniroute_web_routes() -> Iterator[RouteSpec]:
    yield RouteSpec(path="/probe/{action}", endpoint=_act, methods=("POST",))


async def _act(request: Request) -> Response:
    """The action named in the path, with the JSON body as its payload; errors are
    answered by omniroute's guard (ActionError's status, 409, 503)."""
    app = request.scope["app"].state.omniroute
    payload = msgspec.json.decode(await request.body() or b"{}")
    answer = await app.channel_call("probe", request.path_params["action"], payload)
    return JSONResponse(msgspec.to_builtins(answer))

"""The running app: durable commands, restart, timers on the Clock, isolated observers,
channels, live subscribers."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
import msgspec
import pytest

from omniroute import ChannelSpec, ConfigSpec, Interaction, hookimpl
from omniroute import events as ev
from omniroute.app import App
from omniroute.clock import VirtualClock
from omniroute.config import ConfigError, from_dict
from omniroute.model import InteractionState, Presence
from omniroute.plugins import PluginHost
from omniroute.router.core import RouterError
from omniroute.store import MemoryStore, Store, StoreError
from omniroute.testing import EchoChannel

# Once omniroute is installed its pytest11 entry point loads omniroute.testing; from a
# plain checkout load it here (loading it both ways would be an error).
if not importlib.metadata.entry_points(group="pytest11", name="omniroute"):
    pytest_plugins = ["omniroute.testing"]

MakeApp = Callable[..., App]

CONFIG: dict[str, Any] = {
    "queues": [{"name": "support", "offer_timeout": 10, "wrap_up": 0}],
    "agents": [{"id": "a1", "capacity": {"echo": 1}}, {"id": "a2", "capacity": {"echo": 1}}],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def contact(number: int, queue: str = "support") -> Interaction:
    return Interaction(id=f"i{number}", channel="echo", queue=queue)


async def stored(store: Store, since: int = 0) -> list[ev.Event]:
    return [event async for _, event in store.read(since)]


def of_type(events: Sequence[ev.Event], kind: type[ev.Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


class GatedStore(MemoryStore):
    """A memory store whose appends wait while `gate` is set and unopened; counts batches."""

    def __init__(self) -> None:
        super().__init__(encode=True)
        self.gate: anyio.Event | None = None
        self.batches: list[int] = []
        self.fail = False

    async def append(self, events: Sequence[ev.Event]) -> int:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("disk full")
        self.batches.append(len(events))
        return await super().append(events)


class Recorder:
    """Records the events each notification hook receives; some hooks are async."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lifecycle: list[str] = []

    @hookimpl
    def omniroute_startup(self, app: App) -> None:
        self.lifecycle.append("startup")

    @hookimpl
    async def omniroute_shutdown(self, app: App) -> None:
        self.lifecycle.append("shutdown")

    @hookimpl
    def omniroute_event(self, event: ev.Event) -> None:
        self.calls.append(("event", type(event).__name__))

    @hookimpl
    async def omniroute_interaction_queued(self, event: ev.InteractionQueued, app: App) -> None:
        assert isinstance(app, App)
        self.calls.append(("queued", event.interaction.id))

    @hookimpl
    def omniroute_interaction_offered(self, event: ev.Offered) -> None:
        self.calls.append(("offered", event.interaction_id))

    @hookimpl
    async def omniroute_interaction_assigned(self, event: ev.Assigned) -> None:
        self.calls.append(("assigned", event.interaction_id))

    def specific(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] != "event"]


# ---------------------------------------------------------------------- durability


@pytest.mark.anyio
async def test_submit_returns_only_after_the_store_holds_it(app: MakeApp) -> None:
    store = GatedStore()
    async with app(CONFIG, store=store).running() as running:
        store.gate = anyio.Event()
        returned: list[Interaction] = []

        async def submit() -> None:
            returned.append(await running.submit(contact(1)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit)
            await anyio.wait_all_tasks_blocked()
            assert returned == [] and len(store) == 0  # blocked in the append
            store.gate.set()
        assert returned[0].id == "i1" and returned[0].state is InteractionState.WAITING
        queued = of_type(await stored(store), ev.InteractionQueued)
        assert [e.interaction.id for e in queued] == ["i1"]


@pytest.mark.anyio
async def test_a_plugins_note_is_durable_when_add_note_returns(app: MakeApp) -> None:
    store = GatedStore()
    async with app(CONFIG, store=store).running() as running:
        store.gate = anyio.Event()
        notes: list[ev.Note] = []

        async def note() -> None:
            notes.append(await running.add_note("email.sent", {"message": "m-1"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(note)
            await anyio.wait_all_tasks_blocked()
            assert notes == [] and len(store) == 0
            store.gate.set()
        (logged,) = of_type(await stored(store), ev.Note)
        assert logged == notes[0] and logged.data == {"message": "m-1"}


@pytest.mark.anyio
async def test_an_interaction_and_its_first_messages_are_one_write(app: MakeApp) -> None:
    from omniroute.model import Message

    store = GatedStore()
    async with app(CONFIG, store=store).running() as running:
        first = Message(id="m1", interaction_id="i1", sender="customer", text="hello")
        await running.submit(contact(1), [first])
        assert store.batches[-1] == 2  # one append holds both
        assert [type(e) for e in await stored(store)][-2:] == [
            ev.InteractionQueued,
            ev.MessageAdded,
        ]
        assert [m.text for m in running.conversations.messages("i1")] == ["hello"]
        stray = Message(id="m2", interaction_id="other", sender="customer")
        with pytest.raises(RouterError, match="is not of"):
            await running.submit(contact(2), [stray])
        with pytest.raises(RouterError):
            running.router.interaction("i2")  # refused before the router saw it


@pytest.mark.anyio
async def test_concurrent_commands_are_logged_in_router_order_in_batches(app: MakeApp) -> None:
    store = GatedStore()
    async with app(CONFIG, store=store).running() as running:
        store.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(running.submit, contact(1))
            await anyio.wait_all_tasks_blocked()  # i1 is being written...
            for number in (2, 3, 4):
                tg.start_soon(running.submit, contact(number))
            await anyio.wait_all_tasks_blocked()  # ...while these wait for the lock
            store.gate.set()
        queued = of_type(await stored(store), ev.InteractionQueued)
        assert [e.interaction.id for e in queued] == ["i1", "i2", "i3", "i4"]
        assert store.batches == [1, 3]  # the first writer, then one group commit


@pytest.mark.anyio
async def test_a_cancelled_caller_still_gets_its_events_logged(app: MakeApp) -> None:
    store = GatedStore()
    async with app(CONFIG, store=store).running() as running:
        store.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(running.submit, contact(1))
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
            store.gate.set()
        assert running.router.interaction("i1").state is InteractionState.WAITING
        assert [type(e) for e in await stored(store)] == [ev.InteractionQueued]


@pytest.mark.anyio
async def test_router_errors_propagate_and_earlier_timer_events_are_kept(app: MakeApp) -> None:
    a = app(CONFIG)
    async with a.running():
        await a.set_presence("a1", "ready")
        await a.submit(contact(1))
        a.clock.advance(10)  # type: ignore[attr-defined]  # the offer expires...
        with pytest.raises(RouterError, match='unknown queue "nope"'):
            await a.submit(contact(2, queue="nope"))  # ...and this command fires it
        assert of_type(await stored(a.store), ev.OfferMissed)


@pytest.mark.anyio
async def test_commands_need_a_running_app(app: MakeApp) -> None:
    a = app(CONFIG)
    with pytest.raises(RuntimeError, match="not running"):
        await a.submit(contact(1))
    async with a.running():
        pass
    with pytest.raises(RuntimeError, match="not running"):
        await a.submit(contact(1))
    with pytest.raises(RuntimeError, match="runs once"):
        await a.run()


@pytest.mark.anyio
async def test_a_store_failure_stops_the_app(app: MakeApp) -> None:
    store = GatedStore()
    a = app(CONFIG, store=store)
    failures: Sequence[BaseException] = ()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(a.run)
            store.fail = True
            with pytest.raises(StoreError, match="disk full"):
                await a.submit(contact(1))
            await anyio.sleep_forever()  # `run` ends by itself, raising
    except* StoreError as group:
        failures = group.exceptions
    assert len(failures) == 1
    with pytest.raises(StoreError):
        await a.submit(contact(2))


# ---------------------------------------------------------------------- restart


@pytest.mark.anyio
async def test_restart_resumes_from_the_store(app: MakeApp) -> None:
    store = MemoryStore(encode=True)
    async with app(CONFIG, store=store).running() as first:
        await first.set_presence("a1", Presence.READY)
        await first.submit(contact(1))
        (offer1,) = of_type(await stored(store), ev.Offered)
        await first.accept(offer1.offer_id, "a1")
        await first.set_presence("a2", Presence.READY)
        await first.submit(contact(2))  # offered to a2, not answered yet
        await first.submit(contact(3))
        await first.submit(contact(4))
        assert [ix.id for ix in first.router.waiting()] == ["i3", "i4"]
    before = await store.last_seq()

    async with app(CONFIG, store=store).running() as second:
        router = second.router
        assert router.interaction("i1").state is InteractionState.ASSIGNED
        assert router.interaction("i1").agent == "a1"
        assert router.interaction("i2").state is InteractionState.OFFERED
        assert [ix.id for ix in router.waiting()] == ["i3", "i4"]
        assert await store.last_seq() == before  # resuming decided nothing new

        offer2 = of_type(await stored(store), ev.Offered)[-1]
        assert offer2.interaction_id == "i2"
        assert (await second.accept(offer2.offer_id, "a2")).agent == "a2"
        await second.complete("i1", "a1")  # a1 is free again: i3 is next in line
        offers = of_type(await stored(store, since=before), ev.Offered)
        assert [(o.interaction_id, o.agent_id) for o in offers] == [("i3", "a1")]

    assigned = [e.interaction_id for e in of_type(await stored(store), ev.Assigned)]
    assert sorted(assigned) == ["i1", "i2"]  # nothing assigned twice


@pytest.mark.anyio
async def test_restart_fires_timers_that_fell_due_while_down(app: MakeApp) -> None:
    store = MemoryStore(encode=True)
    async with app(CONFIG, store=store).running() as first:
        await first.set_presence("a1", "ready")
        await first.submit(contact(1))
    async with app(CONFIG, store=store, clock=VirtualClock(start=60)).running():
        missed = of_type(await stored(store), ev.OfferMissed)
        assert [e.interaction_id for e in missed] == ["i1"]


# ---------------------------------------------------------------------- timers


@pytest.mark.anyio
async def test_timers_fire_from_the_loop_on_the_clock(app: MakeApp) -> None:
    clock = VirtualClock(start=1000)
    async with app(CONFIG, clock=clock).running() as running:
        await running.set_presence("a1", "ready")
        await running.submit(contact(1))
        clock.advance(9.5)
        await anyio.wait_all_tasks_blocked()
        assert not of_type(await stored(running.store), ev.OfferMissed)
        clock.advance(0.5)  # the offer times out at 1010
        await anyio.wait_all_tasks_blocked()
        (missed,) = of_type(await stored(running.store), ev.OfferMissed)
        assert (missed.interaction_id, missed.agent_id, missed.at) == ("i1", "a1", 1010)
        clock.advance(10)  # SLA threshold (20 s) passes with nobody answering
        await anyio.wait_all_tasks_blocked()
        assert of_type(await stored(running.store), ev.SlaBreached)


@pytest.mark.anyio
async def test_a_new_earlier_deadline_wakes_the_sleeping_loop(app: MakeApp) -> None:
    clock = VirtualClock()
    async with app(CONFIG, clock=clock).running() as running:
        await anyio.wait_all_tasks_blocked()  # the loop sleeps with no deadline at all
        await running.set_presence("a1", "ready")
        await running.submit(contact(1))
        await anyio.wait_all_tasks_blocked()
        clock.advance(10)
        await anyio.wait_all_tasks_blocked()
        assert of_type(await stored(running.store), ev.OfferMissed)


# ---------------------------------------------------------------------- observers


@pytest.mark.anyio
async def test_hooks_receive_events_in_order(
    app: MakeApp, register_plugin: Callable[..., str]
) -> None:
    recorder = Recorder()
    register_plugin(recorder, name="recorder")
    a = app(CONFIG)
    async with a.running():
        assert recorder.lifecycle == ["startup"]
        await a.set_presence("a1", "ready")
        await a.submit(contact(1))
        (offer,) = of_type(await stored(a.store), ev.Offered)
        await a.accept(offer.offer_id)
        await anyio.wait_all_tasks_blocked()
    assert recorder.lifecycle == ["startup", "shutdown"]
    assert recorder.specific() == [("queued", "i1"), ("offered", "i1"), ("assigned", "i1")]
    names = [name for kind, name in recorder.calls if kind == "event"]
    assert names == [type(e).__name__ for e in await stored(a.store)]
    # omniroute_event first, then the specific hook, event by event
    assert recorder.calls[1:3] == [("event", "InteractionQueued"), ("queued", "i1")]


class Raising:
    @hookimpl
    def omniroute_event(self, event: ev.Event) -> None:
        raise RuntimeError("plugin bug")

    @hookimpl
    async def omniroute_interaction_offered(self, event: ev.Offered) -> None:
        raise RuntimeError("async plugin bug")


@pytest.mark.anyio
async def test_a_raising_plugin_does_not_stop_routing(
    app: MakeApp, register_plugin: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    register_plugin(recorder, name="recorder")
    register_plugin(Raising(), name="raising")
    a = app(CONFIG)
    async with a.running():
        await a.set_presence("a1", "ready")
        for number in (1, 2):
            await a.submit(contact(number))
        (offer,) = of_type(await stored(a.store), ev.Offered)
        assert (await a.accept(offer.offer_id)).state is InteractionState.ASSIGNED
        await anyio.wait_all_tasks_blocked()
    assert recorder.specific() == [
        ("queued", "i1"),
        ("offered", "i1"),
        ("queued", "i2"),
        ("assigned", "i1"),
    ]
    assert "plugin 'raising' failed" in caplog.text


class Slow:
    """Blocks in every notification until `gate` opens."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.seen: list[str] = []

    @hookimpl
    async def omniroute_event(self, event: ev.Event) -> None:
        await self.gate.wait()
        self.seen.append(type(event).__name__)


@pytest.mark.anyio
async def test_a_slow_plugin_does_not_delay_routing(
    app: MakeApp, register_plugin: Callable[..., str]
) -> None:
    slow = Slow()
    register_plugin(slow, name="slow")
    a = app(CONFIG)
    async with a.running():
        with anyio.fail_after(5):  # real seconds: only a blocked command could hit this
            await a.set_presence("a1", "ready")
            for number in range(1, 20):
                await a.submit(contact(number))
            (offer,) = of_type(await stored(a.store), ev.Offered)
            await a.accept(offer.offer_id)
        await anyio.wait_all_tasks_blocked()
        assert slow.seen == []  # still stuck on the first event
        slow.gate.set()
        await anyio.wait_all_tasks_blocked()
        assert slow.seen == [type(e).__name__ for e in await stored(a.store)]


@pytest.mark.anyio
async def test_subscribers_get_durable_events_and_slow_ones_are_dropped(
    app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    a = app(CONFIG)
    fast = a.subscribe()
    slow = a.subscribe(max_buffer=1)
    async with a.running():
        await a.set_presence("a1", "ready")
        await a.submit(contact(1))  # queued + offered
        with caplog.at_level(logging.WARNING, logger="omniroute.app"):
            await a.submit(contact(2))
        assert "slow event subscriber" in caplog.text
        received = [fast.receive_nowait() for _ in range(4)]
        assert [type(e) for e in received] == [
            ev.AgentStateChanged,
            ev.InteractionQueued,
            ev.Offered,
            ev.InteractionQueued,
        ]
        assert type(slow.receive_nowait()) is ev.AgentStateChanged
        with pytest.raises(anyio.EndOfStream):
            slow.receive_nowait()
        fast.close()  # a consumer may leave: routing goes on
        await a.submit(contact(3))
    late = a.subscribe()  # the app stopped: the stream ends at once
    with pytest.raises(anyio.EndOfStream):
        late.receive_nowait()


# ---------------------------------------------------------------------- channels and plugins


class EchoSettings(msgspec.Struct, forbid_unknown_fields=True):
    greeting: str = "hello"


class EchoSection:
    @hookimpl
    def omniroute_config_sections(self) -> Iterator[ConfigSpec]:
        yield ConfigSpec(section="echo", type=EchoSettings)


@pytest.mark.anyio
async def test_echo_channel_runs_when_configured(
    app: MakeApp, echo_channel: EchoChannel, register_plugin: Callable[..., str]
) -> None:
    register_plugin(EchoSection(), name="echo-section")
    a = app({**CONFIG, "plugins": {"echo": {"greeting": "hi"}}})
    assert a.plugin_config == {"echo": EchoSettings(greeting="hi")}
    async with a.running():
        await anyio.wait_all_tasks_blocked()
        assert echo_channel.running and echo_channel.app is a
        assert a.channels == {"echo": echo_channel}
        submitted = await a.submit(echo_channel.contact("support"))
        assert a.router.interaction(submitted.id).channel == "echo"
    assert not echo_channel.running


@pytest.mark.anyio
async def test_channels_without_a_section_do_not_run(
    app: MakeApp, echo_channel: EchoChannel
) -> None:
    async with app(CONFIG).running() as a:
        await anyio.wait_all_tasks_blocked()
        assert not echo_channel.running and a.channels == {}


def test_a_plugin_section_nobody_reads_is_a_config_error(app: MakeApp) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.echo: no installed plugin reads"):
        app({**CONFIG, "plugins": {"echo": {}}})


class Broken:
    name = "broken"

    def __init__(self, settings: EchoSettings) -> None:
        self.settings = settings

    async def run(self, app: Any) -> None:
        raise ConnectionError(f"cannot connect ({self.settings.greeting})")

    async def deliver(self, interaction: Any, message: Any) -> None:
        return None


class BrokenPlugin:
    @hookimpl
    def omniroute_channels(self) -> Iterator[ChannelSpec]:
        yield ChannelSpec(name="broken", factory=lambda config, app: Broken(config))

    @hookimpl
    def omniroute_config_sections(self) -> Iterator[ConfigSpec]:
        yield ConfigSpec(section="broken", type=EchoSettings)


@pytest.mark.anyio
async def test_a_crashing_channel_is_logged_and_routing_goes_on(
    app: MakeApp, register_plugin: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    register_plugin(BrokenPlugin(), name="broken")
    async with app({**CONFIG, "plugins": {"broken": {"greeting": "x"}}}).running() as a:
        await anyio.wait_all_tasks_blocked()
        assert "channel 'broken' stopped" in caplog.text
        assert "cannot connect (x)" in caplog.text
        await a.submit(contact(1))


@pytest.mark.anyio
async def test_an_app_closes_only_the_store_it_opened(plugin_host: PluginHost) -> None:
    own = App(
        from_dict({**CONFIG, "store": {"backend": "memory"}}),
        clock=VirtualClock(),
        host=plugin_host,
    )
    async with own.running():
        await own.submit(contact(1))
    with pytest.raises(StoreError, match="closed"):
        await own.store.last_seq()

    given = MemoryStore()
    async with App.from_dict(CONFIG, store=given, host=plugin_host).running() as a:
        await a.submit(contact(1))
    assert await given.last_seq() == 1


class SeniorFirstSettings(msgspec.Struct, forbid_unknown_fields=True):
    senior: list[str] = []


class SeniorFirst:
    """A strategy with settings: the agents named in [plugins.senior] go first."""

    @hookimpl
    def omniroute_config_sections(self) -> Iterator[ConfigSpec]:
        yield ConfigSpec(section="senior", type=SeniorFirstSettings)

    @hookimpl
    def omniroute_strategies(self) -> Iterator[Any]:
        from omniroute.router.strategy import BaseStrategy, StrategySpec

        class Strategy(BaseStrategy):
            name = "senior-first"

            def __init__(self, settings: SeniorFirstSettings | None) -> None:
                self.senior = (settings or SeniorFirstSettings()).senior

            def agent_key(self, agent: Any) -> Any:
                return (agent.id not in self.senior, agent.ordinal)

        yield StrategySpec(
            name="senior-first",
            section="senior",
            factory=lambda queue, routing, settings: Strategy(settings),
        )


@pytest.mark.anyio
async def test_a_strategy_reads_its_own_plugin_section(
    app: Callable[..., App], register_plugin: Callable[..., str], echo_channel: EchoChannel
) -> None:
    register_plugin(SeniorFirst(), name="senior-first")
    config = {
        **CONFIG,
        "queues": [{"name": "support", "strategy": "senior-first"}],
        "plugins": {"senior": {"senior": ["a2"]}},
    }
    async with app(config).running() as running:
        for agent_id in ("a1", "a2"):
            await running.set_presence(agent_id, Presence.READY)
        await running.submit(contact(1, "support"))
        assert [o.agent.id for o in running.router.offers.values()] == ["a2"]

"""Outbound click-to-call against the fake ARI: the agent's phone rings first, the
customer's number is dialled through the configured trunk pattern with the configured
caller ID once the agent answers, and how the customer's leg ends decides the outcome."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from fake_ari import FakeAri
from omniroute_asterisk.outbound import outcome_of
from test_voice_fake import async_start, config, of, running, until
from voicekit import build, document

from omniroute import events as ev
from omniroute.app import App
from omniroute.config import ConfigError
from omniroute.store import MemoryStore

pytestmark = pytest.mark.anyio

OUTBOUND = {"dial": "PJSIP/{number}@carrier", "caller_id": "+15550000", "customer_ring": 30}


def start(channel_id: str, state: str = "Up") -> dict[str, Any]:
    return {"type": "StasisStart", "channel": {"id": channel_id, "state": state}, "args": []}


def destroyed(channel_id: str, cause: int) -> dict[str, Any]:
    return {"type": "ChannelDestroyed", "channel": {"id": channel_id}, "cause": cause}


async def placed(fake: FakeAri, channel_id: str) -> Any:
    """The originate of `channel_id`, once omniroute asked for it."""
    with anyio.fail_after(5):
        while True:
            for r in fake.seen("POST", "channels"):
                if r.path == "channels" and r.params.get("channelId") == channel_id:
                    return r
            await anyio.sleep(0.01)


async def dial(app: App, number: str = "5550100") -> str:
    started = await app.start_outbound("ana", "voice", number)
    return started.id


async def test_the_agent_rings_first_then_the_customer_then_they_are_bridged() -> None:
    async with FakeAri().serving() as fake, running(fake, outbound=OUTBOUND) as (app, seen):
        ix = await dial(app)
        agent = await placed(fake, f"omni-out-agent-{ix}")
        assert agent.params["endpoint"] == "PJSIP/ana"
        assert agent.params["callerId"] == "5550100"  # ana's phone shows whom she calls
        assert agent.params["appArgs"] == f"dialer,{ix}"
        assert not fake.seen("POST", "channels/omni-out-customer")  # not before she answers
        await fake.push(start(f"omni-out-agent-{ix}"))
        customer = await placed(fake, f"omni-out-customer-{ix}")
        assert customer.params["endpoint"] == "PJSIP/5550100@carrier"
        assert customer.params["callerId"] == "+15550000"
        assert customer.params["timeout"] == "30"
        await until(lambda: fake.seen("POST", f"channels/omni-out-agent-{ix}/ring"))
        await fake.push(start(f"omni-out-customer-{ix}"))
        (add,) = await until(lambda: fake.seen("POST", f"bridges/omni-{ix}/addChannel"))
        assert sorted(add.params["channel"].split(",")) == sorted(
            [f"omni-out-customer-{ix}", f"omni-out-agent-{ix}"]
        )
        assert fake.seen("DELETE", f"channels/omni-out-agent-{ix}/ring")
        # Held like any call, and the customer hanging up completes it: wrap-up starts.
        voice: Any = app.channels["asterisk"]
        await voice.hold(ix)
        await until(lambda: fake.seen("POST", f"channels/omni-out-customer-{ix}/moh"))
        await voice.unhold(ix)
        await fake.push(destroyed(f"omni-out-customer-{ix}", 16))
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].interaction_id == ix and done[0].outcome == "answered"
        await until(lambda: fake.seen("DELETE", f"channels/omni-out-agent-{ix}"))


@pytest.mark.parametrize(
    ("cause", "outcome", "says"),
    [
        (17, "busy", "busy"),
        (19, "no-answer", "did not answer"),
        (1, "failed", "could not be placed"),
    ],
)
async def test_a_customer_who_does_not_answer_ends_it_with_the_outcome(
    cause: int, outcome: str, says: str
) -> None:
    async with FakeAri().serving() as fake, running(fake, outbound=OUTBOUND) as (app, seen):
        ix = await dial(app)
        await placed(fake, f"omni-out-agent-{ix}")
        await fake.push(start(f"omni-out-agent-{ix}"))
        await placed(fake, f"omni-out-customer-{ix}")
        await fake.push(destroyed(f"omni-out-customer-{ix}", cause))
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].outcome == outcome and done[0].agent_id == "ana"
        message = await until(lambda: of(seen, ev.MessageAdded))
        assert says in message[0].message.text and message[0].message.sender == "system"
        await until(lambda: fake.seen("DELETE", f"channels/omni-out-agent-{ix}"))
        contact = app.conversations.contact(ix)  # shown in the customer's history
        assert contact is not None and contact.outcome == outcome


async def test_an_agent_who_does_not_pick_up_calls_nobody() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        ix = await dial(app)
        await placed(fake, f"omni-out-agent-{ix}")
        await fake.push(destroyed(f"omni-out-agent-{ix}", 19))
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].outcome == "agent-no-answer"
        assert not fake.seen("POST", "channels/omni-out-customer")
        ids = [r.params.get("channelId", "") for r in fake.requests]
        assert not any(i.startswith("omni-out-customer") for i in ids)


async def test_a_number_the_config_does_not_allow_is_never_dialled() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        ix = await dial(app, "123@evil")
        done = await until(lambda: of(seen, ev.Completed))
        assert done[0].interaction_id == ix and done[0].outcome == "failed"
        (message,) = of(seen, ev.MessageAdded)
        assert "outbound.numbers" in message.message.text
        assert not fake.seen("POST", "channels")


async def test_completing_in_the_inbox_while_it_rings_hangs_up() -> None:
    async with FakeAri().serving() as fake, running(fake) as (app, seen):
        ix = await dial(app)
        await placed(fake, f"omni-out-agent-{ix}")
        await fake.push(start(f"omni-out-agent-{ix}"))
        await placed(fake, f"omni-out-customer-{ix}")
        await app.complete(ix, "ana")
        await until(lambda: fake.seen("DELETE", f"channels/omni-out-customer-{ix}"))
        await until(lambda: fake.seen("DELETE", f"channels/omni-out-agent-{ix}"))
        await fake.push(destroyed(f"omni-out-customer-{ix}", 16))  # which changes nothing
        await anyio.sleep(0.1)
        assert len(of(seen, ev.Completed)) == 1


def test_outcomes_from_causes() -> None:
    assert [outcome_of(c) for c in (16, 17, 18, 19, 21, 0, 1, 34, 38)] == [
        "failed",
        "busy",
        "no-answer",
        "no-answer",
        "busy",
        "failed",
        "failed",
        "failed",
        "failed",
    ]


def test_outbound_config_errors_name_the_key() -> None:
    server = SimpleNamespace(url="http://127.0.0.1:1/ari", user="u", password="p")
    with pytest.raises(ConfigError) as error:
        async_start(document(server, outbound={"dial": "PJSIP/trunk", "numbers": "(["}))
    lines = str(error.value).splitlines()
    assert any(
        line.startswith('plugins.asterisk.outbound.dial: "PJSIP/trunk" must contain "{number}"')
        for line in lines
    ), lines
    numbers = "plugins.asterisk.outbound.numbers: not a regular"
    assert any(line.startswith(numbers) for line in lines)
    with pytest.raises(ConfigError, match=r'outbound\.dial: "dial \{number\}" is not an endpoint'):
        async_start(document(server, outbound={"dial": "dial {number}"}))
    with pytest.raises(ConfigError, match=r"outbound\.dial: .*no other"):
        async_start(document(server, outbound={"dial": "PJSIP/{number}@{trunk}"}))
    with pytest.raises(ConfigError, match=r'plugins\.asterisk\.outbound: unknown field "ring"'):
        async_start(document(server, outbound={"ring": 3}))


async def test_after_a_restart_a_connected_call_goes_on_and_a_ringing_one_ends() -> None:
    store = MemoryStore(encode=True)
    async with FakeAri().serving() as fake:
        first = build(config(fake), store)
        async with first.running():
            await until(lambda: fake.connections == 1)
            await first.set_presence("ana", "ready")
            await first.set_presence("bob", "ready")
            talking = (await first.start_outbound("ana", "voice", "5550100")).id
            ringing = (await first.start_outbound("bob", "voice", "5550101")).id
            await placed(fake, f"omni-out-agent-{talking}")
            await fake.push(start(f"omni-out-agent-{talking}"))
            await fake.push(start(f"omni-out-customer-{talking}"))
            await until(lambda: fake.seen("POST", f"bridges/omni-{talking}/addChannel"))
        # Asterisk still has the connected call and bob's phone, still ringing.
        fake.channels = [
            {"id": f"omni-out-agent-{talking}", "state": "Up"},
            {"id": f"omni-out-customer-{talking}", "state": "Up"},
            {"id": f"omni-out-agent-{ringing}", "state": "Ringing"},
        ]
        second = build(config(fake), store)
        async with second.running():
            with second.subscribe() as events:
                await fake.wait_connections(2)
                done = await anext(e async for e in events if isinstance(e, ev.Completed))
                assert done.interaction_id == ringing and done.outcome == "failed"
                await until(lambda: fake.seen("DELETE", f"channels/omni-out-agent-{ringing}"))
                # The connected call is adopted: hold works, a hang-up completes it.
                voice: Any = second.channels["asterisk"]
                await voice.hold(talking)
                await fake.push(destroyed(f"omni-out-customer-{talking}", 16))
                done = await anext(e async for e in events if isinstance(e, ev.Completed))
                assert done.interaction_id == talking and done.outcome == "answered"

"""Email end to end on loopback: smtplib into the listener, the agent's reply out to a
real SMTP sink, the customer's reply threading back, reopening, rules, and the outbox
keeping what a refusing or absent server did not take."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from emailkit import Sink, config, free_port, mail, running, send
from omniroute_email.channel import EmailChannel

from omniroute import events as ev
from omniroute.app import App, DeliveryError
from omniroute.model import Interaction, InteractionState
from omniroute.web.passwords import hash_token

pytestmark = pytest.mark.anyio


async def stored(app: App, kind: type[ev.Event]) -> list[ev.Event]:
    return [e async for _, e in app.store.read() if isinstance(e, kind)]


async def accept(app: App, interaction_id: str) -> None:
    await app.set_presence("ana", "ready")
    offer = next(o for o, p in app.router.agent("ana").offers.items()
                 if p.waiting.id == interaction_id)  # fmt: skip
    await app.accept(offer, "ana")


async def reply_to_a_new_mail(app: App, channel: EmailChannel, text: str) -> str:
    """A customer writes, Ana accepts and answers: the interaction's id."""
    assert channel.port is not None
    await send(channel.port, mail())
    (ix,) = app.router.waiting()
    await accept(app, ix.id)
    await app.send_message(ix.id, "agent:ana", text)
    return ix.id


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


async def test_a_mail_becomes_an_interaction_and_the_reply_goes_out_threaded(
    tmp_path: Path, sink: Sink
) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        first = mail(Message_ID="<first@example.org>")
        await send(channel.port, first)
        # 250 came back: the interaction is in the log already.
        (queued,) = await stored(app, ev.InteractionQueued)
        ix = queued.interaction  # type: ignore[attr-defined]
        assert ix.channel == "email" and ix.queue == "support" and ix.subject == "My order"
        assert ix.customer.name == "Carla" and ix.customer.identities[0].address == (
            "carla@example.org"
        )
        ticket = ix.attributes["email"]["ticket"]
        assert ix.id == f"email-{ticket}"
        (msg,) = app.conversations.messages(ix.id)
        assert msg.text == "Where is my order 1234?" and msg.sender == "customer"

        await accept(app, ix.id)
        await app.send_message(ix.id, "agent:ana", "It left the warehouse today.")
        (reply,) = await sink.wait_for(1)
        assert reply["To"] == "Carla <carla@example.org>"  # by name, as she wrote
        assert reply["Date"].endswith(" +0000")  # UTC; -0000 would mean "zone unknown"
        assert reply["Subject"] == f"Re: My order [#{ticket}]"
        assert reply["In-Reply-To"] == "<first@example.org>"
        assert reply["References"] == "<first@example.org>"
        assert reply.get_content().strip() == "It left the warehouse today."
        with anyio.fail_after(5):
            while channel.outbox.entries:
                await anyio.sleep(0.02)
        assert [n.kind for n in await stored(app, ev.Note)] == ["email.sent"]  # type: ignore[attr-defined]

        # The customer answers the reply (quoting it): same interaction, quote trimmed.
        answer = mail(
            subject=f"Re: Re: My order [#{ticket}]",
            body="Thanks! And the invoice?\n\nOn Mon, 23 Nov 2026, Shop wrote:\n> It left the"
            " warehouse today.\n",
            In_Reply_To=reply["Message-ID"],
            References=f"<first@example.org> {reply['Message-ID']}",
            Message_ID="<second@example.org>",
        )
        await send(channel.port, answer)
        messages = app.conversations.messages(ix.id)
        assert [m.text for m in messages][-1] == "Thanks! And the invoice?"
        assert "It left the warehouse" in messages[-1].attributes["email"]["quoted"]
        assert len(await stored(app, ev.InteractionQueued)) == 1
        # The same mail delivered twice (a retrying server) is kept once.
        await send(channel.port, answer)
        assert len(app.conversations.messages(ix.id)) == 3

        await app.send_message(ix.id, "agent:ana", "Attached to your account.")
        second_reply = (await sink.wait_for(2))[1]
        assert second_reply["In-Reply-To"] == "<second@example.org>"
        assert second_reply["References"].split() == [
            "<first@example.org>",
            reply["Message-ID"],
            "<second@example.org>",
        ]


async def test_250_comes_only_once_the_mail_is_durable(tmp_path: Path, sink: Sink) -> None:
    gate = anyio.Event()
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        append = app.store.append

        async def held(events: Any) -> int:
            await gate.wait()
            return await append(events)

        app.store.append = held  # type: ignore[method-assign]
        answered: list[object] = []

        async def deliver() -> None:
            answered.append(await send(channel.port or 0, mail()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver)
            await anyio.sleep(0.5)
            assert answered == [] and app.router.waiting()  # routed, not yet durable
            gate.set()
        assert answered == [{}]
        assert len(await stored(app, ev.InteractionQueued)) == 1


async def test_the_first_response_stops_the_sla_clock(tmp_path: Path, sink: Sink) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        await send(channel.port, mail())
        (ix,) = app.router.waiting("support")
        await accept(app, ix.id)
        stats = app.router.queue_stats("support")
        assert stats.answered == 0  # accepting is not answering an email
        await app.send_message(ix.id, "agent:ana", "On it.")
        assert stats.answered == 1 and stats.answered_within == 1
        assert app.router.interaction(ix.id).first_response_at is not None


async def test_a_reply_after_closing_reopens_the_ticket(tmp_path: Path, sink: Sink) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        await send(channel.port, mail(Message_ID="<a@example.org>"))
        (ix,) = app.router.waiting("support")
        ticket = ix.attributes["email"]["ticket"]
        await accept(app, ix.id)
        await app.complete(ix.id, "ana")
        # Only the subject's tag ties it to the ticket (no In-Reply-To).
        await send(channel.port, mail(subject=f"Re: My order [#{ticket}]", body="Not yet!"))
        reopened = app.router.interaction(f"email-{ticket}-2")
        assert reopened.attributes["email"]["reopens"] == ix.id
        assert reopened.preferred_agent == "ana" and reopened.queue == "support"
        assert app.conversations.messages(reopened.id)[0].text == "Not yet!"


async def test_an_old_ticket_gets_a_new_one(tmp_path: Path, sink: Sink) -> None:
    cfg = config(tmp_path, sink.port, reopen_within=0)
    async with running(cfg, tmp_path / "db") as (app, channel):
        assert channel.port is not None
        await send(channel.port, mail(Message_ID="<a@example.org>"))
        (ix,) = app.router.waiting("support")
        await accept(app, ix.id)
        await app.complete(ix.id, "ana")
        await anyio.sleep(0.01)
        await send(channel.port, mail(subject="Re: My order", In_Reply_To="<a@example.org>"))
        new = (await stored(app, ev.InteractionQueued))[-1].interaction  # type: ignore[attr-defined]
        assert new.id != ix.id and new.attributes["email"]["follows"] == ix.id


@pytest.mark.parametrize(
    ("fields", "queue"),
    [
        ({"to": "billing@shop.example"}, "billing"),
        ({"subject": "Refund for order 7"}, "billing"),
        ({"sender": "boss@eu.bigcorp.example"}, "vip"),
        ({"subject": "Hello"}, "support"),
    ],
)
async def test_rules_pick_the_queue(
    tmp_path: Path, sink: Sink, fields: dict[str, str], queue: str
) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        await send(channel.port, mail(**fields))
        (ix,) = app.router.waiting()
        assert ix.queue == queue


async def test_automatic_mail_is_recorded_and_never_answered(tmp_path: Path, sink: Sink) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        await send(channel.port, mail(subject="Out of office", Auto_Submitted="auto-replied"))
        await send(channel.port, mail(subject="Undelivered"), mail_from="")  # null sender
        assert app.router.waiting() == []
        notes = await stored(app, ev.Note)
        reasons = [n.data["reason"] for n in notes]  # type: ignore[attr-defined]
        assert reasons == ["Auto-Submitted: auto-replied", "null sender (a bounce): MAIL FROM:<>"]
        assert [i["reason"] for i in channel.ignored] == reasons


async def test_unknown_recipient_domains_are_refused(tmp_path: Path, sink: Sink) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        assert channel.port is not None
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await send(channel.port, mail(to="someone@elsewhere.example"))
        assert app.router.waiting() == []


async def test_a_refusing_or_absent_server_leaves_the_mail_in_the_outbox(tmp_path: Path) -> None:
    port = free_port()
    sink = Sink(port)  # not started: the server is down
    db = tmp_path / "db"
    async with running(config(tmp_path, port), db) as (app, channel):
        await reply_to_a_new_mail(app, channel, "Reply one")
        await until(lambda: any(e.attempts >= 2 for e in channel.outbox.entries.values()))
        (entry,) = channel.outbox.entries.values()
        assert entry.status == "retrying" and "Connect" in (entry.last_error or "")
    # Restarted: the outbox comes back from the log; the server answers 451, then 250.
    await sink.start()
    sink.answer = "451 4.3.0 busy"
    try:
        async with running(config(tmp_path, port), db) as (app, channel):
            with anyio.fail_after(5):
                while not (e := next(iter(channel.outbox.entries.values()))).last_error or (
                    "451" not in e.last_error
                ):
                    await anyio.sleep(0.02)
            assert sink.received == []
            sink.answer = "250 OK"
            (sent,) = await sink.wait_for(1)
            assert sent.get_content().strip() == "Reply one"
            with anyio.fail_after(5):
                while channel.outbox.entries:
                    await anyio.sleep(0.02)
    finally:
        sink.stop()


async def test_supervisors_see_the_outbox_and_retry_a_refused_mail(
    tmp_path: Path, sink: Sink
) -> None:
    cfg = config(tmp_path, sink.port)
    cfg["server"]["users"] = [
        {"id": "sue", "role": "supervisor", "token_hashes": [hash_token("sue-token")]},
        {"id": "ana", "role": "agent", "token_hashes": [hash_token("ana-token")]},
    ]
    sink.answer = "550 5.1.1 no such user"
    urls: list[str] = []
    async with running(cfg, tmp_path / "db", urls) as (app, channel):
        ix_id = await reply_to_a_new_mail(app, channel, "Hello?")
        await until(lambda: any(e.status == "failed" for e in channel.outbox.entries.values()))
        (key,) = channel.outbox.entries
        auth = {"Authorization": "Bearer sue-token"}
        async with httpx.AsyncClient(base_url=urls[0], headers=auth) as sue:
            listed = (await sue.get("/email/outbox")).json()
            assert listed[0]["status"] == "failed" and "550" in listed[0]["last_error"]
            as_agent = {"Authorization": "Bearer ana-token"}
            assert (await sue.get("/email/outbox", headers=as_agent)).status_code == 403
            sink.answer = "250 OK"
            assert (await sue.post(f"/email/outbox/{key}/retry")).status_code == 200
            await sink.wait_for(1)
        assert app.router.interaction(ix_id).state is InteractionState.ASSIGNED


async def test_attachments_are_stored_and_guarded_like_their_interaction(
    tmp_path: Path, sink: Sink
) -> None:
    cfg = config(tmp_path, sink.port, max_attachment=1000)
    cfg["agents"].append({"id": "bob", "capacity": {"email": 5}})
    cfg["server"]["users"] = [
        {"id": "ana", "token_hashes": [hash_token("ana-token")]},
        {"id": "bob", "token_hashes": [hash_token("bob-token")]},
    ]
    m = mail()
    m.add_attachment(b"%PDF-1.4 tiny", maintype="application", subtype="pdf",
                     filename="invoice 7.pdf")  # fmt: skip
    m.add_attachment(b"x" * 5000, maintype="application", subtype="zip", filename="big.zip")
    urls: list[str] = []
    async with running(cfg, tmp_path / "db", urls) as (app, channel):
        assert channel.port is not None
        await send(channel.port, m)
        (ix,) = app.router.waiting()
        await accept(app, ix.id)
        (msg,) = app.conversations.messages(ix.id)
        link, big = msg.attachments
        assert link.endswith("/invoice%207.pdf") and big == "big.zip (not kept: 5000 bytes)"
        async with httpx.AsyncClient(base_url=urls[0]) as client:
            ana = await client.get(link, headers={"Authorization": "Bearer ana-token"})
            assert ana.status_code == 200 and ana.content == b"%PDF-1.4 tiny"
            assert ana.headers["content-type"] == "application/octet-stream"
            bob = await client.get(link, headers={"Authorization": "Bearer bob-token"})
            assert bob.status_code == 404  # not bob's interaction
            assert (await client.get(link)).status_code == 401

            # Completed, then reopened by the customer's reply and given to bob: he reads
            # the earlier mail and its attachment (the customer's history), by the API's rule.
            await app.complete(ix.id, "ana")
            await app.end_wrap_up(ix.id, "ana")
            await app.set_presence("ana", "offline")
            ticket = ix.attributes["email"]["ticket"]
            await send(channel.port, mail(subject=f"Re: My order [#{ticket}]", body="And?"))
            await app.set_presence("bob", "ready")
            reopened = f"email-{ticket}-2"
            [offer] = app.router.agent("bob").offers  # ana is away: bob is offered it
            await app.accept(offer, "bob")
            assert app.router.interaction(reopened).agent == "bob"
            bob = await client.get(link, headers={"Authorization": "Bearer bob-token"})
            assert bob.status_code == 200 and bob.content == b"%PDF-1.4 tiny"
            view = await client.get(
                f"/api/interactions/{ix.id}/conversation",
                headers={"Authorization": "Bearer bob-token"},
            )
            assert view.status_code == 200
            assert [m["attachments"][0] for m in view.json()["messages"]] == [link]


async def test_a_reply_with_no_mail_thread_is_refused_not_dropped(
    tmp_path: Path, sink: Sink
) -> None:
    async with running(config(tmp_path, sink.port), tmp_path / "db") as (app, channel):
        await app.submit(Interaction(id="typed-in", channel="email", queue="support"))
        await accept(app, "typed-in")
        with pytest.raises(DeliveryError, match="no email thread"):
            await app.send_message("typed-in", "agent:ana", "Hello?")
        assert channel.outbox.entries == {}

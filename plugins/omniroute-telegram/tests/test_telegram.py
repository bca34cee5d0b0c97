"""The Telegram channel end to end: python-telegram-bot against a local Bot API server,
an agent through the real HTTP API, faults Telegram really has, and restarts."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from omniroute_telegram.fakeapi import FakeBotApi
from telegramkit import Center, config, free_port, running

from omniroute import events as ev
from omniroute.app import App
from omniroute.config import ConfigError
from omniroute.plugins import PluginHost
from omniroute.store import MemoryStore, open_store

pytestmark = pytest.mark.anyio


async def queued(center: Center, count: int = 1) -> list[ev.InteractionQueued]:
    with anyio.fail_after(10):
        while len(found := await center.events(ev.InteractionQueued)) < count:
            await anyio.sleep(0.02)
    return found


async def accept(center: Center) -> None:
    ready = await center.agent.put("/api/inbox/presence", json={"presence": "ready"})
    assert ready.status_code == 200, ready.text
    with anyio.fail_after(10):
        while not (offers := (await center.agent.get("/api/inbox")).json()["offers"]):
            await anyio.sleep(0.02)
    accepted = await center.agent.post(f"/api/offers/{offers[0]['id']}/accept")
    assert accepted.status_code == 200, accepted.text


async def test_a_message_becomes_an_interaction_and_the_agent_replies(
    center: Center, bot_api: FakeBotApi
) -> None:
    bot_api.text(42, "my parcel is lost")
    [event] = await queued(center)
    ix = event.interaction
    assert ix.channel == "telegram" and ix.queue == "support"
    assert ix.customer is not None and ix.customer.name == "User42"
    await bot_api.wait_for(lambda: any("number 1 in line" in t for t in bot_api.sent_texts(42)))
    assert [m.text for m in center.app.conversations.messages(ix.id)] == ["my parcel is lost"]

    await accept(center)
    await bot_api.wait_for(lambda: "Ana joined the conversation." in bot_api.sent_texts(42))
    reply = await center.agent.post(
        f"/api/interactions/{ix.id}/messages", json={"text": "Let me look."}
    )
    assert reply.status_code == 201, reply.text
    await bot_api.wait_for(lambda: "Let me look." in bot_api.sent_texts(42))

    bot_api.text(42, "thanks")
    await center.wait_until(lambda: len(center.app.conversations.messages(ix.id)) == 2)
    bot_api.text(42, "/stop")
    await bot_api.wait_for(lambda: "The conversation has ended." in bot_api.sent_texts(42))
    completed = await center.events(ev.Completed)
    assert [c.interaction_id for c in completed] == [ix.id]


async def test_files_flow_both_ways(center: Center, bot_api: FakeBotApi) -> None:
    bot_api.photo(7, b"\xff\xd8a-photo", caption="the damage")
    bot_api.voice(7, b"OggS-voice")
    bot_api.document(7, b"%PDF-1.4 invoice", "invoice 12.pdf")
    bot_api.document(7, b"x" * 200_000, "huge.bin")  # over max_file_bytes
    [event] = await queued(center)
    interaction_id = event.interaction.id
    await center.wait_until(lambda: len(center.app.conversations.messages(interaction_id)) == 4)
    messages = center.app.conversations.messages(interaction_id)
    assert messages[0].text == "the damage" and len(messages[0].attachments) == 1
    assert "not kept" in messages[3].text and messages[3].attachments == []
    await accept(center)
    for message, content in zip(
        messages[:3], [b"\xff\xd8a-photo", b"OggS-voice", b"%PDF-1.4 invoice"], strict=True
    ):
        got = await center.agent.get(message.attachments[0])
        assert got.status_code == 200 and got.content == content
        assert got.headers["content-disposition"].startswith("attachment")
    assert messages[2].attachments[0].endswith("invoice_12.pdf")
    anonymous = await httpx.AsyncClient(base_url=center.url).get(messages[0].attachments[0])
    assert anonymous.status_code == 401

    upload = await center.agent.post(
        f"/telegram/files/{interaction_id}?name=label.png", content=b"\x89PNG-label"
    )
    assert upload.status_code == 201, upload.text
    url = upload.json()["url"]
    sent = await center.agent.post(
        f"/api/interactions/{interaction_id}/messages",
        json={"text": "print this", "attachments": [url]},
    )
    assert sent.status_code == 201, sent.text
    await bot_api.wait_for(lambda: any(s.method == "sendPhoto" for s in bot_api.sent_to(7)))
    [photo] = [s for s in bot_api.sent_to(7) if s.method == "sendPhoto"]
    assert photo.file == b"\x89PNG-label" and photo.params["caption"] == "print this"
    foreign = await center.agent.post(
        f"/api/interactions/{interaction_id}/messages",
        json={"text": "x", "attachments": ["/telegram/files/other/abc-x.png"]},
    )
    assert foreign.status_code == 502

    # Ended, the conversation stays readable with its files (the customer's history):
    # to the agent who handled it and supervisors, by the API's own rule; no uploads.
    bot_api.text(7, "/stop")
    ended = center.app.conversations.contact(interaction_id)
    await center.wait_until(lambda: ended is not None and ended.state.value == "completed")
    await center.agent.post(f"/api/interactions/{interaction_id}/wrap-up/end")
    await center.wait_until(lambda: interaction_id not in center.app.router.active)
    for reader in (center.agent, center.supervisor):
        got = await reader.get(messages[0].attachments[0])
        assert got.status_code == 200 and got.content == b"\xff\xd8a-photo"
    late = await center.agent.post(f"/telegram/files/{interaction_id}?name=x.png", content=b"x")
    assert late.status_code == 409


async def test_rate_limits_errors_and_lost_connections(center: Center, bot_api: FakeBotApi) -> None:
    bot_api.fail("getUpdates", 500)
    bot_api.fail("getUpdates", 0)  # the connection drops mid-answer
    bot_api.fail("getUpdates", 429, retry_after=1)
    bot_api.text(5, "hello")
    [event] = await queued(center)
    await accept(center)
    await bot_api.wait_for(lambda: "Ana joined the conversation." in bot_api.sent_texts(5))
    bot_api.fail("sendMessage", 429, times=2, retry_after=1)
    bot_api.fail("sendMessage", 502, times=1)
    bot_api.fail("sendMessage", 0, times=1)
    started = anyio.current_time()
    reply = await center.agent.post(
        f"/api/interactions/{event.interaction.id}/messages", json={"text": "still here"}
    )
    assert reply.status_code == 201
    await bot_api.wait_for(lambda: "still here" in bot_api.sent_texts(5), timeout=20)
    assert anyio.current_time() - started >= 1.0  # retry_after was honoured
    assert bot_api.sent_texts(5).count("still here") == 1
    # Two failed attempts (stuck_after = 2): the conversation says so; supervisors see it.
    texts = [m.text for m in center.app.conversations.messages(event.interaction.id)]
    assert any("has not accepted a message yet" in t for t in texts)
    with anyio.fail_after(5):
        while not [n for n in await center.events(ev.Note) if n.kind == "telegram.sent"]:
            await anyio.sleep(0.02)


async def test_a_blocked_bot_is_reported_not_retried_forever(
    center: Center, bot_api: FakeBotApi
) -> None:
    bot_api.text(6, "hi")
    [event] = await queued(center)
    await accept(center)
    await bot_api.wait_for(lambda: "Ana joined the conversation." in bot_api.sent_texts(6))
    bot_api.fail("sendMessage", 403, times=1)
    await center.agent.post(
        f"/api/interactions/{event.interaction.id}/messages", json={"text": "hello?"}
    )
    interaction_id = event.interaction.id
    await center.wait_until(
        lambda: any(
            "Not delivered" in m.text for m in center.app.conversations.messages(interaction_id)
        )
    )
    outbox = await center.supervisor.get("/telegram/outbox")
    assert outbox.status_code == 200 and outbox.json() == []
    assert (await center.agent.get("/telegram/outbox")).status_code == 403


async def test_malformed_updates_are_recorded_and_skipped(
    center: Center, bot_api: FakeBotApi
) -> None:
    bot_api.update({"message": {"message_id": 1, "text": "no chat, no date"}})
    bot_api.update({"update_id": 10_000, "message": "not an object"})
    bot_api.text(8, "a real one")
    [event] = await queued(center)
    assert event.interaction.customer is not None
    rejected = [n for n in await center.events(ev.Note) if n.kind == "telegram.rejected"]
    assert len(rejected) == 2 and all(n.data["reason"] for n in rejected)
    await bot_api.wait_for(lambda: bot_api.updates == [])  # all confirmed


async def test_the_topic_menu_picks_the_queue(
    bot_api: FakeBotApi, tmp_path: Path, store_path: Path
) -> None:
    topics = {"Parcels": "support", "Invoices": "billing"}
    store = open_store({"path": str(store_path)})
    async with running(config(bot_api, tmp_path, topics=topics), store) as center:
        bot_api.text(9, "wrong amount")
        await bot_api.wait_for(lambda: any(s.params.get("reply_markup") for s in bot_api.sent))
        assert await center.events(ev.InteractionQueued) == []
        bot_api.press(9, "topic:1")
        [event] = await queued(center)
        assert event.interaction.queue == "billing" and event.interaction.subject == "Invoices"
        await center.wait_until(
            lambda: (
                [m.text for m in center.app.conversations.messages(event.interaction.id)]
                == ["wrong amount"]
            )
        )
    await store.close()


async def test_a_restart_loses_and_duplicates_nothing(
    bot_api: FakeBotApi, tmp_path: Path, store_path: Path
) -> None:
    bot_api.forget_confirmations = True  # as if every getUpdates offset was lost
    document = config(bot_api, tmp_path)
    store = open_store({"path": str(store_path)})
    async with running(document, store) as center:
        for text in ("one", "two", "three"):
            bot_api.text(1, text)
        bot_api.text(2, "other")
        await queued(center, 2)
        await center.wait_until(
            lambda: sum(len(center.app.conversations.messages(w.id)) for w in center.live()) == 4
        )
    await store.close()
    bot_api.text(1, "four")
    bot_api.text(3, "new")
    store = open_store({"path": str(store_path)})
    async with running(document, store) as center:
        found = await queued(center, 3)
        await center.wait_until(
            lambda: sum(len(center.app.conversations.messages(w.id)) for w in center.live()) == 6
        )
        await anyio.sleep(0.3)  # let it see the redelivered updates again
        found = await center.events(ev.InteractionQueued)
        assert len(found) == 3
        messages = [e.message.text for e in await center.events(ev.MessageAdded)]
        assert sorted(messages) == ["four", "new", "one", "other", "three", "two"]
    await store.close()


async def test_webhook_mode_checks_the_secret_and_answers_after_durable(
    bot_api: FakeBotApi, tmp_path: Path, store_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    document = config(bot_api, tmp_path, mode="webhook", webhook_url=url)
    store = open_store({"path": str(store_path)})
    async with running(document, store, port=port) as center:
        assert bot_api.webhook == (url, "s3cret-token_for-tests")
        async with httpx.AsyncClient() as client:
            forged = await client.post(
                url, json={"update_id": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": "no"}
            )
            assert forged.status_code == 403
            missing = await client.post(url, json={"update_id": 1})
            assert missing.status_code == 403
        bot_api.text(11, "via webhook")
        [event] = await queued(center)
        assert event.interaction.customer is not None
        await bot_api.wait_for(lambda: bot_api.updates == [])
        assert bot_api.webhook_answers[-1] == 200
    await store.close()


async def test_silence_ends_the_conversation(
    bot_api: FakeBotApi, tmp_path: Path, store_path: Path
) -> None:
    store = open_store({"path": str(store_path)})
    async with running(config(bot_api, tmp_path, silence=1.0), store) as center:
        bot_api.text(12, "anyone?")
        [event] = await queued(center)
        await bot_api.wait_for(
            lambda: "The conversation has ended." in bot_api.sent_texts(12), timeout=5
        )
        assert [e.interaction_id for e in await center.events(ev.Abandoned)] == [
            event.interaction.id
        ]
    await store.close()


async def test_config_mistakes_are_found_before_the_start(
    bot_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `omniroute check` and serve's first step see: the token's variable left
    empty and an unknown queue, by path, without starting the channel."""
    from omniroute_telegram import plugin

    from omniroute.config import from_dict, validate_with_host

    host = PluginHost(entry_points=False)
    host.register(plugin, name="telegram")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    with pytest.raises(ConfigError) as info:
        validate_with_host(from_dict(config(bot_api, tmp_path, queue="nowhere")), host)
    errors = info.value.errors
    assert any(e.startswith("plugins.telegram.token_env: ") for e in errors)
    assert 'plugins.telegram.queue: unknown queue "nowhere"' in errors


async def test_config_mistakes_are_named(
    bot_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omniroute_telegram import plugin

    host = PluginHost(entry_points=False)
    host.register(plugin, name="telegram")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    document = config(bot_api, tmp_path, queue="nowhere", mode="webhook")
    app = App.from_dict(document, store=MemoryStore(), host=host)
    with pytest.raises(ConfigError) as info:
        async with app.running():
            pass
    errors = info.value.errors
    assert any(e.startswith("plugins.telegram.token_env: ") for e in errors)
    assert 'plugins.telegram.queue: unknown queue "nowhere"' in errors
    assert any(e.startswith("plugins.telegram.webhook_url: ") for e in errors)
    with pytest.raises(ConfigError, match=r"plugins\.telegram\.mode"):
        App.from_dict(config(bot_api, tmp_path, mode="push"), store=MemoryStore(), host=host)

"""The supervisors' email routes on a follower node: two nodes on the real PostgreSQL,
the leader running the (leader-only) channel against a real SMTP sink; the outbox, its
retry and the mails not answered, asked of the follower's web API, are the leader's."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from emailkit import Sink, config, host, mail, send
from omniroute_email.channel import EmailChannel
from omniroute_email.plugin import outbox_entries
from test_email_smtp import reply_to_a_new_mail, until

from omniroute.actions import ActionError
from omniroute.cluster import Node
from omniroute.web.asgi import create_asgi_app
from omniroute.web.passwords import hash_token

# The core's helper for the real PostgreSQL (tests/pgkit.py of the repository).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from pgkit import DSN, needs_postgres
from pgkit import schema as schema

pytestmark = [needs_postgres, pytest.mark.anyio]

SUPERVISOR = {"Authorization": "Bearer sue-token"}
AGENT = {"Authorization": "Bearer ana-token"}


def email(node: Node) -> EmailChannel:
    channel = node.app.channels["email"]
    assert isinstance(channel, EmailChannel)
    return channel


@pytest.fixture
async def cluster(
    schema: str, tmp_path: Path, sink: Sink
) -> AsyncIterator[tuple[Node, Node, httpx.AsyncClient]]:
    """The leader running the channel, a follower, and a client of the follower's web API."""
    cfg: dict[str, Any] = config(tmp_path, sink.port)
    cfg["server"]["users"] = [
        {"id": "sue", "role": "supervisor", "token_hashes": [hash_token("sue-token")]},
        {"id": "ana", "role": "agent", "token_hashes": [hash_token("ana-token")]},
    ]

    def node(name: str, **options: Any) -> Node:
        return Node.from_dict(
            cfg, dsn=DSN, schema=schema, name=name, host=host(), election_interval=0.1, **options
        )

    async with node("leader").running() as leader, node("front", lead=False).running() as front:
        with anyio.fail_after(5):
            while not leader.is_leader:
                await anyio.sleep(0.02)
            await email(leader).ready.wait()
        web = create_asgi_app(front.app, front.app.config.server)
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as http:
            yield leader, front, http
        assert email(front).port is None  # the follower's channel never ran
        assert email(front).outbox.entries == {}


async def test_a_follower_shows_the_leaders_outbox_and_retries_on_the_leader(
    cluster: tuple[Node, Node, httpx.AsyncClient], sink: Sink
) -> None:
    leader, _, http = cluster
    outbox = email(leader).outbox
    sink.answer = "550 5.1.1 no such user"
    await reply_to_a_new_mail(leader.app, email(leader), "Hello?")
    await until(lambda: any(e.status == "failed" for e in outbox.entries.values()))
    (key,) = outbox.entries

    listed = await http.get("/email/outbox", headers=SUPERVISOR)
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()
    assert (entry["message"], entry["status"]) == (key, "failed")
    assert "550" in entry["last_error"]
    assert (await http.get("/email/outbox", headers=AGENT)).status_code == 403
    assert (await http.post(f"/email/outbox/{key}/retry", headers=AGENT)).status_code == 403
    unknown = await http.post("/email/outbox/nothing/retry", headers=SUPERVISOR)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "no such mail in the outbox")

    sink.answer = "250 OK"
    retried = await http.post(f"/email/outbox/{key}/retry", headers=SUPERVISOR)
    assert retried.status_code == 200, retried.text
    assert retried.json()["message"] == key
    (sent,) = await sink.wait_for(1)
    assert sent.get_content().strip() == "Hello?"
    await until(lambda: not outbox.entries)
    assert (await http.get("/email/outbox", headers=SUPERVISOR)).json() == []


async def test_a_follower_shows_the_mails_the_leader_did_not_answer(
    cluster: tuple[Node, Node, httpx.AsyncClient],
) -> None:
    leader, _, http = cluster
    port = email(leader).port
    assert port is not None
    await send(port, mail(subject="Out of office", Auto_Submitted="auto-replied"))
    with anyio.fail_after(5):  # the leader's channel follows the log a moment after
        while not (ignored := await http.get("/email/ignored", headers=SUPERVISOR)).json():
            assert ignored.status_code == 200, ignored.text
            await anyio.sleep(0.05)
    assert [i["reason"] for i in ignored.json()] == ["Auto-Submitted: auto-replied"]
    assert (await http.get("/email/ignored", headers=AGENT)).status_code == 403


async def test_a_channel_that_has_not_read_the_log_back_refuses_rather_than_look_empty(
    cluster: tuple[Node, Node, httpx.AsyncClient],
) -> None:
    _, front, _ = cluster  # a follower's channel never starts: as a new leader's, at first
    with pytest.raises(ActionError) as refused:
        await outbox_entries(email(front))
    assert refused.value.status == 503 and "starting" in str(refused.value)

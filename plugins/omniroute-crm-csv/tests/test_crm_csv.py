"""The CSV CRM: look-ups by any address, and the screen pop and merged history it gives
the inbox through the core's customer look-up."""

from __future__ import annotations

from pathlib import Path

import anyio
import omniroute_crm_csv
import pytest
from omniroute_crm_csv import Directory

from omniroute import events as ev
from omniroute.app import App
from omniroute.config import check, load
from omniroute.model import Customer, Identity
from omniroute.store import MemoryStore
from omniroute.testing import EchoChannel

CSV = """id,name,phone,email,telegram,plan,city
c-1,Carla Diaz,+34 600 111 222,Carla@Example.com,424242,gold,Madrid
c-2,Dino Rossi,0039 06 1234;+39 333 1,dino@example.it,,silver,
,nobody,,x@example.com,,,
"""


@pytest.fixture
def crm_file(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_any_address_finds_the_customer(crm_file: Path) -> None:
    directory = Directory(crm_file)
    carla = directory.find(Identity("email", "carla@example.com"))
    assert carla is not None and carla.name == "Carla Diaz" and carla.id == "crm:c-1"
    assert directory.find(Identity("voice", "+34600111222")) == carla
    assert directory.find(Identity("telegram", "424242")) == carla
    assert carla.attributes == {"crm_id": "c-1", "plan": "gold", "city": "Madrid"}
    assert set(carla.identities) == {
        Identity("voice", "+34600111222"),
        Identity("email", "carla@example.com"),
        Identity("telegram", "424242"),
    }
    dino = directory.find(Identity("voice", "+39061234"))
    assert dino is not None and dino.name == "Dino Rossi"
    assert directory.find(Identity("voice", "+393331")) == dino
    assert directory.find(Identity("email", "x@example.com")) is None  # a row with no id
    assert directory.find(Identity("webchat", "nobody")) is None


def test_an_edited_file_is_read_again(crm_file: Path) -> None:
    directory = Directory(crm_file)
    assert directory.find(Identity("email", "eve@example.com")) is None
    crm_file.write_text(CSV + "c-3,Eve,,eve@example.com,,,,\n", encoding="utf-8")
    found = directory.find(Identity("email", "eve@example.com"))
    assert found is not None and found.name == "Eve"


def test_a_file_without_the_needed_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,email\nx,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks id"):
        Directory(path).find(Identity("email", "y"))


@pytest.mark.anyio
async def test_the_inbox_gets_a_screen_pop_and_one_history(
    app, echo_channel: EchoChannel, register_plugin, crm_file: Path
) -> None:
    register_plugin(omniroute_crm_csv, name="crm-csv")
    config = {
        "queues": [{"name": "support"}],
        "agents": [{"id": "ana", "capacity": {"echo": 2, "telegram": 2}}],
        "plugins": {"crm-csv": {"path": str(crm_file)}},
    }
    async with app(config).running() as running:
        with running.subscribe() as events:
            by_telegram = echo_channel.contact(
                "support",
                customer=Customer(
                    id="telegram:424242", identities=[Identity("telegram", "424242")]
                ),
            )
            await running.submit(by_telegram)
            linked = await anext(e async for e in events if isinstance(e, ev.CustomerLinked))
        assert linked.by == "crm" and linked.customer_id == "telegram:424242"
        customer = running.conversations.customer("telegram:424242")
        assert customer is not None and customer.name == "Carla Diaz"
        assert customer.attributes["plan"] == "gold"
        # Later she writes an email: the same customer, one history.
        by_email = echo_channel.contact(
            "support",
            customer=Customer(
                id="email:carla", identities=[Identity("email", "carla@example.com")]
            ),
        )
        await running.submit(by_email)
        await anyio.wait_all_tasks_blocked()
        history = running.conversations.history("email:carla")
        assert [c.id for c in history] == [by_email.id, by_telegram.id]


def test_the_path_is_relative_to_the_config_file_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin_host, register_plugin
) -> None:
    register_plugin(omniroute_crm_csv, name="crm-csv")
    site = tmp_path / "site"
    site.mkdir()
    (site / "customers.csv").write_text(CSV, encoding="utf-8")
    config = site / "omniroute.toml"
    config.write_text('[plugins.crm-csv]\npath = "customers.csv"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # run from elsewhere: the file is still found
    assert check(config, plugin_host) == []

    async def look_up() -> Customer | None:
        app = App(load(config), host=plugin_host, store=MemoryStore())
        async with app.running():
            return omniroute_crm_csv.omniroute_customer_lookup(Identity("telegram", "424242"), None)

    found = anyio.run(look_up)
    assert found is not None and found.name == "Carla Diaz"

    config.write_text('[plugins.crm-csv]\npath = "missing.csv"\n', encoding="utf-8")
    [error] = check(config, plugin_host)
    assert error.startswith("plugins.crm-csv.path: cannot read ")
    assert str(site / "missing.csv") in error

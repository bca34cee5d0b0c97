"""A CRM in a CSV file: given any address of a customer (phone, email, Telegram id,
web chat session), answer who they are, all their addresses and a few fields.

Columns `id` and `name` are required; `phone`, `email`, `telegram` and `webchat` hold
addresses (several separated by `;`); any other column is a field shown in the inbox.
The file is read again when it changes, so the business edits it while omniroute runs.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from omniroute import hookimpl
from omniroute.model import Customer, Identity, Interaction
from omniroute.specs import ConfigSpec

__all__ = ["CrmCsvSettings", "Directory"]

logger = logging.getLogger("omniroute.crm_csv")

#: Address columns -> the channel whose addresses they hold.
CHANNELS = {"phone": "voice", "email": "email", "telegram": "telegram", "webchat": "webchat"}


class CrmCsvSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    #: The CSV file (UTF-8, a header row); a relative path is relative to the config
    #: file's folder, as `[store] path` is.
    path: str


def normalise(channel: str, address: str) -> str:
    """One spelling per address: phone numbers as digits (with a leading +), emails in
    lower case, ids as written."""
    address = address.strip()
    if channel == "voice":
        digits = re.sub(r"\D", "", address)
        return ("+" if address.startswith(("+", "00")) else "") + digits.removeprefix("00")
    if channel == "email":
        return address.lower()
    return address


class Directory:
    """The CSV file's customers, indexed by every address; reloaded when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._by_address: dict[tuple[str, str], Customer] = {}

    def find(self, identity: Identity) -> Customer | None:
        self._refresh()
        channel = identity.channel
        key = (channel, normalise(channel, identity.address))
        return self._by_address.get(key)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise FileNotFoundError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._by_address = dict(self._read())
            self._stamp = stamp

    def _read(self) -> Iterator[tuple[tuple[str, str], Customer]]:
        with self.path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"id", "name"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{self.path}: the header lacks {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                if not (row.get("id") or "").strip():
                    logger.warning("%s line %d: no id; skipped", self.path, line)
                    continue
                customer = _customer(row)
                for identity in customer.identities:
                    yield (identity.channel, identity.address), customer


def _customer(row: dict[str, Any]) -> Customer:
    identities = [
        Identity(channel, normalise(channel, value))
        for column, channel in CHANNELS.items()
        for value in (row.get(column) or "").split(";")
        if value.strip()
    ]
    fields = {
        key: value.strip()
        for key, value in row.items()
        if key and key not in CHANNELS and key not in ("id", "name") and value and value.strip()
    }
    return Customer(
        id=f"crm:{row['id'].strip()}",
        name=(row.get("name") or "").strip() or None,
        identities=identities,
        attributes={"crm_id": row["id"].strip(), **fields},
    )


#: The directory of each running app that has a `[plugins.crm-csv]` table, by app.
_directories: dict[int, Directory] = {}


def problems(settings: CrmCsvSettings, config: Any) -> list[str]:
    """A file that is missing or lacks its columns (`ConfigSpec.check`: `omniroute check`
    and the start of `omniroute serve` report it before anything runs)."""
    try:
        Directory(config.path(settings.path)).find(Identity("email", ""))
    except (OSError, ValueError, csv.Error) as exc:
        return [f"plugins.crm-csv.path: {exc}"]
    return []


@hookimpl
def omniroute_config_sections() -> Iterator[ConfigSpec]:
    yield ConfigSpec(section="crm-csv", type=CrmCsvSettings, check=problems)


@hookimpl
def omniroute_startup(app: Any) -> None:
    settings = app.plugin_config.get("crm-csv")
    if settings is not None:
        directory = Directory(app.config.path(settings.path))
        directory.find(Identity("email", ""))  # read it now: a broken file is logged at once
        _directories[id(app)] = directory


@hookimpl
def omniroute_shutdown(app: Any) -> None:
    _directories.pop(id(app), None)


@hookimpl
def omniroute_customer_lookup(identity: Identity, interaction: Interaction | None) -> Any:
    """The customer with this address in the file, or None (the next CRM is asked)."""
    for directory in _directories.values():
        found = directory.find(identity)
        if found is not None:
            return found
    return None

"""Files of conversations, both ways, kept on disk under one folder per interaction.

A file is named in a message by the URL that serves it (`/telegram/files/<interaction>/
<name>`), which the inbox shows as a link; the route checks that the caller may read
that interaction. Names are made safe and prefixed with a digest of the content, so two
files of one conversation never overwrite each other and a re-run stores nothing twice.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import anyio

__all__ = ["PREFIX", "FileTooLarge", "Files"]

PREFIX = "/telegram/files/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileTooLarge(ValueError):
    pass


class Files:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    async def save(self, interaction_id: str, name: str, content: bytes) -> str:
        """Keep a file of a conversation; answers its URL."""
        if len(content) > self.max_bytes:
            raise FileTooLarge(f"{name}: {len(content)} bytes, over {self.max_bytes}")
        digest = hashlib.sha256(content).hexdigest()[:12]
        stored = f"{digest}-{safe_name(name)}"
        folder = self.root / safe_name(interaction_id)
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        path = anyio.Path(folder / stored)
        if not await path.exists():
            partial = anyio.Path(folder / f".{stored}.part")
            await partial.write_bytes(content)
            await partial.rename(path)  # never a half-written file under its name
        return f"{PREFIX}{safe_name(interaction_id)}/{stored}"

    def path(self, interaction_id: str, name: str) -> Path | None:
        """The file `name` of an interaction, if it exists (and is a plain name)."""
        if name != safe_name(name) or name.startswith("."):
            return None
        path = self.root / safe_name(interaction_id) / name
        return path if path.is_file() else None

    def from_url(self, url: str) -> tuple[str, Path] | None:
        """(interaction id, file) for one of this channel's file URLs, else None."""
        if not url.startswith(PREFIX):
            return None
        interaction_id, _, name = url.removeprefix(PREFIX).partition("/")
        path = self.path(interaction_id, name)
        return None if path is None else (interaction_id, path)


def safe_name(name: str) -> str:
    """A file name with nothing but letters, digits, dots, dashes and underscores."""
    cleaned = _UNSAFE.sub("_", name.rsplit("/", 1)[-1]).strip("._") or "file"
    return cleaned[-100:]


def original_name(stored: str) -> str:
    """The name a stored file was given, without its digest prefix."""
    return stored.split("-", 1)[1] if "-" in stored else stored

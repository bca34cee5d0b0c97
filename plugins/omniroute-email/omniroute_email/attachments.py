"""Attachments on disk, named by their SHA-256: a resent mail stores nothing twice, and
a file is complete (written, synced, renamed) before the message naming it is durable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import anyio

__all__ = ["AttachmentStore", "link"]

PREFIX = "/email/attachments"


def link(interaction_id: str, digest: str, name: str) -> str:
    """The inbox's download link of one attachment of one interaction."""
    return f"{PREFIX}/{quote(interaction_id, safe='')}/{digest}/{quote(name, safe='')}"


class AttachmentStore:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not an attachment digest: {digest!r}")
        return self.folder / digest[:2] / digest

    async def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        await anyio.to_thread.run_sync(self._write, digest, data)
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_suffix(f".{os.getpid()}.tmp")
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)

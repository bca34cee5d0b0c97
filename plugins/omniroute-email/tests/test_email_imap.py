"""IMAP against a real Dovecot (installed by scripts/install-dovecot), one instance per
test on a free loopback port with its config in a temporary folder: unseen mail becomes
interactions, is marked seen only after, and new mail arrives through IDLE."""

from __future__ import annotations

import getpass
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from emailkit import config, free_port, mail, running

from omniroute import events as ev

pytestmark = pytest.mark.anyio

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "support", "secret"


class Dovecot:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        f = self.folder
        for sub in ("run", "state", "mail"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:  # Dovecot never stores mail as root: as nobody, in a folder it reaches
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chmod(f, 0o755)
            os.chown(f / "mail", uid, gid)
        me = getpass.getuser()
        users = (
            "" if os.getuid() == 0 else f"default_login_user = {me}\ndefault_internal_user = {me}\n"
        )
        (f / "dovecot.conf").write_text(
            f"""
base_dir = {f}/run
state_dir = {f}/state
log_path = {f}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{f}/mail/%u
mailbox_idle_check_interval = 1 secs
first_valid_uid = 0
{users}
passdb {{
  driver = static
  args = user={USER} password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={f}/mail/{USER}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
        )
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(f / "dovecot.conf")])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        log = (f / "dovecot.log").read_text() if (f / "dovecot.log").exists() else ""
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(USER, PASSWORD)
        client.select("INBOX")
        return client

    def append(self, raw: bytes) -> None:
        client = self.client()
        try:
            client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), raw)
        finally:
            client.logout()

    def unseen(self) -> list[bytes]:
        client = self.client()
        try:
            _, data = client.search(None, "UNSEEN")
            return data[0].split()
        finally:
            client.logout()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if not os.access(DOVECOT, os.X_OK):
        pytest.skip(
            "DOVECOT IS NOT INSTALLED: run scripts/install-dovecot (as root) for the IMAP tests"
        )
    # Dovecot's own processes must reach the folder: pytest's temporary ones are private.
    folder = Path(tempfile.mkdtemp(prefix="omniroute-dovecot-"))
    server = Dovecot(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_unseen_mail_becomes_interactions_and_then_is_marked_seen(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    dovecot.append(mail(subject="First", Message_ID="<i1@example.org>").as_bytes())
    dovecot.append(mail(subject="Refund please", Message_ID="<i2@example.org>").as_bytes())
    assert len(dovecot.unseen()) == 2
    box = {"host": "127.0.0.1", "port": dovecot.port, "security": "none", "user": USER,
           "password": PASSWORD, "poll": 30}  # fmt: skip
    cfg = config(tmp_path, free_port(), imap=[box])
    del cfg["plugins"]["email"]["listen"]
    async with running(cfg, tmp_path / "db") as (app, _):
        with anyio.fail_after(10):
            while len(app.router.waiting()) < 2:
                await anyio.sleep(0.05)
        queues = sorted((ix.subject, ix.queue) for ix in app.router.waiting())
        assert queues == [("First", "support"), ("Refund please", "billing")]
        with anyio.fail_after(5):
            while await anyio.to_thread.run_sync(dovecot.unseen):
                await anyio.sleep(0.05)
        # New mail while the reader waits in IDLE (poll is 30 s): picked up at once.
        started = time.monotonic()
        dovecot.append(mail(subject="Third", Message_ID="<i3@example.org>").as_bytes())
        with anyio.fail_after(10):  # seen once durable
            while len(app.router.waiting()) < 3 or await anyio.to_thread.run_sync(dovecot.unseen):
                await anyio.sleep(0.05)
        assert time.monotonic() - started < 10
        queued = [e async for _, e in app.store.read() if isinstance(e, ev.InteractionQueued)]
        assert len(queued) == 3

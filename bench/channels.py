"""`python -m bench channels`: inbound contacts per second through each channel plugin
to a queued, durable interaction: email over SMTP (bench/channels_email.py) and
Telegram updates from a local Bot API server (bench/channels_telegram.py)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .channels_email import run_email
from .channels_telegram import run_telegram


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench channels")
    parser.add_argument("--emails", type=int, default=3000, help="mails sent over SMTP")
    parser.add_argument("--processes", type=int, default=2, help="SMTP client processes")
    parser.add_argument("--connections", type=int, default=8, help="SMTP sessions per process")
    parser.add_argument("--updates", type=int, default=5000, help="Telegram updates")
    parser.add_argument("--dir", default=None, help="folder for the temporary stores")
    args = parser.parse_args(argv)
    email = run_email(args.emails, args.processes, args.connections, args.dir)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        telegram = run_telegram(args.updates, Path(folder))
    print(f"channels: email {email:.0f} msgs/s, telegram {telegram:.0f} updates/s")
    return 0

"""`python -m bench channels`: inbound contacts per second through each channel plugin
to a queued, durable interaction (email over SMTP: bench/channels_email.py)."""

from __future__ import annotations

import argparse

from .channels_email import run_email


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench channels")
    parser.add_argument("--emails", type=int, default=3000, help="mails sent over SMTP")
    parser.add_argument("--processes", type=int, default=2, help="SMTP client processes")
    parser.add_argument("--connections", type=int, default=8, help="SMTP sessions per process")
    parser.add_argument("--dir", default=None, help="folder for the temporary store")
    args = parser.parse_args(argv)
    email = run_email(args.emails, args.processes, args.connections, args.dir)
    print(f"channels: email {email:.0f} msgs/s")
    return 0

"""`omniroute passwd`: the hashes that go into `[[server.users]]`, never the secrets."""

from __future__ import annotations

import argparse
import getpass
import sys

from ..cli import command
from .passwords import hash_password, hash_token, new_token


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        action="store_true",
        help="make a new API token instead: prints the token (give it to the program) and "
        "its hash (put it in token_hashes)",
    )
    parser.add_argument(
        "--stdin", action="store_true", help="read the password from standard input"
    )


@command("passwd", "hash a password (or make an API token) for [[server.users]]", _arguments)
def passwd(args: argparse.Namespace) -> int:
    if args.token:
        token = new_token()
        print(f"token: {token}")
        print(f'token_hashes = ["{hash_token(token)}"]')
        return 0
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("omniroute: error: the two passwords differ", file=sys.stderr)
            return 1
    if len(password) < 8:
        print("omniroute: error: use at least 8 characters", file=sys.stderr)
        return 1
    print(f'password_hash = "{hash_password(password)}"')
    return 0

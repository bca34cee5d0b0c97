"""`omniroute store migrate | export | import | purge`: look after the event store.

Each works on the store the config file's `[store]` table names (SQLite next to the
config file when there is none).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..cli import command

__all__ = ["store"]

DEFAULT_CONFIG = Path("omniroute.toml")
#: A subcommand's work: (the opened store, the arguments, the decoded [store]) -> status.
Work = Callable[[Any, argparse.Namespace, Any], Awaitable[int]]


def _arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="store_command", title="commands", metavar="COMMAND")
    sub.required = True

    def config_argument(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "config",
            type=Path,
            nargs="?",
            default=DEFAULT_CONFIG,
            metavar="CONFIG",
            help="the config file whose [store] to use (default: omniroute.toml)",
        )

    p = sub.add_parser("migrate", help="create the schema, or upgrade it to this version's")
    config_argument(p)
    p = sub.add_parser("export", help="write the event log as JSON lines")
    p.add_argument("--since", required=True, metavar="DATE", help="ISO date or date-time (UTC)")
    p.add_argument("--until", metavar="DATE", help="events before this (exclusive)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: standard output")
    config_argument(p)
    p = sub.add_parser("import", help="append the events of an export to an empty store")
    p.add_argument("file", type=Path, metavar="FILE", help='an export ("-" for standard input)')
    p.add_argument("--append", action="store_true", help="the store may already hold events")
    config_argument(p)
    p = sub.add_parser("purge", help="replace message bodies older than the retention window")
    p.add_argument("--before", metavar="DATE", help="default: now minus [store] retention_days")
    config_argument(p)


@command("store", "look after the event store: migrate, export, import, purge", _arguments)
def store(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from .backup import BackupError
    from .base import StoreError

    work = {"migrate": _migrate, "export": _export, "import": _import, "purge": _purge}
    try:
        return _run(work[args.store_command], args)
    except (ConfigError, StoreError, BackupError) as exc:
        for line in str(exc).splitlines():
            print(f"omniroute store {args.store_command}: error: {line}", file=sys.stderr)
        return 1


def _run(work: Work, args: argparse.Namespace) -> int:
    import anyio

    from ..config import ConfigError, load
    from . import open_store, store_config

    source: Path = args.config
    config = load(source)
    settings = store_config(config.store)
    if settings.backend == "sqlite" and args.store_command in ("export", "purge"):
        path = _sqlite_path(settings.path, source.parent)
        if not path.exists():
            raise ConfigError([f"{source}: store.path: no database at {path}"])
    opened = open_store(config.store, root=source.parent, migrate=args.store_command == "migrate")

    async def main() -> int:
        try:
            return await work(opened, args, settings)
        finally:
            await opened.close()

    return anyio.run(main)


def _sqlite_path(path: str, root: Path) -> Path:
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else root / resolved


# ------------------------------------------------------------------ the commands


async def _migrate(opened: Any, args: argparse.Namespace, settings: Any) -> int:
    from .schema import LATEST
    from .sqlite import SqliteStore

    if isinstance(opened, SqliteStore):
        before = opened.migrated_from
        if before == LATEST:
            print(f"{opened.path}: schema version {LATEST}, nothing to do")
        else:
            print(f"{opened.path}: schema version {before} -> {LATEST}")
        return 0
    migrate = getattr(opened, "migrate", None)
    if migrate is None:
        print(f"the {settings.backend} store has no schema: nothing to do")
        return 0
    before, after = await migrate()
    where = f"{settings.backend} schema {settings.schema!r}"
    if before == after:
        print(f"{where}: schema version {after}, nothing to do")
    else:
        print(f"{where}: schema version {before} -> {after}")
    return 0


async def _export(opened: Any, args: argparse.Namespace, settings: Any) -> int:
    from .backup import export_lines

    since, until = _times(args.since, args.until)
    count = 0
    if args.output is None:
        out = sys.stdout.buffer
        async for line in export_lines(opened, since, until):
            out.write(line)
            count += 1
        out.flush()
    else:
        # Written beside the target and renamed once complete: never a half backup.
        partial = args.output.with_name(args.output.name + ".partial")
        with partial.open("wb") as out:
            async for line in export_lines(opened, since, until):
                out.write(line)
                count += 1
            out.flush()
            os.fsync(out.fileno())
        partial.replace(args.output)
    print(f"exported {count} events", file=sys.stderr)
    return 0


async def _import(opened: Any, args: argparse.Namespace, settings: Any) -> int:
    from .backup import import_lines

    if str(args.file) == "-":
        count, last = await import_lines(opened, sys.stdin.buffer, "<stdin>", append=args.append)
    else:
        try:
            file = args.file.open("rb")
        except OSError as exc:
            return _fail(args, f"{args.file}: cannot read: {exc.strerror or exc}")
        with file:
            count, last = await import_lines(opened, file, str(args.file), append=args.append)
    print(f"imported {count} events; the log now ends at seq {last}")
    return 0


async def _purge(opened: Any, args: argparse.Namespace, settings: Any) -> int:
    from .base import Purging

    if not isinstance(opened, Purging):
        return _fail(args, f"the {settings.backend} store does not support purging")
    if args.before is not None:
        before = _times(args.before, None)[0]
        assert before is not None
    elif settings.retention_days is not None:
        before = time.time() - settings.retention_days * 86400
    else:
        return _fail(args, "set [store] retention_days in the config, or pass --before DATE")
    changed = await opened.purge(before)
    print(f"purged message bodies of {changed} events before {_iso(before)}")
    return 0


def _times(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    from .backup import parse_time
    from .base import StoreError

    try:
        return (
            None if since is None else parse_time(since),
            None if until is None else parse_time(until),
        )
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def _iso(when: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")


def _fail(args: argparse.Namespace, message: str) -> int:
    print(f"omniroute store {args.store_command}: error: {message}", file=sys.stderr)
    return 1

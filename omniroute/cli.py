"""The `omniroute` command line.

Each subcommand is one function registered with `@command`, next to a function that
adds its arguments; `main` builds the parser from the registry. Adding `serve` or
`simulate` later is one decorated function, and nothing here needs to change.
Heavy imports (the plugin host, later the web app) happen inside the command that
needs them, so `omniroute --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from . import __version__
from .config import check as check_config
from .config import load

__all__ = ["COMMANDS", "Command", "build_parser", "command", "main", "plugin_host"]

Run = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: `run` does the work and returns the exit status."""

    help: str
    run: Run
    arguments: Arguments


#: Subcommands by name, in the order `--help` lists them.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, arguments: Arguments | None = None) -> Callable[[Run], Run]:
    """Register the decorated function as `omniroute NAME`."""

    def register(run: Run) -> Run:
        COMMANDS[name] = Command(help=help, run=run, arguments=arguments or _no_arguments)
        return run

    return register


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omniroute",
        description="The routing heart of a contact center.",
    )
    parser.add_argument("--version", action="version", version=f"omniroute {__version__}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        cmd.arguments(sub.add_parser(name, help=cmd.help, description=cmd.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (argparse's exits included)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return COMMANDS[args.command].run(args)


def plugin_host() -> Any:
    """The plugin host commands use: every installed plugin. Tests replace this."""
    from .plugins import PluginHost

    return PluginHost()


def _error(message: str) -> int:
    print(f"omniroute: error: {message}", file=sys.stderr)
    return 1


# ------------------------------------------------------------------ check


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, metavar="CONFIG", help="the TOML file to check")


@command("check", "validate a config file, plugin names and sections included", _check_arguments)
def check(args: argparse.Namespace) -> int:
    from .plugins import PluginError

    source = str(args.config)
    try:
        errors = check_config(args.config, plugin_host())
    except PluginError as exc:
        return _error(f"cannot load plugins: {exc}")
    if errors:
        for line in errors:
            # Syntax and file errors already start with the file name.
            print(line if line.startswith(f"{source}:") else f"{source}: {line}", file=sys.stderr)
        return 1
    config = load(args.config)
    print(f"ok: {_count(len(config.queues), 'queue')}, {_count(len(config.agents), 'agent')}")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ------------------------------------------------------------------ plugins


def _plugins_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the plugin list as JSON")


@command("plugins", "list installed plugins, strategies and queue selectors", _plugins_arguments)
def plugins(args: argparse.Namespace) -> int:
    from .plugins import PluginError

    try:
        host = plugin_host()
        infos = [msgspec.structs.replace(i, version=_version(i)) for i in host.describe()]
        listed = {
            "strategies": sorted(host.strategies()),
            "queue selectors": sorted(host.queue_selectors()),
            "channels": sorted(host.channels()),
            "config sections": sorted(host.config_sections()),
        }
    except PluginError as exc:
        return _error(f"cannot load plugins: {exc}")
    if args.json:
        document = {"plugins": infos, **{k.replace(" ", "_"): v for k, v in listed.items()}}
        print(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())
        return 0
    rows = [
        (info.name, info.version or "-", "yes" if info.builtin else "no", ", ".join(info.hooks))
        for info in infos
    ]
    print(_table(("NAME", "VERSION", "BUILTIN", "HOOKS"), rows))
    print()
    for label, names in listed.items():
        print(f"{label}: {', '.join(names) or '(none)'}")
    return 0


def _version(info: Any) -> str | None:
    """Built-ins ship inside omniroute, so they have its version."""
    return info.version or (__version__ if info.builtin else None)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    )


# ------------------------------------------------------------------ commands in other modules
# Each module below registers its commands with `@command` when imported; one line each.
# They keep heavy imports inside their command functions, like the ones above.
from . import staffing_cli as _staffing_cli  # noqa: E402, F401  (omniroute staff)
from .simulate import cli as _simulate_cli  # noqa: E402, F401  (omniroute simulate)
from .store import cli as _store_cli  # noqa: E402, F401  (omniroute store ...)
from .web import demo as _demo  # noqa: E402, F401
from .web import passwd as _passwd  # noqa: E402, F401
from .web import serve as _serve  # noqa: E402, F401

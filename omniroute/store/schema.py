"""The SQLite schema, its version, and the ordered steps that build and upgrade it.

A database carries two numbers in its header: `application_id` says it is omniroute's,
`user_version` says which schema it has. Version N is what the first N steps of
`MIGRATIONS` build; a new release that changes the schema appends a step, never edits one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .base import SchemaError

__all__ = ["APPLICATION_ID", "LATEST", "MIGRATIONS", "check", "migrate", "version_of"]

#: "OmRt": marks a SQLite file as omniroute's event store.
APPLICATION_ID = 0x4F6D5274

#: Step N (1-based) takes a database from version N-1 to N; each runs in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # `data` is the event's JSON; `type` and `at` copy its tag and time, for retention.
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, at REAL NOT NULL,"
        " type TEXT NOT NULL, data TEXT NOT NULL)",
        "CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
)
LATEST = len(MIGRATIONS)


def version_of(conn: sqlite3.Connection, where: str) -> int:
    """The schema version of an omniroute database; 0 for an empty file.

    Raises SchemaError when the file holds tables but is not omniroute's.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id == APPLICATION_ID:
        return int(version)
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id == 0 and version == 0 and tables == 0:
        return 0
    raise SchemaError(
        f"{where} is not an omniroute database (application_id {app_id:#x}, "
        f"{tables} schema objects); point [store] path at another file"
    )


def check(conn: sqlite3.Connection, where: str, latest: int | None = None) -> int:
    """The version if this code can use the database as it is; SchemaError otherwise."""
    latest = len(MIGRATIONS) if latest is None else latest
    version = version_of(conn, where)
    if version > latest:
        raise SchemaError(
            f"{where} has schema version {version}, newer than this omniroute knows "
            f"(version {latest}): upgrade omniroute, or restore a backup made by it"
        )
    if version < latest:
        raise SchemaError(
            f"{where} has schema version {version}, older than this omniroute's "
            f"(version {latest}): run `omniroute store migrate` (after a backup)"
        )
    return version


def migrate(
    conn: sqlite3.Connection,
    where: str,
    steps: Sequence[Sequence[str]] | None = None,
) -> tuple[int, int]:
    """Bring the database to the newest version; return (version before, version after).

    Each step and its version bump commit together, so an interrupted migration leaves
    the database at the last completed step. `conn` must be in autocommit mode.
    """
    steps = MIGRATIONS if steps is None else steps
    before = version_of(conn, where)
    if before > len(steps):
        check(conn, where, len(steps))  # raises the "newer than this code" error
    for number in range(before + 1, len(steps) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in steps[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return before, max(before, len(steps))

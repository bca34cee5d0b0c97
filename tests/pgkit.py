"""The real PostgreSQL server for tests: its DSN, and a fresh schema per test.

A plain helper module (not a conftest): tests import it as `from pgkit import ...`.
`OMNIROUTE_TEST_DSN` names the server (default: 127.0.0.1:5432, database `test`, user
`postgres`, trust auth); tests that need it skip, saying why, when no server answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

DSN = os.environ.get("OMNIROUTE_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _server_error() -> str | None:
    try:
        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


_ERROR = _server_error()
#: Mark for tests that need the server.
needs_postgres = pytest.mark.skipif(
    _ERROR is not None,
    reason=f"no PostgreSQL answers at {DSN} (set OMNIROUTE_TEST_DSN): {_ERROR}",
)


def drop_schema(schema: str) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema name no other test run uses; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schema(name)

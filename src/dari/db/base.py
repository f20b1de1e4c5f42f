"""The seam between dari's tables and the database engine that holds them.

Modules write their SQL once, in the subset SQLite and PostgreSQL share: `?` (or `:name`)
parameters, `INSERT … ON CONFLICT … DO NOTHING/UPDATE`, `RETURNING`, explicit column lists. What
differs (JSON access, the implicit row order) comes from the `Database` object's helpers; the
tables themselves are created by the versioned migrations in `dari.db.schema`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Args = Sequence[Any] | dict[str, Any]
Dialect = Literal["sqlite", "postgres"]

# PostgreSQL advisory-lock keys, all here so that no two modules take the same one. One bigint
# key each for what is locked database-wide; a first int key, the second naming the collection
# (hashtext), for what is locked per collection. The two forms never conflict with each other.
_DARI = 0x64617269  # "dari"
LOCK_MIGRATIONS = _DARI << 8  # the store's migrations
LOCK_AUDIT = (_DARI << 8) + 1  # the guards' audit chain
LOCK_CACHE_SCHEMA = (_DARI << 8) + 2  # the answer cache's tables
LOCK_PGVECTOR = _DARI  # pgvector's registry (second key 0) and each collection's table
LOCK_FULLTEXT = _DARI + 2  # each collection's BM25 rows in PostgreSQL


class Cursor(Protocol):
    """What a statement returns: sqlite3's and psycopg's cursors both fit."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside one transaction (`Database.transaction`)."""

    def execute(self, sql: str, args: Args = (), /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Args], /) -> Any: ...


class Database(Protocol):
    dialect: Dialect
    where: str  # the database, as messages name it (a path, or host:port/name; no password)
    order_column: str  # a column giving rows their insertion order ("rowid" / "seq")

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction: committed whole, or rolled back whole on any error."""
        ...

    def rows(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        """A read, all rows fetched."""
        ...

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text of top-level `key` in a JSON object stored in `column`."""
        ...

    def json_array_has_any(self, column: str, n: int) -> str:
        """SQL true when the JSON array of strings in `column` holds one of `n` parameters."""
        ...

    def sizes(self) -> dict[str, int]: ...

    def close(self) -> None: ...

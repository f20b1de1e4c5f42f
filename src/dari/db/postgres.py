"""PostgreSQL, for dari processes that share one store (replicas, several machines).

A connection pool per process (psycopg_pool); a connection is checked before it is lent, so a
server that restarted is reconnected to without restarting dari. The server being unreachable is
a `BackendError` (HTTP 503 with Retry-After) naming it; a write that fails is rolled back whole.
Statements are written once with `?`/`:name` parameters (see `dari.db.base`) and translated here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from dari.db.base import Args, Cursor, Dialect
from dari.errors import BackendError, MissingExtra, StoreError

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

# a quoted literal or identifier (kept as is), a parameter, or a percent sign (escaped)
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"])*\"|\?|(?<!:):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=1024)
def translate(sql: str, with_args: bool = True) -> str:
    """`?` → `%s`, `:name` → `%(name)s`, `%` → `%%`, outside quotes (psycopg's placeholders).
    Without arguments psycopg reads the statement as is, so nothing changes."""
    if not with_args:
        return sql

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if m.group(1):
            return f"%({m.group(1)})s"
        return token  # a quoted literal

    return _TOKEN.sub(swap, sql)


def describe(url: str) -> str:
    """`host:port/database` of a connection URL or DSN, for messages (never the password)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(url)
    except Exception:  # a malformed URL: psycopg's own error says what is wrong with it
        return scrub(url)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    database = f"/{params['dbname']}" if params.get("dbname") else ""
    return f"{host}:{params.get('port') or 5432}{database}"


def scrub(text: str) -> str:
    """Passwords out of a message that may echo the connection string."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)


def connect_kwargs(timeout_s: float) -> dict[str, Any]:
    """What every dari connection to PostgreSQL is opened with."""
    return {"autocommit": True, "connect_timeout": max(2, round(timeout_s))}


def make_pool(
    url: str,
    pool_size: int,
    timeout_s: float,
    name: str,
    configure: Callable[[Any], None] | None = None,
) -> ConnectionPool[Any]:
    """A pool (not yet open) whose connections are checked before they are lent, so that a
    restarted server's dead connections are replaced without restarting dari."""
    from psycopg_pool import ConnectionPool

    return ConnectionPool(
        url,
        min_size=1,
        max_size=pool_size,
        kwargs=connect_kwargs(timeout_s),
        configure=configure,
        check=ConnectionPool.check_connection,
        timeout=timeout_s,
        # give up retrying soon (the next call tries again at once): after an outage the pool
        # must not sit out a long exponential backoff while the server is already back
        reconnect_timeout=max(5.0, 2 * timeout_s),
        name=name,
        open=False,
    )


def _search_path(schema: str, conn: Any) -> None:
    conn.execute(f"SET search_path TO {schema}")


class _Connection:
    """A pooled psycopg connection inside a transaction, taking dari's statements."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Args = ()) -> Cursor:
        cursor: Cursor = self._conn.execute(translate(sql, bool(args)), args or None)
        return cursor

    def executemany(self, sql: str, rows: Iterable[Args]) -> Any:
        cursor = self._conn.cursor()
        cursor.executemany(translate(sql), list(rows))
        return cursor


class PostgresDatabase:
    dialect: Dialect = "postgres"
    order_column = "seq"

    def __init__(
        self, url: str, pool_size: int = 10, timeout_s: float = 5.0, schema: str = ""
    ) -> None:
        """`schema`: a PostgreSQL schema every connection looks in first (search_path), for a
        module whose tables live apart from the store's (the answer cache's `dari_cache`)."""
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise MissingExtra("psycopg", "postgres") from exc
        if not url:
            raise StoreError(
                "store.backend = 'postgres' but store.postgres_url is empty",
                "set store.postgres_url (DARI_STORE__POSTGRES_URL), e.g. "
                "postgresql://dari:secret@127.0.0.1:5432/dari",
            )
        self.url = url
        self.where = f"PostgreSQL at {describe(url)}"
        configure = None
        if schema:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
                raise ValueError(f"not a plain schema name: {schema!r}")
            configure = partial(_search_path, schema)
        name = f"dari-{schema or 'store'}"
        self._pool = make_pool(url, pool_size, timeout_s, name, configure)
        with self._calls():
            self._pool.open(wait=True, timeout=timeout_s)

    @contextmanager
    def _calls(self) -> Iterator[None]:
        """psycopg's errors as dari's: unreachable → BackendError (503), others → StoreError."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            first = scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            raise BackendError(
                f"{self.where} is unreachable: {first}",
                "check that the server is running and reachable; dari reconnects by itself, "
                "so retry in a few seconds",
            ) from exc
        except psycopg.Error as exc:
            first = scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            raise StoreError(
                f"{self.where} refused a statement: {first}",
                "nothing was half-written; if it persists, check the server's log",
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        with self._calls(), self._pool.connection() as conn, conn.transaction():
            yield _Connection(conn)

    def rows(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        with self._calls(), self._pool.connection() as conn:
            return [tuple(r) for r in conn.execute(translate(sql, bool(args)), args or None)]

    def json_text(self, column: str, key: str) -> str:
        return f"({column}::jsonb ->> '{key}')"

    def json_array_has_any(self, column: str, n: int) -> str:
        marks = ",".join("?" * n)
        return f"jsonb_exists_any({column}::jsonb, ARRAY[{marks}]::text[])"

    def sizes(self) -> dict[str, int]:
        ((size,),) = self.rows("SELECT pg_database_size(current_database())")
        return {self.where: int(size)}

    def close(self) -> None:
        self._pool.close()

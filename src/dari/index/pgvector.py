"""Dense search in PostgreSQL with pgvector: an HNSW index per collection, for collections shared
by several dari processes, next to (or in) the database that holds the store.

One table per dari collection (`dari_vectors_` + a hash of `vectors.prefix` + name), so that each
collection has its own HNSW graph of a fixed dimension and a search never filters other
collections' rows out of it; `dari_vector_collections` says which name and size each table
holds. One row per chunk, the document's ACL tags and metadata tokens as text arrays, so ACL and
metadata filters run inside the search (pgvector 0.8's iterative index scan keeps going until k
rows pass them). Scores are inner products of the stored unit vectors with the query, the same
scale as the numpy index, so retrieval's floors apply unchanged. SQLite stays the source of
truth: when the collection's generation moves, the rows are brought in step by difference (new
chunks added, removed ones deleted, changed tags rewritten), never by a full reload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dari.db.base import LOCK_PGVECTOR
from dari.db.postgres import connect_kwargs, describe, make_pool, scrub
from dari.errors import BackendError, ConfigError, MissingExtra
from dari.index.store import Store

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.sql import Composed
    from psycopg_pool import ConnectionPool

Tags = tuple[tuple[str, ...], tuple[str, ...]]
BATCH = 5000  # chunk ids per DELETE
_REGISTRY = "dari_vector_collections"
_SCHEMA = f"""CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS {_REGISTRY} (
  name TEXT PRIMARY KEY, table_name TEXT NOT NULL UNIQUE, dim INTEGER NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"""


def connect(url: str, pool_size: int = 10, timeout_s: float = 5.0) -> ConnectionPool[Any]:
    """A pool of connections to the server at `url`, after creating the extension and dari's
    registry table there if they are missing (once; several processes may do it at once)."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MissingExtra("psycopg", "postgres") from exc
    if not url:
        raise ConfigError(
            "vectors.backend = 'pgvector' but neither vectors.url nor store.postgres_url is set",
            "set store.postgres_url (DARI_STORE__POSTGRES_URL), e.g. "
            "postgresql://dari:secret@db:5432/dari, or vectors.url for a separate server",
        )
    where = describe(url)
    with _calls(where), psycopg.connect(url, **connect_kwargs(timeout_s)) as conn:
        ready = (
            "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "to_regclass(%s) IS NOT NULL"
        )
        row = conn.execute(ready, (_REGISTRY,)).fetchone()
        if not (row and row[0] and row[1]):  # a role without CREATE works once all is there
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_PGVECTOR,))
                conn.execute(_SCHEMA)
            row = conn.execute(ready, (_REGISTRY,)).fetchone()
    _check_version(str(row[0]) if row else "", where)
    pool = make_pool(url, pool_size, timeout_s, "dari-pgvector", configure=register_vector)
    with _calls(where):
        pool.open(wait=True, timeout=timeout_s)
    return pool


def _check_version(version: str, where: str) -> None:
    """pgvector 0.8 or newer: older ones have no iterative index scans, and a filtered search
    would return fewer than k rows whenever the filter rejects most of the first candidates."""
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < (0, 8):
        raise BackendError(
            f"PostgreSQL at {where} has pgvector {version or '(none)'}; dari needs 0.8 or newer",
            "upgrade pgvector on the server, then run ALTER EXTENSION vector UPDATE",
        )


def table_of(name: str) -> str:
    """The table of a collection (names may be longer than an identifier or need quoting)."""
    return "dari_vectors_" + hashlib.sha256(name.encode()).hexdigest()[:16]


def drop(pool: ConnectionPool[Any], name: str) -> None:
    """Remove a collection's table (when its dari collection is deleted); absent is fine."""
    with _calls(describe(str(pool.conninfo))), pool.connection() as conn, conn.transaction():
        _lock(conn, name)
        conn.execute(_sql("DROP TABLE IF EXISTS {t}", name))
        conn.execute(f"DELETE FROM {_REGISTRY} WHERE name = %s", (name,))


class PgVectorIndex:
    """The same searches as NumpyVectorIndex (`search`, `vectors_of`, `len`), served by pgvector."""

    def __init__(
        self, pool: ConnectionPool[Any], name: str, build_mb: int = 1024, ef: int = 0
    ) -> None:
        self._pool = pool
        self.name = name
        self._build_mb = build_mb  # the most memory an HNSW build may ask for
        self._ef = ef  # hnsw.ef_search; 0: ef_search(k, rows)
        self._rows: int | None = None  # about how many rows the table holds, once read
        self._where = describe(str(pool.conninfo))
        self._dim = 0  # the table's size once it is known to exist; asked again until then

    @classmethod
    def open(
        cls,
        pool: ConnectionPool[Any],
        store: Store,
        collection: str,
        prefix: str,
        stamp: Path,
        generation: int,
        build_mb: int = 1024,
        ef: int = 0,
    ) -> PgVectorIndex:
        """The index of `collection`, synced with the store unless `stamp` (a small file next
        to the collection's other derived indexes) says it already is at `generation` and the
        table is there (a new server, or a dropped table, is filled again)."""
        index = cls(pool, prefix + collection, build_mb, ef)
        try:
            seen = json.loads(stamp.read_text()) if stamp.exists() else {}
        except (OSError, ValueError):
            seen = {}
        current = seen.get("generation") == generation and seen.get("name") == index.name
        if current:
            with _calls(index._where), pool.connection() as conn:
                current = index._present(conn)
        if not current:
            index.sync(store, collection)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"generation": generation, "name": index.name}))
        return index

    def sync(self, store: Store, collection: str) -> dict[str, int]:
        """Bring the rows in step with the store's ready chunks, in one transaction under the
        collection's lock (two processes syncing at once take turns); returns what changed."""
        ids, tags, matrix = store.ready_vectors(collection)
        dim = matrix.shape[1] if ids else 0
        with _calls(self._where), self._pool.connection() as conn, conn.transaction():
            _lock(conn, self.name)
            row = conn.execute(
                f"SELECT dim FROM {_REGISTRY} WHERE name = %s", (self.name,)
            ).fetchone()
            known = int(row[0]) if row else 0
            if known and dim and known != dim:  # the embedder changed: start again
                conn.execute(_sql("DROP TABLE {t}", self.name))
                known = 0
            fresh = not known
            if fresh:
                if not dim:
                    return {"added": 0, "deleted": 0, "retagged": 0}
                self._create(conn, dim)
            present = {} if fresh else self._tags(conn)
            wanted = {cid: (i, tags[i]) for i, cid in enumerate(ids)}
            add = [i for cid, (i, _) in wanted.items() if cid not in present]
            retag = [cid for cid, (_, t) in wanted.items() if cid in present and present[cid] != t]
            gone = [cid for cid in present if cid not in wanted]
            self._copy(conn, [ids[i] for i in add], [tags[i] for i in add], matrix[add])
            if retag:
                with conn.cursor() as cur:
                    cur.executemany(
                        _sql("UPDATE {t} SET acl = %s, meta = %s WHERE chunk_id = %s", self.name),
                        [(list(wanted[c][1][0]), list(wanted[c][1][1]), c) for c in retag],
                    )
            for start in range(0, len(gone), BATCH):
                batch = gone[start : start + BATCH]
                conn.execute(_sql("DELETE FROM {t} WHERE chunk_id = ANY(%s)", self.name), (batch,))
            if fresh:  # one HNSW build after the load: ~7× faster than row by row (30k rows)
                self._build_index(conn, len(add), dim)
            self._dim = dim or known
        return {"added": len(add), "deleted": len(gone), "retagged": len(retag)}

    def __len__(self) -> int:
        with _calls(self._where), self._pool.connection() as conn:
            if not self._present(conn):
                return 0
            with self._dropped():
                row = conn.execute(_sql("SELECT count(*) FROM {t}", self.name)).fetchone()
                return int(row[0]) if row else 0
        return 0

    def search(
        self,
        query: np.ndarray,
        k: int,
        acl: Sequence[str] | None = None,
        where: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """Top k chunk ids by cosine similarity among those the ACL tags may read and whose
        document has every `key=value` token in `where` (the filter runs inside the index
        scan; the rows it returns are put in exact order)."""
        filters, params = [], {"q": np.asarray(query, dtype=np.float32).ravel(), "k": k}
        if acl is not None:  # readable: no ACL tags ('{}', braces doubled for format), or ...
            filters.append("acl = '{{}}'")
            if acl:  # ... one of the reader's
                filters[-1] = "(acl = '{{}}' OR acl && %(acl)s::text[])"
                params["acl"] = list(acl)
        if where:
            filters.append("meta @> %(meta)s::text[]")
            params["meta"] = list(where)
        sql = _sql(
            "WITH hits AS MATERIALIZED (SELECT chunk_id, embedding <#> %(q)s AS d FROM {t}"
            + (" WHERE " + " AND ".join(filters) if filters else "")
            + " ORDER BY embedding <#> %(q)s LIMIT %(k)s) SELECT chunk_id, d FROM hits"
            " ORDER BY d + 0",  # `+ 0`: sort the relaxed order again, not trust the index's
            self.name,
        )
        rows: list[tuple[Any, ...]] = []
        with _calls(self._where), self._pool.connection() as conn:
            if k <= 0 or not self._present(conn):
                return []
            with self._dropped(), conn.transaction():  # SET LOCAL: ends with the search
                conn.execute(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', %s, true)",
                    (str(self._ef or ef_search(k, self._size(conn))),),
                )
                rows = conn.execute(sql, params).fetchall()
        return [(str(cid), -float(d)) for cid, d in rows]

    def vectors_of(self, ids: Sequence[str]) -> np.ndarray:
        """The stored (unit) vectors of these chunk ids, one row each; zeros for unknown ids."""
        rows: list[tuple[Any, ...]] = []
        with _calls(self._where), self._pool.connection() as conn:
            if not ids or not self._present(conn):
                return np.zeros((len(ids), 0), np.float32)
            with self._dropped():
                sql = _sql(
                    "SELECT chunk_id, embedding FROM {t} WHERE chunk_id = ANY(%s)", self.name
                )
                rows = conn.execute(sql, (list(ids),)).fetchall()
        by_id = {str(cid): vec.to_numpy() for cid, vec in rows}
        out = np.zeros((len(ids), self._dim), np.float32)
        for j, cid in enumerate(ids):
            if cid in by_id:
                out[j] = by_id[cid]
        return out

    # -- helpers --------------------------------------------------------------------------------
    def _present(self, conn: Connection[Any]) -> bool:
        """Whether the collection has a table (an empty dari collection makes none). Known once
        found; until then asked at each call, so a sync by another process is seen."""
        if not self._dim:
            sql = f"SELECT dim FROM {_REGISTRY} WHERE name = %s"
            row = conn.execute(sql, (self.name,)).fetchone()
            self._dim = int(row[0]) if row else 0
        return bool(self._dim)

    def _size(self, conn: Connection[Any]) -> int:
        """About how many rows the table holds (the planner's estimate), read once."""
        if self._rows is None:
            found = conn.execute(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table_of(self.name),)
            ).fetchone()
            self._rows = max(0, int(found[0])) if found and found[0] is not None else 0
        return self._rows

    @contextlib.contextmanager
    def _dropped(self) -> Iterator[None]:
        """A table dropped by another process (its collection deleted) reads as no rows."""
        from psycopg import errors

        try:
            yield
        except errors.UndefinedTable:
            self._dim = 0

    def _create(self, conn: Connection[Any], dim: int) -> None:
        conn.execute(_sql("DROP TABLE IF EXISTS {t}", self.name))  # one left without its row
        conn.execute(
            _sql(
                "CREATE TABLE {t} (chunk_id TEXT PRIMARY KEY, acl TEXT[] NOT NULL, "
                f"meta TEXT[] NOT NULL, embedding vector({int(dim)}) NOT NULL)",
                self.name,
            )
        )
        conn.execute(
            f"INSERT INTO {_REGISTRY} (name, table_name, dim) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET dim = excluded.dim, updated_at = now()",
            (self.name, table_of(self.name), dim),
        )

    def _tags(self, conn: Connection[Any]) -> dict[str, Tags]:
        """Every row's chunk id and tags (no vectors)."""
        rows = conn.execute(_sql("SELECT chunk_id, acl, meta FROM {t}", self.name))
        return {str(cid): (tuple(acl), tuple(meta)) for cid, acl, meta in rows}

    def _copy(
        self, conn: Connection[Any], ids: list[str], tags: list[Tags], matrix: np.ndarray
    ) -> None:
        """New rows in one binary COPY (vectors as float32, no text round trip)."""
        if not ids:
            return
        sql = _sql(
            "COPY {t} (chunk_id, acl, meta, embedding) FROM STDIN (FORMAT BINARY)", self.name
        )
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(["text", "text[]", "text[]", "vector"])
            for cid, (acl, meta), vec in zip(ids, tags, matrix, strict=True):
                copy.write_row((cid, list(acl), list(meta), vec))

    def _build_index(self, conn: Connection[Any], rows: int, dim: int) -> None:
        """The HNSW graph over inner product (unit vectors: cosine order), built in memory
        when it fits: about rows × (4·dim + 300) bytes, capped at vectors.build_memory_mb (a
        graph larger than that is built on disk, several times slower)."""
        from psycopg import sql

        mb = min(self._build_mb, max(64, rows * (4 * dim + 300) * 3 // 2 // 2**20))
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (f"{mb}MB",))
        conn.execute(
            sql.SQL("CREATE INDEX {i} ON {t} USING hnsw (embedding vector_ip_ops)").format(
                i=sql.Identifier(table_of(self.name) + "_hnsw"),
                t=sql.Identifier(table_of(self.name)),
            )
        )
        conn.execute(_sql("ANALYZE {t}", self.name))


def ef_search(k: int, rows: int = 0) -> int:
    """The HNSW candidate list of a search for k among about `rows` vectors (unless
    vectors.ef_search sets it): 2k and at least 200, doubled beyond 250,000 rows, at most
    pgvector's 1,000. Measured by bench/vectors.py for the exact top 40: at 100k rows 200 finds
    98 % (95 % with an ACL filter), 100 only 90 %; at 1M rows 200 finds 86 %, 400 94.5 %
    (about exact numpy's latency), 800 98.5 %."""
    return min(1000, max(200, 2 * k) * (2 if rows > 250_000 else 1))


def _sql(text: str, name: str) -> Composed:
    """`text` with {t} the collection's table, quoted."""
    from psycopg import sql

    return sql.SQL(text).format(t=sql.Identifier(table_of(name)))


def _lock(conn: Connection[Any], name: str) -> None:
    """The collection's lock until the transaction ends: syncs and drops take turns."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_PGVECTOR, name))


@contextlib.contextmanager
def _calls(where: str) -> Iterator[None]:
    """psycopg's connection and server errors become one BackendError naming the server."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise BackendError(
            f"PostgreSQL (pgvector) at {where} failed: {scrub(str(exc)).strip()[:300]}",
            _hint(exc),
        ) from exc


def _hint(exc: BaseException) -> str:
    from psycopg import errors

    if isinstance(exc, errors.InsufficientPrivilege):
        return (
            "grant dari's role CREATE on the database, or have an administrator run "
            "CREATE EXTENSION vector there once"
        )
    if "extension" in str(exc) and "vector" in str(exc):
        return "install pgvector 0.8 or newer on the PostgreSQL server (CREATE EXTENSION vector)"
    return (
        "check that the PostgreSQL server is up and that vectors.url (or store.postgres_url, "
        "when vectors.url is empty) is right"
    )

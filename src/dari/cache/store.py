"""The answer cache's tables: a SQLite file apart from the store (the embedded default), or the
`dari_cache` schema of a PostgreSQL server (`cache.backend = "postgres"`: one cache for every
replica). It is derived data that can always be thrown away: a corrupt file, or tables written by
another cache schema, are moved aside (SQLite) or dropped (PostgreSQL) and rebuilt empty instead of
failing a question.

Each process keeps the embeddings of the scopes it has looked up in memory (a numpy matrix per
scope), reloaded when another process has written, so a semantic lookup is one matrix product.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dari.cache.meaning import Meaning
from dari.db.base import LOCK_CACHE_SCHEMA, Connection, Database
from dari.db.schema import TYPES
from dari.db.sqlite import SqliteDatabase

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
PG_SCHEMA = "dari_cache"  # the PostgreSQL schema the cache's tables live in
_TABLES = ("entry_chunks", "entries", "counters")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries(
  id TEXT PRIMARY KEY, scope TEXT NOT NULL, collection TEXT NOT NULL, norm TEXT NOT NULL,
  question TEXT NOT NULL, lang TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL,
  trace_id TEXT NOT NULL, meaning TEXT NOT NULL, vec {blob}, tokens INTEGER NOT NULL,
  approved INTEGER NOT NULL DEFAULT 0, created {real} NOT NULL, last_used {real} NOT NULL,
  expires {real} NOT NULL, hits INTEGER NOT NULL DEFAULT 0, UNIQUE(scope, norm))""",
    "CREATE INDEX IF NOT EXISTS entries_by_trace ON entries(trace_id)",
    "CREATE INDEX IF NOT EXISTS entries_by_use ON entries(approved, last_used)",
    """CREATE TABLE IF NOT EXISTS entry_chunks(
  entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE, chunk_id TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS entry_chunks_by_chunk ON entry_chunks(chunk_id)",
    "CREATE INDEX IF NOT EXISTS entry_chunks_by_entry ON entry_chunks(entry_id)",
    "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value {real} NOT NULL)",
)
NEVER = 1e18  # expiry of approved entries: they leave only by eviction or invalidation


@dataclass(frozen=True)
class Entry:
    """One cached answer, with where it came from."""

    id: str
    scope: str
    collection: str
    question: str  # as asked (personal data already redacted: such questions are not cached)
    lang: str
    answer: str
    citations: tuple[dict[str, object], ...]
    trace_id: str  # the trace whose answer this is
    tokens: int  # LLM tokens that answer cost: what each hit saves
    approved: bool
    created: float
    last_used: float
    expires: float
    hits: int

    @property
    def chunk_ids(self) -> tuple[str, ...]:
        return tuple(str(c["chunk_id"]) for c in self.citations)


@dataclass
class _ScopeIndex:
    ids: list[str]
    vecs: np.ndarray  # float32, one L2-normalised row per entry
    meanings: list[Meaning]


class ScopeVectors:
    """What both cache stores keep per process: the vectors of the scopes looked up, one numpy
    matrix each, dropped when another process has written (`_refresh`) and patched in place for
    this process's own writes. A store provides `_refresh` and `_load_scope`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._scopes: dict[str, _ScopeIndex] = {}
        self._seen_version = -1.0

    def nearest(
        self, scope: str, vec: np.ndarray, min_similarity: float, k: int = 5
    ) -> list[tuple[str, float, Meaning]]:
        """Entries of the scope whose embedding is at least `min_similarity` from `vec`, best
        first (at most k): (entry id, cosine similarity, the entry question's meaning)."""
        with self._lock:
            self._refresh()
            index = self._scopes.get(scope) or self._load_scope(scope)
        if not index.ids:
            return []
        sims = index.vecs @ vec.astype(np.float32)
        top = np.argsort(-sims)[:k]
        return [
            (index.ids[i], float(sims[i]), index.meanings[i])
            for i in top
            if sims[i] >= min_similarity
        ]

    def _refresh(self) -> None:
        raise NotImplementedError

    def _load_scope(self, scope: str) -> _ScopeIndex:
        raise NotImplementedError

    def _remember(self, scope: str, entry_id: str, vec: np.ndarray, meaning: Meaning) -> None:
        """Our own new entry, added to a scope already in memory (no reload)."""
        index = self._scopes.get(scope)
        if index is not None:
            row = vec.astype(np.float16).astype(np.float32)[None, :]
            index.vecs = np.vstack([index.vecs, row]) if index.ids else row
            index.ids.append(entry_id)
            index.meanings.append(meaning)

    def _forget(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        gone = set(entry_ids)
        for index in self._scopes.values():
            keep = [i for i, e in enumerate(index.ids) if e not in gone]
            if len(keep) < len(index.ids):
                index.vecs = index.vecs[keep]
                index.ids = [index.ids[i] for i in keep]
                index.meanings = [index.meanings[i] for i in keep]


class CacheStore(ScopeVectors):
    """Entries keyed by (scope, normalised question), their cited chunks, hit counters: in a
    SQLite file (a `Path`) or in PostgreSQL (a `Database` whose connections look in
    `PG_SCHEMA` first, see `open_postgres`)."""

    def __init__(self, where: Path | Database) -> None:
        super().__init__()
        self.rebuilt = ""  # why the tables were rebuilt on open, if they were
        if isinstance(where, Path):
            self.path: Path | str = where
            self.rebuilt = _prepare_file(where)
            self._db: Database = SqliteDatabase(where)
        else:
            self.path = where.where
            self._db = where
        self.rebuilt = self._create() or self.rebuilt
        if self.rebuilt:
            log.warning("answer cache at %s: %s", self.path, self.rebuilt)

    def _create(self) -> str:
        """The tables, created or checked under a lock (processes opening at once take turns);
        on PostgreSQL, tables of another cache schema are dropped and made again."""
        dialect = self._db.dialect
        why = ""
        with self._db.transaction() as db:
            if dialect == "postgres":
                db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_CACHE_SCHEMA,))
                db.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
                db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
                row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row and int(row[0]) != SCHEMA_VERSION:
                    why = f"its tables were written by cache schema {row[0]}, not {SCHEMA_VERSION}"
                    for table in _TABLES:
                        db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA:
                db.execute(statement.format(**TYPES[dialect]))
            if dialect == "postgres":
                db.execute(
                    "INSERT INTO meta VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
            else:
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return f"{why}; dropped them and started empty" if why else ""

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reads -----------------------------------------------------------------------------
    def exact(self, scope: str, norm: str, now: float) -> Entry | None:
        rows = self._db.rows(
            f"SELECT {_COLUMNS} FROM entries WHERE scope = ? AND norm = ? AND expires > ?",
            (scope, norm, now),
        )
        return _entry(rows[0]) if rows else None

    def get(self, entry_id: str) -> Entry | None:
        rows = self._db.rows(f"SELECT {_COLUMNS} FROM entries WHERE id = ?", (entry_id,))
        return _entry(rows[0]) if rows else None

    def entries(self, collection: str = "", limit: int = 50) -> list[Entry]:
        sql = f"SELECT {_COLUMNS} FROM entries"
        args: tuple[object, ...] = ()
        if collection:
            sql, args = sql + " WHERE collection = ?", (collection,)
        rows = self._db.rows(sql + " ORDER BY last_used DESC LIMIT ?", (*args, limit))
        return [_entry(r) for r in rows]

    def by_trace(self, trace_id: str) -> list[Entry]:
        rows = self._db.rows(f"SELECT {_COLUMNS} FROM entries WHERE trace_id = ?", (trace_id,))
        return [_entry(r) for r in rows]

    def counters(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in self._db.rows("SELECT name, value FROM counters")}

    def summary(self) -> list[tuple[str, int, int, int]]:
        """(collection, entries, approved, hits) per collection."""
        return [
            (str(c), int(n), int(a), int(h))
            for c, n, a, h in self._db.rows(
                "SELECT collection, count(*), sum(approved), sum(hits) FROM entries "
                "GROUP BY collection ORDER BY collection"
            )
        ]

    def size_bytes(self) -> int:
        if self._db.dialect == "postgres":
            parts = " + ".join(f"pg_total_relation_size('{t}')" for t in _TABLES)
            return int(self._db.rows(f"SELECT {parts}")[0][0])
        return sum(self._db.sizes().values())

    # -- writes ----------------------------------------------------------------------------
    def put(
        self,
        entry: Entry,
        norm: str,
        meaning: Meaning,
        vec: np.ndarray | None,
        max_entries: int,
    ) -> str:
        """Store an entry unless its key is taken (the first writer wins; an approval of the
        same key marks the stored one approved). Returns the id of the entry now stored."""
        with self._write() as tx:
            db = tx.db
            db.execute(
                f"INSERT INTO entries({_COLUMNS}, norm, meaning, vec) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?, ?,?,?) ON CONFLICT(scope, norm) DO UPDATE "
                "SET approved = CASE WHEN excluded.approved > entries.approved "
                "THEN excluded.approved ELSE entries.approved END, "
                "expires = CASE WHEN excluded.expires > entries.expires "
                "THEN excluded.expires ELSE entries.expires END",
                (
                    *_row(entry),
                    norm,
                    json.dumps(_meaning_json(meaning), ensure_ascii=False),
                    None if vec is None else vec.astype(np.float16).tobytes(),
                ),
            )
            (stored,) = db.execute(
                "SELECT id FROM entries WHERE scope = ? AND norm = ?", (entry.scope, norm)
            ).fetchone()
            if stored == entry.id:
                db.executemany(
                    "INSERT INTO entry_chunks VALUES (?, ?)",
                    [(entry.id, c) for c in dict.fromkeys(entry.chunk_ids)],
                )
                if vec is not None:
                    tx.patches.append(lambda: self._remember(entry.scope, entry.id, vec, meaning))
            gone = self._shrink(db, max_entries)
            tx.patches.append(lambda: self._forget(gone))
        return str(stored)

    def touch(self, entry_id: str, now: float, tokens: int) -> None:
        """A hit: counts, recency for LRU, and the tokens it saved."""
        with self._write(bump=False) as tx:
            tx.db.execute(
                "UPDATE entries SET hits = hits + 1, last_used = ? WHERE id = ?", (now, entry_id)
            )
            _count(tx.db, "tokens_saved", tokens)

    def count(self, name: str, n: float = 1) -> None:
        with self._write(bump=False) as tx:
            _count(tx.db, name, n)

    def approve(self, entry_id: str) -> bool:
        with self._write() as tx:  # the vectors stay as they are
            done = tx.db.execute(
                "UPDATE entries SET approved = 1, expires = ? WHERE id = ?", (NEVER, entry_id)
            ).rowcount
        return bool(done)

    def delete(self, entry_ids: Iterable[str]) -> int:
        ids = [(i,) for i in entry_ids]
        if not ids:
            return 0
        with self._write() as tx:
            tx.patches.append(lambda: self._forget([i for (i,) in ids]))
            return sum(tx.db.execute("DELETE FROM entries WHERE id = ?", i).rowcount for i in ids)

    def delete_where(self, collection: str = "", expired_before: float | None = None) -> int:
        sql, args = "DELETE FROM entries WHERE 1=1", list[object]()
        if collection:
            sql, args = sql + " AND collection = ?", [collection]
        if expired_before is not None:
            sql, args = sql + " AND expires <= ?", [*args, expired_before]
        with self._write() as tx:
            tx.patches.append(self._scopes.clear)  # rare: reload what is asked for next
            return tx.db.execute(sql, args).rowcount

    def dead_entries(
        self, collection: str, alive: Callable[[Sequence[str]], set[str]]
    ) -> list[str]:
        """Entries of a collection citing a chunk that `alive` no longer knows."""
        rows = self._db.rows(
            "SELECT e.id, c.chunk_id FROM entries e JOIN entry_chunks c ON c.entry_id = e.id "
            "WHERE e.collection = ?",
            (collection,),
        )
        living = alive(sorted({str(c) for _, c in rows}))
        return sorted({str(e) for e, c in rows if c not in living})

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _write(self, bump: bool = True) -> Iterator[_Tx]:
        """A write transaction that also bumps the version other processes watch. When no
        other process wrote since our scopes were loaded, they are patched in place
        (`tx.patches`, run after the commit) instead of being read again; else they are
        reloaded on the next lookup."""
        with self._lock:
            with self._db.transaction() as db:
                tx = _Tx(db)
                before = _version(db) if bump else 0.0
                yield tx
                if bump:
                    _count(db, "version", 1)
            if not bump:
                return
            if before == self._seen_version:
                self._seen_version = before + 1
                for patch in tx.patches:
                    patch()
            else:
                self._scopes.clear()

    def _shrink(self, db: Connection, max_entries: int) -> list[str]:
        """LRU: over the limit, the least recently used go first, approved ones last."""
        (n,) = db.execute("SELECT count(*) FROM entries").fetchone()
        if n <= max_entries:
            return []
        gone = [
            str(r[0])
            for r in db.execute(
                "SELECT id FROM entries ORDER BY approved, last_used LIMIT ?", (n - max_entries,)
            ).fetchall()
        ]
        db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in gone])
        return gone

    def _refresh(self) -> None:
        """Forget the in-memory scopes when any process has written since they were loaded."""
        rows = self._db.rows("SELECT value FROM counters WHERE name = 'version'")
        version = float(rows[0][0]) if rows else 0.0
        if version != self._seen_version:
            self._scopes.clear()
            self._seen_version = version

    def _load_scope(self, scope: str) -> _ScopeIndex:
        ids: list[str] = []
        blobs: list[bytes] = []
        meanings: list[Meaning] = []
        for entry_id, blob, meaning in self._db.rows(
            "SELECT id, vec, meaning FROM entries WHERE scope = ? AND vec IS NOT NULL "
            "AND expires > ?",
            (scope, time.time()),
        ):
            ids.append(str(entry_id))
            blobs.append(bytes(blob))
            meanings.append(_meaning_from(json.loads(meaning)))
        vecs = (
            np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1)
            if blobs
            else np.zeros((0, 1), dtype=np.float16)
        ).astype(np.float32)
        index = _ScopeIndex(ids, vecs, meanings)
        self._scopes[scope] = index
        return index


def open_postgres(url: str, pool_size: int, timeout_s: float) -> CacheStore:
    """The cache in the `dari_cache` schema of the PostgreSQL server at `url`."""
    from dari.db.postgres import PostgresDatabase

    return CacheStore(PostgresDatabase(url, pool_size, timeout_s, schema=PG_SCHEMA))


def _prepare_file(path: Path) -> str:
    """A SQLite cache file that is unreadable or of another schema is moved aside (returns why);
    the store then starts an empty one in its place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    why = ""
    try:
        db = sqlite3.connect(path)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                why = f"it was written by cache schema {version}, not {SCHEMA_VERSION}"
            elif tables:
                db.execute("SELECT count(*) FROM entries").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:  # not a database, or a broken one
        why = f"the file is unreadable ({exc})"
    if not why:
        return ""
    aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.replace(Path(str(aside) + suffix))
    return f"{why}; moved to {aside.name} and started empty"


@dataclass
class _Tx:
    db: Connection
    patches: list[Callable[[], None]] = field(default_factory=list)


def _version(db: Connection) -> float:
    row = db.execute("SELECT value FROM counters WHERE name = 'version'").fetchone()
    return float(row[0]) if row else 0.0


def _count(db: Connection, name: str, n: float) -> None:
    db.execute(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
        "SET value = counters.value + ?",
        (name, n, n),
    )


_COLUMNS = (
    "id, scope, collection, question, lang, answer, citations, trace_id, tokens, approved, "
    "created, last_used, expires, hits"
)


def _row(e: Entry) -> tuple[object, ...]:
    return (
        e.id,
        e.scope,
        e.collection,
        e.question,
        e.lang,
        e.answer,
        json.dumps(list(e.citations), ensure_ascii=False),
        e.trace_id,
        e.tokens,
        int(e.approved),
        e.created,
        e.last_used,
        e.expires,
        e.hits,
    )


def _entry(row: Sequence[object]) -> Entry:
    (eid, scope, coll, q, lang, answer, cites, trace, tokens, appr, created, used, exp, hits) = row
    return Entry(
        str(eid),
        str(scope),
        str(coll),
        str(q),
        str(lang),
        str(answer),
        tuple(json.loads(str(cites))),
        str(trace),
        int(tokens),  # type: ignore[call-overload]
        bool(appr),
        float(created),  # type: ignore[arg-type]
        float(used),  # type: ignore[arg-type]
        float(exp),  # type: ignore[arg-type]
        int(hits),  # type: ignore[call-overload]
    )


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def _meaning_json(m: Meaning) -> dict[str, object]:
    return {
        "lang": m.lang,
        "content": list(m.content),
        "numbers": list(m.numbers),
        "negations": m.negations,
        "entities": sorted(m.entities),
        "directions": [list(d) for d in m.directions],
        "roles": [list(r) for r in m.roles],
    }


def _meaning_from(d: dict[str, Any]) -> Meaning:
    return Meaning(
        str(d["lang"]),
        tuple(d["content"]),
        tuple(d["numbers"]),
        int(d["negations"]),
        frozenset(d["entities"]),
        tuple((str(a), int(s)) for a, s in d["directions"]),
        tuple((str(w), str(r)) for w, r in d["roles"]),
    )

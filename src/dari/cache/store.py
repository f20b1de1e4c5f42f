"""The answer cache on disk: one SQLite file apart from the store, since it is derived data that
can always be thrown away. A corrupt file, or one written by another schema, is moved aside and
rebuilt empty instead of failing a question.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dari.cache.meaning import Meaning

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries(
  id TEXT PRIMARY KEY, scope TEXT NOT NULL, collection TEXT NOT NULL, norm TEXT NOT NULL,
  question TEXT NOT NULL, lang TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL,
  trace_id TEXT NOT NULL, meaning TEXT NOT NULL, vec BLOB, tokens INTEGER NOT NULL,
  approved INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, last_used REAL NOT NULL,
  expires REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0, UNIQUE(scope, norm));
CREATE INDEX IF NOT EXISTS entries_by_trace ON entries(trace_id);
CREATE INDEX IF NOT EXISTS entries_by_use ON entries(approved, last_used);
CREATE TABLE IF NOT EXISTS entry_chunks(
  entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE, chunk_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entry_chunks_by_chunk ON entry_chunks(chunk_id);
CREATE INDEX IF NOT EXISTS entry_chunks_by_entry ON entry_chunks(entry_id);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value REAL NOT NULL);
"""
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
    """Entries keyed by (scope, normalised question), their cited chunks, hit counters."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.rebuilt = ""  # why the file was rebuilt on open, if it was
        self._db = self._open()

    # -- opening -----------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:  # not a database, or a broken one
            return self._rebuild(f"the file is unreadable ({exc})")
        except _OldSchema as exc:
            return self._rebuild(str(exc))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                raise _OldSchema(f"it was written by cache schema {version}, not {SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM entries").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild(self, why: str) -> sqlite3.Connection:
        aside = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.replace(Path(str(aside) + suffix))
        self.rebuilt = f"{why}; moved to {aside.name} and started empty"
        log.warning("answer cache %s: %s", self.path, self.rebuilt)
        return self._connect()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reads -----------------------------------------------------------------------------
    def exact(self, scope: str, norm: str, now: float) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE scope = ? AND norm = ? AND expires > ?",
                (scope, norm, now),
            ).fetchone()
        return _entry(row) if row else None

    def get(self, entry_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE id = ?", (entry_id,)
            ).fetchone()
        return _entry(row) if row else None

    def entries(self, collection: str = "", limit: int = 50) -> list[Entry]:
        sql = f"SELECT {_COLUMNS} FROM entries"
        args: tuple[object, ...] = ()
        if collection:
            sql, args = sql + " WHERE collection = ?", (collection,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY last_used DESC LIMIT ?", (*args, limit))
            return [_entry(r) for r in rows.fetchall()]

    def by_trace(self, trace_id: str) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE trace_id = ?", (trace_id,)
            ).fetchall()
        return [_entry(r) for r in rows]

    def counters(self) -> dict[str, float]:
        with self._lock:
            return {str(k): float(v) for k, v in self._db.execute("SELECT * FROM counters")}

    def summary(self) -> list[tuple[str, int, int, int]]:
        """(collection, entries, approved, hits) per collection."""
        with self._lock:
            return [
                (str(c), int(n), int(a), int(h))
                for c, n, a, h in self._db.execute(
                    "SELECT collection, count(*), sum(approved), sum(hits) FROM entries "
                    "GROUP BY collection ORDER BY collection"
                )
            ]

    def size_bytes(self) -> int:
        return sum(
            p.stat().st_size for p in (self.path, Path(str(self.path) + "-wal")) if p.exists()
        )

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
        with self._lock, self._write() as tx:
            db = tx.db
            db.execute(
                f"INSERT INTO entries({_COLUMNS}, norm, meaning, vec) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?, ?,?,?) ON CONFLICT(scope, norm) DO UPDATE "
                "SET approved = max(approved, excluded.approved), "
                "expires = max(expires, excluded.expires)",
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
        with self._lock, self._write(bump=False) as tx:
            tx.db.execute(
                "UPDATE entries SET hits = hits + 1, last_used = ? WHERE id = ?", (now, entry_id)
            )
            _count(tx.db, "tokens_saved", tokens)

    def count(self, name: str, n: float = 1) -> None:
        with self._lock, self._write(bump=False) as tx:
            _count(tx.db, name, n)

    def approve(self, entry_id: str) -> bool:
        with self._lock, self._write() as tx:  # the vectors stay as they are
            done = tx.db.execute(
                "UPDATE entries SET approved = 1, expires = ? WHERE id = ?", (NEVER, entry_id)
            ).rowcount
        return bool(done)

    def delete(self, entry_ids: Iterable[str]) -> int:
        ids = [(i,) for i in entry_ids]
        if not ids:
            return 0
        with self._lock, self._write() as tx:
            tx.patches.append(lambda: self._forget([i for (i,) in ids]))
            return sum(tx.db.execute("DELETE FROM entries WHERE id = ?", i).rowcount for i in ids)

    def delete_where(self, collection: str = "", expired_before: float | None = None) -> int:
        sql, args = "DELETE FROM entries WHERE 1=1", list[object]()
        if collection:
            sql, args = sql + " AND collection = ?", [collection]
        if expired_before is not None:
            sql, args = sql + " AND expires <= ?", [*args, expired_before]
        with self._lock, self._write() as tx:
            tx.patches.append(self._scopes.clear)  # rare: reload what is asked for next
            return tx.db.execute(sql, args).rowcount

    def dead_entries(
        self, collection: str, alive: Callable[[Sequence[str]], set[str]]
    ) -> list[str]:
        """Entries of a collection citing a chunk that `alive` no longer knows."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.id, c.chunk_id FROM entries e JOIN entry_chunks c ON c.entry_id = e.id "
                "WHERE e.collection = ?",
                (collection,),
            ).fetchall()
        living = alive(sorted({str(c) for _, c in rows}))
        return sorted({str(e) for e, c in rows if c not in living})

    # -- internals -------------------------------------------------------------------------
    def _write(self, bump: bool = True) -> _Tx:
        return _Tx(self, bump)

    def _shrink(self, db: sqlite3.Connection, max_entries: int) -> list[str]:
        """LRU: over the limit, the least recently used go first, approved ones last."""
        (n,) = db.execute("SELECT count(*) FROM entries").fetchone()
        if n <= max_entries:
            return []
        gone = [
            str(r[0])
            for r in db.execute(
                "SELECT id FROM entries ORDER BY approved, last_used LIMIT ?", (n - max_entries,)
            )
        ]
        db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in gone])
        return gone

    def _refresh(self) -> None:
        """Forget the in-memory scopes when any process has written since they were loaded."""
        version = _version(self._db)
        if version != self._seen_version:
            self._scopes.clear()
            self._seen_version = version

    def _load_scope(self, scope: str) -> _ScopeIndex:
        ids: list[str] = []
        blobs: list[bytes] = []
        meanings: list[Meaning] = []
        for entry_id, blob, meaning in self._db.execute(
            "SELECT id, vec, meaning FROM entries WHERE scope = ? AND vec IS NOT NULL "
            "AND expires > ?",
            (scope, time.time()),
        ):
            ids.append(str(entry_id))
            blobs.append(blob)
            meanings.append(_meaning_from(json.loads(meaning)))
        vecs = (
            np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1)
            if blobs
            else np.zeros((0, 1), dtype=np.float16)
        ).astype(np.float32)
        index = _ScopeIndex(ids, vecs, meanings)
        self._scopes[scope] = index
        return index


class _OldSchema(Exception):
    pass


class _Tx:
    """A write transaction that also bumps the version other processes watch. When no other
    process wrote since our scopes were loaded, they are patched in place (`patches`, run after
    the commit) instead of being read again; else they are reloaded on the next lookup."""

    def __init__(self, store: CacheStore, bump: bool) -> None:
        self._store, self._bump = store, bump
        self.db = store._db
        self.patches: list[Callable[[], None]] = []
        self._before = 0.0

    def __enter__(self) -> _Tx:
        self.db.execute("BEGIN IMMEDIATE")
        if self._bump:
            self._before = _version(self.db)
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is not None:
            self.db.execute("ROLLBACK")
            return
        if self._bump:
            _count(self.db, "version", 1)
        self.db.execute("COMMIT")
        if not self._bump:
            return
        store = self._store
        if self._before == store._seen_version:
            store._seen_version = self._before + 1
            for patch in self.patches:
                patch()
        else:
            store._scopes.clear()


def _version(db: sqlite3.Connection) -> float:
    row = db.execute("SELECT value FROM counters WHERE name = 'version'").fetchone()
    return float(row[0]) if row else 0.0


def _count(db: sqlite3.Connection, name: str, n: float) -> None:
    db.execute(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
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

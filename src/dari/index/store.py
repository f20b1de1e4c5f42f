"""SQLite store (WAL): collections, files, documents, sections, chunks and the embedding cache.

SQLite is the source of truth; the BM25 and vector indexes are derived from it and can always be
rebuilt. A file's documents are written in one transaction as `pending`, the derived indexes are
committed, then the file flips to `ready` (see `dari.ingest.ingestor`). Readers only see `ready`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dari.errors import StoreError, UnknownCollection
from dari.index.filters import meta_tokens
from dari.types import Chunk, Document, Section

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections(
  name TEXT PRIMARY KEY, embedder TEXT NOT NULL, dim INTEGER NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files(
  collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
  path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
  replaces TEXT NOT NULL DEFAULT '[]',  -- doc ids a pending write will delete
  updated_at REAL NOT NULL, PRIMARY KEY (collection, path));
CREATE TABLE IF NOT EXISTS documents(
  id TEXT PRIMARY KEY, collection TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL,
  title TEXT NOT NULL, format TEXT NOT NULL, content_hash TEXT NOT NULL, lang TEXT NOT NULL,
  acl TEXT NOT NULL, metadata TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
  FOREIGN KEY (collection, path) REFERENCES files(collection, path) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS documents_by_path ON documents(collection, path);
CREATE TABLE IF NOT EXISTS sections(
  id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ordinal INTEGER NOT NULL, text TEXT NOT NULL, heading TEXT NOT NULL, page INTEGER,
  flags TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS sections_by_doc ON sections(doc_id);
CREATE TABLE IF NOT EXISTS chunks(
  id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  section_id TEXT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL, lang TEXT NOT NULL,
  emb_key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS embeddings(key TEXT PRIMARY KEY, vec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS traces(
  id TEXT PRIMARY KEY, collection TEXT NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trace_prompts(
  trace_id TEXT PRIMARY KEY REFERENCES traces(id) ON DELETE CASCADE,
  system TEXT NOT NULL, data TEXT NOT NULL);
"""


class IndexRow(NamedTuple):
    """A chunk as the BM25 index takes it."""

    chunk_id: str
    doc_id: str
    text: str
    acl: tuple[str, ...]
    meta: tuple[str, ...]


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    embedder: str
    dim: int
    generation: int
    files: int
    documents: int
    chunks: int


@dataclass(frozen=True)
class SourceRow:
    """What retrieval needs to know about a chunk: its parent section and its document."""

    chunk_id: str
    section_id: str
    doc_id: str
    chunk_text: str
    section_text: str
    heading: str
    page: int | None
    source: str
    title: str
    flags: str = ""


class Store:
    """The SQLite store under DARI_HOME. Each thread gets a connection of its own (the server
    answers in several threads; WAL lets them read while one writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()  # one write transaction at a time in this process
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(sections)")}
            if "flags" not in columns:  # stores made before the guards tagged sections
                self._db.execute("ALTER TABLE sections ADD COLUMN flags TEXT NOT NULL DEFAULT ''")
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the store at {path}: {exc}",
                "check that DARI_HOME is writable and the disk is not full",
            ) from exc

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back whole on any error (disk full included). Threads
        (the server's) take turns: a transaction holds the connection until it ends."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"the store is busy or unwritable: {exc}", "retry") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(
                    f"could not write to the store: {exc}",
                    "free disk space and run the same command again; nothing was half-written",
                ) from exc

    # -- collections -----------------------------------------------------------------------
    def collection_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM collections ORDER BY name")]

    def ensure_collection(self, name: str, embedder: str, dim: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO collections VALUES (?, ?, ?, 0, ?)",
                (name, embedder, dim, time.time()),
            )

    def generation(self, name: str) -> int:
        """The collection's write counter (cheap): derived indexes are stamped with it."""
        return int(self._collection_row(name)[3])

    def embedder_of(self, name: str) -> str:
        return str(self._collection_row(name)[1])

    def _collection_row(self, name: str) -> tuple[str, str, int, int]:
        row = self._db.execute(
            "SELECT name, embedder, dim, generation FROM collections WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise UnknownCollection(name, self.collection_names())
        return (str(row[0]), str(row[1]), int(row[2]), int(row[3]))

    def collection(self, name: str) -> CollectionInfo:
        row = self._collection_row(name)
        files, docs, chunks = self._db.execute(
            """SELECT (SELECT count(*) FROM files WHERE collection = :c AND status = 'ready'),
                      (SELECT count(*) FROM documents WHERE collection = :c AND status = 'ready'),
                      (SELECT count(*) FROM chunks JOIN documents d ON d.id = chunks.doc_id
                        WHERE d.collection = :c AND d.status = 'ready')""",
            {"c": name},
        ).fetchone()
        return CollectionInfo(row[0], row[1], row[2], row[3], files, docs, chunks)

    def delete_collection(self, name: str) -> None:
        self.collection(name)  # raises UnknownCollection
        with self.transaction() as db:
            db.execute(
                "DELETE FROM documents WHERE collection = ?", (name,)
            )  # cascades to sections and chunks
            db.execute("DELETE FROM files WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))

    def bump_generation(self, db: sqlite3.Connection, name: str) -> None:
        db.execute("UPDATE collections SET generation = generation + 1 WHERE name = ?", (name,))

    # -- files -----------------------------------------------------------------------------
    def file_state(self, collection: str, path: str) -> tuple[str, str] | None:
        """(sha256, status) of a file, or None if it was never ingested."""
        row = self._db.execute(
            "SELECT sha256, status FROM files WHERE collection = ? AND path = ?", (collection, path)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def file_paths(self, collection: str) -> list[str]:
        return [
            r[0]
            for r in self._db.execute("SELECT path FROM files WHERE collection = ?", (collection,))
        ]

    def pending_files(self, collection: str) -> list[tuple[str, list[str], list[str]]]:
        """Files whose write was interrupted: (path, new pending doc ids, doc ids to replace)."""
        out = []
        for path, replaces in self._db.execute(
            "SELECT path, replaces FROM files WHERE collection = ? AND status = 'pending'",
            (collection,),
        ).fetchall():
            new = self._doc_ids(collection, path, "pending")
            out.append((path, new, json.loads(replaces)))
        return out

    def _doc_ids(self, collection: str, path: str, status: str | None = None) -> list[str]:
        sql = "SELECT id FROM documents WHERE collection = ? AND path = ?"
        args: tuple[str, ...] = (collection, path)
        if status:
            sql += " AND status = ?"
            args = (*args, status)
        return [r[0] for r in self._db.execute(sql, args)]

    def stage_file(
        self,
        collection: str,
        path: str,
        sha256: str,
        size: int,
        docs: Sequence[tuple[str, Document, Sequence[Section], Sequence[Chunk], Sequence[str]]],
    ) -> list[str]:
        """Write a file's new documents as `pending` in one transaction; returns the ids of the
        documents they replace (still `ready` and visible until `finish_file`)."""
        with self.transaction() as db:
            old = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM documents WHERE collection = ? AND path = ? "
                    "AND status = 'ready'",
                    (collection, path),
                )
            ]
            db.execute(
                "DELETE FROM documents WHERE collection = ? AND path = ? AND status = 'pending'",
                (collection, path),
            )
            db.execute(
                """INSERT INTO files VALUES (?, ?, ?, ?, 'pending', ?, ?)
                   ON CONFLICT(collection, path) DO UPDATE SET sha256 = excluded.sha256,
                   size = excluded.size, status = 'pending', replaces = excluded.replaces,
                   updated_at = excluded.updated_at""",
                (collection, path, sha256, size, json.dumps(old), time.time()),
            )
            for doc_id, doc, sections, chunks, emb_keys in docs:
                db.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (
                        doc_id,
                        collection,
                        path,
                        doc.source,
                        doc.title,
                        doc.format,
                        doc.content_hash,
                        doc.lang,
                        json.dumps(list(doc.acl)),
                        json.dumps(dict(doc.metadata), ensure_ascii=False),
                    ),
                )
                db.executemany(
                    "INSERT INTO sections(id, doc_id, ordinal, text, heading, page, flags) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (s.id, doc_id, s.ordinal, s.text, s.heading, s.page, s.flags)
                        for s in sections
                    ],
                )
                db.executemany(
                    "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (c.id, doc_id, c.section_id, c.ordinal, c.text, c.lang, k)
                        for c, k in zip(chunks, emb_keys, strict=True)
                    ],
                )
        return old

    def finish_files(self, collection: str, paths: Iterable[str]) -> None:
        """Flip staged files to `ready`: their replaced documents go, the new ones appear."""
        with self.transaction() as db:
            for path in paths:
                (replaces,) = db.execute(
                    "SELECT replaces FROM files WHERE collection = ? AND path = ?",
                    (collection, path),
                ).fetchone()
                db.executemany(
                    "DELETE FROM documents WHERE id = ?", [(i,) for i in json.loads(replaces)]
                )
                db.execute(
                    "UPDATE documents SET status = 'ready' WHERE collection = ? AND path = ?",
                    (collection, path),
                )
                db.execute(
                    "UPDATE files SET status = 'ready', replaces = '[]' "
                    "WHERE collection = ? AND path = ?",
                    (collection, path),
                )
            self.bump_generation(db, collection)

    def remove_files(self, collection: str, paths: Iterable[str]) -> list[str]:
        """Delete files and everything derived from them; returns the removed document ids."""
        removed: list[str] = []
        with self.transaction() as db:
            for path in paths:
                removed.extend(self._doc_ids(collection, path))
                db.execute(
                    "DELETE FROM documents WHERE collection = ? AND path = ?", (collection, path)
                )
                db.execute(
                    "DELETE FROM files WHERE collection = ? AND path = ?", (collection, path)
                )
            self.bump_generation(db, collection)
        return removed

    # -- chunks and embeddings -------------------------------------------------------------
    def chunks_for_docs(self, doc_ids: Sequence[str]) -> list[IndexRow]:
        """Rows to (re)index for the given documents."""
        rows: list[IndexRow] = []
        for doc_id in doc_ids:
            for cid, text, acl, fmt, lang, meta in self._db.execute(
                "SELECT c.id, c.text, d.acl, d.format, d.lang, d.metadata FROM chunks c "
                "JOIN documents d ON d.id = c.doc_id WHERE c.doc_id = ? ORDER BY c.ordinal",
                (doc_id,),
            ):
                tokens = meta_tokens(fmt, lang, json.loads(meta))
                rows.append(IndexRow(cid, doc_id, text, tuple(json.loads(acl)), tokens))
        return rows

    def external_ids(self, collection: str) -> dict[str, str]:
        """Document source → the id its row or sidecar gave it (metadata `id`), else the source."""
        return {
            source: str(json.loads(meta).get("id") or source)
            for source, meta in self._db.execute(
                "SELECT source, metadata FROM documents WHERE collection = ? AND status = 'ready'",
                (collection,),
            )
        }

    def ready_doc_ids(self, collection: str) -> list[str]:
        return [
            r[0]
            for r in self._db.execute(
                "SELECT id FROM documents WHERE collection = ? AND status = 'ready'", (collection,)
            )
        ]

    def _rows_in(self, sql: str, ids: Sequence[str]) -> Iterator[Any]:
        """Rows of `sql`, whose `{marks}` stands for the ids, asked 500 ids at a time (SQLite's
        limit on parameters)."""
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            yield from self._db.execute(sql.format(marks=",".join("?" * len(part))), part)

    def cached_embeddings(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {
            key: np.frombuffer(blob, dtype=np.float16).astype(np.float32)
            for key, blob in self._rows_in(
                "SELECT key, vec FROM embeddings WHERE key IN ({marks})", keys
            )
        }

    def put_embeddings(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO embeddings VALUES (?, ?)",
                [(k, v.astype(np.float16).tobytes()) for k, v in items],
            )

    def ready_vectors(
        self, collection: str
    ) -> tuple[list[str], list[tuple[tuple[str, ...], tuple[str, ...]]], np.ndarray]:
        """All indexed chunk ids of a collection, their (ACL tags, metadata tokens), and their
        embeddings."""
        ids: list[str] = []
        tags: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        blobs: list[bytes] = []
        for cid, acl, fmt, lang, meta, blob in self._db.execute(
            "SELECT c.id, d.acl, d.format, d.lang, d.metadata, e.vec FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id JOIN embeddings e ON e.key = c.emb_key "
            "WHERE d.collection = ? AND d.status = 'ready' ORDER BY c.rowid",
            (collection,),
        ):
            ids.append(cid)
            tags.append((tuple(json.loads(acl)), meta_tokens(fmt, lang, json.loads(meta))))
            blobs.append(blob)
        if not blobs:
            return ids, tags, np.zeros((0, 0), dtype=np.float32)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1)
        return ids, tags, matrix.astype(np.float32)

    def existing_chunks(self, chunk_ids: Sequence[str]) -> set[str]:
        """Which of these chunks are still there (in a `ready` document)."""
        return {
            r[0]
            for r in self._rows_in(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id "
                "WHERE c.id IN ({marks}) AND d.status = 'ready'",
                chunk_ids,
            )
        }

    def source_rows(self, chunk_ids: Sequence[str]) -> dict[str, SourceRow]:
        """Chunk → parent section → document, for `ready` documents only."""
        return {
            row[0]: SourceRow(*row)
            for row in self._rows_in(
                """SELECT c.id, s.id, d.id, c.text, s.text, s.heading, s.page, d.source, d.title,
                s.flags FROM chunks c JOIN sections s ON s.id = c.section_id
                JOIN documents d ON d.id = c.doc_id
                WHERE c.id IN ({marks}) AND d.status = 'ready'""",
                chunk_ids,
            )
        }

    def save_trace(
        self,
        trace_id: str,
        collection: str,
        body: dict[str, object],
        prompt: tuple[str, str] | None = None,
    ) -> None:
        """A trace, and the prompt the model saw (system message, last user message) apart."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO traces VALUES (?, ?, ?, ?)",
                (trace_id, collection, time.time(), json.dumps(body, ensure_ascii=False)),
            )
            if prompt is not None:
                db.execute("INSERT INTO trace_prompts VALUES (?, ?, ?)", (trace_id, *prompt))

    def trace_prompt(self, trace_id: str) -> tuple[str, str] | None:
        """(system message, last user message) of a trace's generation, if it had one."""
        row = self._db.execute(
            "SELECT system, data FROM trace_prompts WHERE trace_id = ?", (trace_id,)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def rows(
        self, sql: str, args: Sequence[object] | dict[str, object] = ()
    ) -> list[tuple[object, ...]]:
        """A read-only query for modules that keep their own tables in this store."""
        with self._lock:
            return [tuple(r) for r in self._db.execute(sql, args)]

    def trace(self, trace_id: str) -> dict[str, object] | None:
        row = self._db.execute("SELECT body FROM traces WHERE id = ?", (trace_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def sizes(self) -> dict[str, int]:
        return {
            p.name: p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        }

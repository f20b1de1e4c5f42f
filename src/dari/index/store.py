"""The store: collections, files, documents, sections, chunks, the embedding cache and traces.

The store is the source of truth; the BM25 and vector indexes are derived from it and can always
be rebuilt. A file's documents are written in one transaction as `pending`, the derived indexes
are committed, then the file flips to `ready` (see `dari.ingest.ingestor`). Readers only see
`ready`. It lives in SQLite under DARI_HOME (the embedded default) or in PostgreSQL (shared by
replicas): `dari.db` holds the engines and the migrations that create every table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dari.db.base import Args, Connection, Database
from dari.db.schema import migrate
from dari.db.sqlite import SqliteDatabase
from dari.errors import UnknownCollection
from dari.index.filters import meta_tokens
from dari.types import Chunk, Document, Section

CHANGES_KEPT = 1000  # generations of the change log kept; an index further behind is rebuilt


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
    """dari's tables in one database: SQLite at `where` when it is a path (each thread its own
    connection), or the `Database` given (PostgreSQL, see `dari.db.postgres`). Opening applies
    the migrations the database has not had."""

    def __init__(self, where: Path | Database) -> None:
        self.db: Database = SqliteDatabase(where) if isinstance(where, Path) else where
        self.path = where if isinstance(where, Path) else None
        migrate(self.db)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction; rolled back whole on any error (disk full included)."""
        return self.db.transaction()

    def rows(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        """A read, all rows fetched (also for modules that keep their own tables here)."""
        return self.db.rows(sql, args)

    def _one(self, sql: str, args: Args = ()) -> tuple[Any, ...] | None:
        rows = self.db.rows(sql, args)
        return rows[0] if rows else None

    # -- collections -----------------------------------------------------------------------
    def collection_names(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT name FROM collections ORDER BY name")]

    def ensure_collection(self, name: str, embedder: str, dim: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO collections(name, embedder, dim, generation, created_at) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT (name) DO NOTHING",
                (name, embedder, dim, time.time()),
            )

    def generation(self, name: str) -> int:
        """The collection's write counter (cheap): derived indexes are stamped with it."""
        return int(self._collection_row(name)[3])

    def embedder_of(self, name: str) -> str:
        return str(self._collection_row(name)[1])

    def _collection_row(self, name: str) -> tuple[str, str, int, int]:
        row = self._one(
            "SELECT name, embedder, dim, generation FROM collections WHERE name = ?", (name,)
        )
        if row is None:
            raise UnknownCollection(name, self.collection_names())
        return (str(row[0]), str(row[1]), int(row[2]), int(row[3]))

    def collection(self, name: str) -> CollectionInfo:
        row = self._collection_row(name)
        files, docs, chunks = self.rows(
            """SELECT (SELECT count(*) FROM files WHERE collection = :c AND status = 'ready'),
                      (SELECT count(*) FROM documents WHERE collection = :c AND status = 'ready'),
                      (SELECT count(*) FROM chunks JOIN documents d ON d.id = chunks.doc_id
                        WHERE d.collection = :c AND d.status = 'ready')""",
            {"c": name},
        )[0]
        return CollectionInfo(row[0], row[1], row[2], row[3], files, docs, chunks)

    def delete_collection(self, name: str) -> None:
        self.collection(name)  # raises UnknownCollection
        with self.transaction() as db:
            db.execute(
                "DELETE FROM documents WHERE collection = ?", (name,)
            )  # cascades to sections and chunks
            db.execute("DELETE FROM files WHERE collection = ?", (name,))
            db.execute("DELETE FROM changes WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))

    def bump_generation(self, db: Connection, name: str, doc_ids: Iterable[str] = ()) -> int:
        """Move the collection's write counter on, logging the documents that came or went in
        this step (`changes_since` reads the log for indexes that keep themselves in step)."""
        (generation,) = db.execute(
            "UPDATE collections SET generation = generation + 1 WHERE name = ? "
            "RETURNING generation",
            (name,),
        ).fetchone()
        db.executemany(
            "INSERT INTO changes(collection, generation, doc_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(name, generation, doc_id) for doc_id in ("", *dict.fromkeys(doc_ids))],
        )  # "" marks the generation itself, so that a step that touched nothing is no gap
        if generation % 100 == 0:  # the log keeps the last CHANGES_KEPT generations
            db.execute(
                "DELETE FROM changes WHERE collection = ? AND generation <= ?",
                (name, generation - CHANGES_KEPT),
            )
        return int(generation)

    def changes_since(self, name: str, generation: int) -> list[str] | None:
        """Documents added, replaced or removed after `generation` (each once); None when the log
        does not reach back that far (an index that old is rebuilt whole)."""
        rows = self.rows(
            "SELECT generation, doc_id FROM changes WHERE collection = ? AND generation > ? "
            "ORDER BY generation",
            (name, generation),
        )
        (first,) = self._one(  # type: ignore[misc]
            "SELECT min(generation) FROM changes WHERE collection = ?", (name,)
        )
        if generation < self.generation(name) and (first is None or first > generation + 1):
            return None
        return list(dict.fromkeys(doc_id for _, doc_id in rows if doc_id))

    def created_at(self, name: str) -> float:
        """When the collection was made: tells a collection apart from an earlier one of the
        same name (a derived index of the old one must not be reused)."""
        row = self._one("SELECT created_at FROM collections WHERE name = ?", (name,))
        if row is None:
            raise UnknownCollection(name, self.collection_names())
        return float(row[0])

    # -- files -----------------------------------------------------------------------------
    def file_state(self, collection: str, path: str) -> tuple[str, str] | None:
        """(sha256, status) of a file, or None if it was never ingested."""
        row = self._one(
            "SELECT sha256, status FROM files WHERE collection = ? AND path = ?", (collection, path)
        )
        return (row[0], row[1]) if row else None

    def file_paths(self, collection: str) -> list[str]:
        return [
            r[0] for r in self.rows("SELECT path FROM files WHERE collection = ?", (collection,))
        ]

    def pending_files(self, collection: str) -> list[tuple[str, list[str], list[str]]]:
        """Files whose write was interrupted: (path, new pending doc ids, doc ids to replace)."""
        out = []
        for path, replaces in self.rows(
            "SELECT path, replaces FROM files WHERE collection = ? AND status = 'pending'",
            (collection,),
        ):
            new = self._doc_ids(collection, path, "pending")
            out.append((path, new, json.loads(replaces)))
        return out

    def _doc_ids(self, collection: str, path: str, status: str | None = None) -> list[str]:
        sql = "SELECT id FROM documents WHERE collection = ? AND path = ?"
        args: tuple[str, ...] = (collection, path)
        if status:
            sql += " AND status = ?"
            args = (*args, status)
        return [r[0] for r in self.rows(sql, args)]

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
                """INSERT INTO files(collection, path, sha256, size, status, replaces, updated_at)
                   VALUES (?, ?, ?, ?, 'pending', ?, ?)
                   ON CONFLICT(collection, path) DO UPDATE SET sha256 = excluded.sha256,
                   size = excluded.size, status = 'pending', replaces = excluded.replaces,
                   updated_at = excluded.updated_at""",
                (collection, path, sha256, size, json.dumps(old), time.time()),
            )
            for doc_id, doc, sections, chunks, emb_keys in docs:
                db.execute(
                    "INSERT INTO documents(id, collection, path, source, title, format, "
                    "content_hash, lang, acl, metadata, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
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
                    "INSERT INTO chunks(id, doc_id, section_id, ordinal, text, lang, emb_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (c.id, doc_id, c.section_id, c.ordinal, c.text, c.lang, k)
                        for c, k in zip(chunks, emb_keys, strict=True)
                    ],
                )
        return old

    def finish_files(self, collection: str, paths: Iterable[str]) -> None:
        """Flip staged files to `ready`: their replaced documents go, the new ones appear."""
        with self.transaction() as db:
            touched: list[str] = []
            for path in paths:
                (replaces,) = db.execute(
                    "SELECT replaces FROM files WHERE collection = ? AND path = ?",
                    (collection, path),
                ).fetchone()
                touched += json.loads(replaces)
                touched += [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM documents WHERE collection = ? AND path = ? "
                        "AND status = 'pending'",
                        (collection, path),
                    )
                ]
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
            self.bump_generation(db, collection, touched)

    def remove_files(self, collection: str, paths: Iterable[str]) -> list[str]:
        """Delete files and everything derived from them; returns the removed document ids."""
        removed: list[str] = []
        with self.transaction() as db:
            for path in paths:
                removed += [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM documents WHERE collection = ? AND path = ?",
                        (collection, path),
                    )
                ]
                db.execute(
                    "DELETE FROM documents WHERE collection = ? AND path = ?", (collection, path)
                )
                db.execute(
                    "DELETE FROM files WHERE collection = ? AND path = ?", (collection, path)
                )
            self.bump_generation(db, collection, removed)
        return removed

    # -- chunks and embeddings -------------------------------------------------------------
    def chunks_for_docs(self, doc_ids: Sequence[str]) -> list[IndexRow]:
        """Rows to (re)index for the given documents."""
        rows: list[IndexRow] = []
        for doc_id in doc_ids:
            for cid, text, acl, fmt, lang, meta in self.rows(
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
            for source, meta in self.rows(
                "SELECT source, metadata FROM documents WHERE collection = ? AND status = 'ready'",
                (collection,),
            )
        }

    def ready_among(self, doc_ids: Sequence[str]) -> set[str]:
        """Which of these documents are `ready` (the others are gone, or still being written)."""
        return {
            r[0]
            for r in self._rows_in(
                "SELECT id FROM documents WHERE id IN ({marks}) AND status = 'ready'", doc_ids
            )
        }

    def ready_doc_ids(self, collection: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT id FROM documents WHERE collection = ? AND status = 'ready'", (collection,)
            )
        ]

    def _rows_in(self, sql: str, ids: Sequence[str]) -> Iterator[Any]:
        """Rows of `sql`, whose `{marks}` stands for the ids, asked 500 ids at a time (SQLite's
        limit on parameters)."""
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            yield from self.rows(sql.format(marks=",".join("?" * len(part))), part)

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
                "INSERT INTO embeddings(key, vec) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
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
        for cid, acl, fmt, lang, meta, blob in self.rows(
            "SELECT c.id, d.acl, d.format, d.lang, d.metadata, e.vec FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id JOIN embeddings e ON e.key = c.emb_key "
            f"WHERE d.collection = ? AND d.status = 'ready' ORDER BY c.{self.db.order_column}",
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
                "INSERT INTO traces(id, collection, created_at, body) VALUES (?, ?, ?, ?)",
                (trace_id, collection, time.time(), json.dumps(body, ensure_ascii=False)),
            )
            if prompt is not None:
                db.execute(
                    "INSERT INTO trace_prompts(trace_id, system, data) VALUES (?, ?, ?)",
                    (trace_id, *prompt),
                )

    def trace_prompt(self, trace_id: str) -> tuple[str, str] | None:
        """(system message, last user message) of a trace's generation, if it had one."""
        row = self._one("SELECT system, data FROM trace_prompts WHERE trace_id = ?", (trace_id,))
        return (str(row[0]), str(row[1])) if row else None

    def trace(self, trace_id: str) -> dict[str, object] | None:
        row = self._one("SELECT body FROM traces WHERE id = ?", (trace_id,))
        return json.loads(row[0]) if row else None

    def sizes(self) -> dict[str, int]:
        return self.db.sizes()

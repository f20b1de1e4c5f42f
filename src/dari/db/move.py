"""`dari migrate`: move an embedded (SQLite) store into PostgreSQL without losing a row.

Everything is copied in one transaction on the target: an interruption (Ctrl-C, a crash, the
server going away) leaves the target as it was, and the same command simply runs again. Before
committing, the copy is counted against the source per collection; any difference rolls it back.
Derived indexes are not copied: BM25 and vectors are rebuilt from the target on first use
(vectors.backend and each replica's BM25 index follow the store's generation).

Collections already in the target are refused unless `replace` (then their files and documents
are emptied first, in the same transaction; their traces and feedback stay). Other rows merge:
traces and keys by id, prompt versions by name and number (the same number with other parts is
refused: versions never change), prompt choices already set on the target are kept, feedback is
matched by (trace, kind, time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dari.db.base import Connection
from dari.errors import Conflict, InputError, StoreError, UnknownCollection
from dari.index.store import Store

BATCH = 2000
Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in all)
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    scope: str  # SQL (source side) choosing the rows of the chosen collections; "" = all rows
    conflict: str  # the ON CONFLICT target, or "" to check for a same row (feedback)


_IN_DOCS = "doc_id IN (SELECT id FROM documents WHERE collection IN ({c}))"
TABLES = (
    Table("collections", ("name", "embedder", "dim", "generation", "created_at"),
          "name IN ({c})", "(name)"),
    Table("files", ("collection", "path", "sha256", "size", "status", "replaces", "updated_at"),
          "collection IN ({c})", "(collection, path)"),
    Table("documents", ("id", "collection", "path", "source", "title", "format", "content_hash",
                        "lang", "acl", "metadata", "status"), "collection IN ({c})", "(id)"),
    Table("sections", ("id", "doc_id", "ordinal", "text", "heading", "page", "flags"),
          _IN_DOCS, "(id)"),
    Table("chunks", ("id", "doc_id", "section_id", "ordinal", "text", "lang", "emb_key"),
          _IN_DOCS, "(id)"),
    Table("embeddings", ("key", "vec"), "key IN (SELECT emb_key FROM chunks WHERE "
          + _IN_DOCS + ")", "(key)"),
    Table("traces", ("id", "collection", "created_at", "body"), "collection IN ({c})", "(id)"),
    Table("trace_prompts", ("trace_id", "system", "data"),
          "trace_id IN (SELECT id FROM traces WHERE collection IN ({c}))", "(trace_id)"),
    Table("feedback", ("trace_id", "kind", "thumb", "rating", "comment", "correction", "approved",
                       "created_at"),
          "trace_id IN (SELECT id FROM traces WHERE collection IN ({c}))", ""),
    Table("prompt_versions", ("name", "version", "parts", "sha256", "description", "based_on",
                              "created_at"), "", "(name, version)"),
    Table("prompt_choices", ("key", "value", "updated_at"), "", "(key)"),
    Table("api_keys", ("id", "name", "role", "collections", "acl", "hash", "created_at",
                       "revoked_at"), "", "(id)"),
)  # fmt: skip


@dataclass
class MoveReport:
    collections: list[str]
    rows: dict[str, int] = field(default_factory=dict)  # table → rows read from the source
    replaced: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "collections": self.collections,
            "rows": self.rows,
            "replaced": self.replaced,
            "seconds": round(self.seconds, 2),
        }


def _source_rows(source: Store, table: Table, names: Sequence[str]) -> Iterator[list[Row]]:
    """The source's rows of `table` in batches, in insertion order (chunks keep their order)."""
    where = table.scope.format(c=",".join("?" * len(names))) if table.scope else "1=1"
    args = list(names) if table.scope else []
    last = -1
    columns = ", ".join(table.columns)
    while True:
        rows = source.rows(
            f"SELECT rowid, {columns} FROM {table.name} WHERE rowid > ? AND ({where}) "
            f"ORDER BY rowid LIMIT {BATCH}",
            [last, *args],
        )
        if not rows:
            return
        last = int(rows[-1][0])
        yield [tuple(r[1:]) for r in rows]


def _count(source: Store, table: Table, names: Sequence[str]) -> int:
    where = table.scope.format(c=",".join("?" * len(names))) if table.scope else "1=1"
    args = list(names) if table.scope else []
    ((n,),) = source.rows(f"SELECT count(*) FROM {table.name} WHERE {where}", args)
    return int(n)


def _insert(db: Connection, table: Table, rows: list[Row]) -> None:
    columns = ", ".join(table.columns)
    marks = ", ".join("?" * len(table.columns))
    if table.conflict:
        db.executemany(
            f"INSERT INTO {table.name}({columns}) VALUES ({marks}) "
            f"ON CONFLICT {table.conflict} DO NOTHING",
            rows,
        )
        return
    for r in rows:  # feedback: its ids are the target's own; a row copied before is not again
        trace_id, kind, created_at = r[0], r[1], r[-1]
        found = db.execute(
            "SELECT 1 FROM feedback WHERE trace_id = ? AND kind = ? AND created_at = ?",
            (trace_id, kind, created_at),
        ).fetchone()
        if not found:
            db.execute(f"INSERT INTO {table.name}({columns}) VALUES ({marks})", r)


def _check_prompts(source: Store, db: Connection) -> None:
    for name, number, sha in source.rows("SELECT name, version, sha256 FROM prompt_versions"):
        found = db.execute(
            "SELECT sha256 FROM prompt_versions WHERE name = ? AND version = ?", (name, number)
        ).fetchone()
        if found and found[0] != sha:
            raise Conflict(
                f"prompt {name}@{number} exists in the target with other parts",
                "versions never change: save the source's as a new version first "
                "(dari prompt create), then migrate again",
            )


def _tally(store: Store | Connection, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Per collection: files, documents, sections, chunks, chunks with an embedding. (Traces
    merge by id with those the target already has, so their counts may rightly differ.)"""
    sql = """SELECT
      (SELECT count(*) FROM files WHERE collection = ?),
      (SELECT count(*) FROM documents WHERE collection = ?),
      (SELECT count(*) FROM sections s JOIN documents d ON d.id = s.doc_id WHERE d.collection = ?),
      (SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.collection = ?),
      (SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id
         JOIN embeddings e ON e.key = c.emb_key WHERE d.collection = ?)"""
    out = {}
    for name in names:
        if isinstance(store, Store):
            row = store.rows(sql, [name] * 5)[0]
        else:
            row = store.execute(sql, [name] * 5).fetchone()
        out[name] = tuple(int(v) for v in row)
    return out


def move(
    source: Store,
    target: Store,
    collections: Sequence[str] = (),
    replace: bool = False,
    progress: Progress | None = None,
) -> MoveReport:
    """Copy `collections` (all when empty) and the global rows from `source` into `target`, in
    one transaction on the target."""
    started = time.perf_counter()
    known = source.collection_names()
    names = list(dict.fromkeys(collections)) or known
    for name in names:
        if name not in known:
            raise UnknownCollection(name, known)
    if not names and not source.rows("SELECT count(*) FROM api_keys")[0][0]:
        raise InputError(
            f"nothing to migrate: the store at {source.db.where} has no collections or keys",
            "ingest into it first, or point DARI_HOME at the home you want to move",
        )
    report = MoveReport(names)
    existing = [n for n in names if n in target.collection_names()]
    if existing and not replace:
        raise Conflict(
            f"the target already has the collection(s) {', '.join(existing)}",
            "pass --replace to overwrite them with the source's, or --collection to choose others",
        )
    totals = {t.name: _count(source, t, names) for t in TABLES}
    expected = _tally(source, names)
    with target.transaction() as db:
        for name in existing:  # emptied inside the same transaction: all or nothing
            db.execute("DELETE FROM documents WHERE collection = ?", (name,))
            db.execute("DELETE FROM files WHERE collection = ?", (name,))
            db.execute("DELETE FROM changes WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))
            report.replaced.append(name)
        _check_prompts(source, db)
        for table in TABLES:
            done = 0
            for rows in _source_rows(source, table, names):
                _insert(db, table, rows)
                done += len(rows)
                if progress:
                    progress(table.name, done, totals[table.name])
            report.rows[table.name] = done
        copied = _tally(db, names)
        if copied != expected:
            wrong = [n for n in names if copied[n] != expected[n]]
            raise StoreError(
                f"the copy of {', '.join(wrong)} does not match the source "
                f"(files, documents, sections, chunks, embedded chunks: "
                f"{[expected[n] for n in wrong]} in the source, {[copied[n] for n in wrong]} "
                "copied); nothing was written",
                "a process may have written to the source during the copy: stop it and "
                "run the migration again",
            )
    report.seconds = time.perf_counter() - started
    return report

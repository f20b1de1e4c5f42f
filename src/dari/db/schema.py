"""dari's tables, as numbered migrations applied in order on every store, SQLite or PostgreSQL.

A migration runs in one transaction (PostgreSQL's DDL is transactional, so is SQLite's): one
interrupted half-way leaves nothing behind and runs again whole next time. Processes starting at
once take turns (an advisory lock on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), and each applied
version is recorded in `schema_migrations`. Add a migration at the end; never edit a released one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dari.db.base import LOCK_MIGRATIONS, Connection, Database, Dialect

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"real": "REAL", "blob": "BLOB", "big": "INTEGER", "seq": ""},
    "postgres": {
        "real": "DOUBLE PRECISION",
        "blob": "BYTEA",
        "big": "BIGINT",
        "seq": ",\n  seq BIGINT GENERATED ALWAYS AS IDENTITY",
    },
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    common: tuple[str, ...] = ()  # formatted with the dialect's type names
    only: dict[Dialect, tuple[str, ...]] = field(default_factory=dict)  # run after `common`
    fix: dict[Dialect, Callable[[Connection], None]] = field(default_factory=dict)

    def statements(self, dialect: Dialect) -> list[str]:
        return [s.format(**TYPES[dialect]) for s in self.common] + list(self.only.get(dialect, ()))


def _sections_flags(db: Connection) -> None:
    """Stores made before the guards tagged sections lack the column."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(sections)")}
    if "flags" not in columns:
        db.execute("ALTER TABLE sections ADD COLUMN flags TEXT NOT NULL DEFAULT ''")


MIGRATIONS = (
    Migration(
        1,
        "documents, chunks, embeddings, traces",
        (
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE IF NOT EXISTS collections(
  name TEXT PRIMARY KEY, embedder TEXT NOT NULL, dim INTEGER NOT NULL,
  generation {big} NOT NULL DEFAULT 0, created_at {real} NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS files(
  collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
  path TEXT NOT NULL, sha256 TEXT NOT NULL, size {big} NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
  replaces TEXT NOT NULL DEFAULT '[]',
  updated_at {real} NOT NULL, PRIMARY KEY (collection, path))""",
            """CREATE TABLE IF NOT EXISTS documents(
  id TEXT PRIMARY KEY, collection TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL,
  title TEXT NOT NULL, format TEXT NOT NULL, content_hash TEXT NOT NULL, lang TEXT NOT NULL,
  acl TEXT NOT NULL, metadata TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
  FOREIGN KEY (collection, path) REFERENCES files(collection, path) ON DELETE CASCADE)""",
            "CREATE INDEX IF NOT EXISTS documents_by_path ON documents(collection, path)",
            """CREATE TABLE IF NOT EXISTS sections(
  id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ordinal INTEGER NOT NULL, text TEXT NOT NULL, heading TEXT NOT NULL, page INTEGER,
  flags TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX IF NOT EXISTS sections_by_doc ON sections(doc_id)",
            """CREATE TABLE IF NOT EXISTS chunks(
  id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  section_id TEXT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL, lang TEXT NOT NULL,
  emb_key TEXT NOT NULL{seq})""",
            "CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id)",
            "CREATE TABLE IF NOT EXISTS embeddings(key TEXT PRIMARY KEY, vec {blob} NOT NULL)",
            """CREATE TABLE IF NOT EXISTS traces(
  id TEXT PRIMARY KEY, collection TEXT NOT NULL, created_at {real} NOT NULL,
  body TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS traces_by_time ON traces(created_at)",
            """CREATE TABLE IF NOT EXISTS trace_prompts(
  trace_id TEXT PRIMARY KEY REFERENCES traces(id) ON DELETE CASCADE,
  system TEXT NOT NULL, data TEXT NOT NULL)""",
            "INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING",
        ),
        fix={"sqlite": _sections_flags},
    ),
    Migration(
        2,
        "feedback",
        only={
            "sqlite": (
                """CREATE TABLE IF NOT EXISTS feedback(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  trace_id TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  kind TEXT NOT NULL, thumb TEXT CHECK (thumb IN ('up', 'down')),
  rating INTEGER CHECK (rating BETWEEN 1 AND 5), comment TEXT NOT NULL DEFAULT '',
  correction TEXT NOT NULL DEFAULT '', approved INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL)""",
                "CREATE INDEX IF NOT EXISTS feedback_by_trace ON feedback(trace_id)",
            ),
            "postgres": (
                """CREATE TABLE IF NOT EXISTS feedback(
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  trace_id TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  kind TEXT NOT NULL, thumb TEXT CHECK (thumb IN ('up', 'down')),
  rating INTEGER CHECK (rating BETWEEN 1 AND 5), comment TEXT NOT NULL DEFAULT '',
  correction TEXT NOT NULL DEFAULT '', approved INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL)""",
                "CREATE INDEX IF NOT EXISTS feedback_by_trace ON feedback(trace_id)",
            ),
        },
    ),
    Migration(
        3,
        "prompt versions (immutable) and choices",
        (
            """CREATE TABLE IF NOT EXISTS prompt_versions(
  name TEXT NOT NULL, version INTEGER NOT NULL CHECK (version >= 1), parts TEXT NOT NULL,
  sha256 TEXT NOT NULL, description TEXT NOT NULL, based_on TEXT NOT NULL,
  created_at {real} NOT NULL, PRIMARY KEY (name, version))""",
            """CREATE TABLE IF NOT EXISTS prompt_choices(
  key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at {real} NOT NULL)""",
        ),
        only={
            "sqlite": (
                """CREATE TRIGGER IF NOT EXISTS prompt_versions_no_update BEFORE UPDATE
  ON prompt_versions BEGIN SELECT RAISE(ABORT, 'prompt versions are immutable'); END""",
                """CREATE TRIGGER IF NOT EXISTS prompt_versions_no_delete BEFORE DELETE
  ON prompt_versions BEGIN SELECT RAISE(ABORT, 'prompt versions are immutable'); END""",
            ),
            "postgres": (
                """CREATE OR REPLACE FUNCTION dari_prompt_versions_immutable() RETURNS trigger
  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'prompt versions are immutable'; END $$""",
                """CREATE OR REPLACE TRIGGER prompt_versions_immutable
  BEFORE UPDATE OR DELETE ON prompt_versions
  FOR EACH ROW EXECUTE FUNCTION dari_prompt_versions_immutable()""",
            ),
        },
    ),
    Migration(
        4,
        "API keys",
        (
            """CREATE TABLE IF NOT EXISTS api_keys(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
  collections TEXT NOT NULL, acl TEXT, hash TEXT NOT NULL, created_at {real} NOT NULL,
  revoked_at {real})""",
        ),
    ),
    Migration(
        5,
        "change log: documents each generation touched",
        (
            """CREATE TABLE IF NOT EXISTS changes(
  collection TEXT NOT NULL, generation {big} NOT NULL, doc_id TEXT NOT NULL,
  PRIMARY KEY (collection, generation, doc_id))""",
        ),
    ),
    Migration(
        6,
        "the audit chain of every replica (PostgreSQL; SQLite stores keep a file)",
        only={
            "postgres": (
                """CREATE TABLE IF NOT EXISTS audit(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, line TEXT NOT NULL)""",
                """CREATE OR REPLACE FUNCTION dari_audit_append_only() RETURNS trigger
  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
                """CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION dari_audit_append_only()""",
            ),
        },
    ),
    Migration(
        7,
        "BM25 in PostgreSQL (store.fulltext = 'postgres')",
        only={
            "postgres": (
                """CREATE TABLE IF NOT EXISTS fulltext_chunks(
  collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
  chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, acl TEXT[] NOT NULL, meta TEXT[] NOT NULL,
  terms TEXT[] NOT NULL, tfs INTEGER[] NOT NULL, len INTEGER NOT NULL,
  PRIMARY KEY (collection, chunk_id))""",
                "CREATE INDEX IF NOT EXISTS fulltext_chunks_terms ON fulltext_chunks "
                "USING gin (terms)",
                "CREATE INDEX IF NOT EXISTS fulltext_chunks_docs ON fulltext_chunks"
                "(collection, doc_id)",
                """CREATE TABLE IF NOT EXISTS fulltext_terms(
  collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
  term TEXT NOT NULL, df BIGINT NOT NULL, PRIMARY KEY (collection, term))""",
                """CREATE TABLE IF NOT EXISTS fulltext_stats(
  collection TEXT PRIMARY KEY REFERENCES collections(name) ON DELETE CASCADE,
  docs BIGINT NOT NULL, length BIGINT NOT NULL)""",
            ),
        },
    ),
)


def _lock(db: Database, conn: Connection) -> None:
    if db.dialect == "postgres":
        conn.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_MIGRATIONS,))


def migrate(db: Database) -> list[int]:
    """Apply the migrations this database has not had; returns the versions applied now."""
    real = TYPES[db.dialect]["real"]
    with db.transaction() as conn:
        _lock(db, conn)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, "
            f"name TEXT NOT NULL, applied_at {real} NOT NULL)"
        )
    applied = {int(r[0]) for r in db.rows("SELECT version FROM schema_migrations")}
    done: list[int] = []
    for m in MIGRATIONS:
        if m.version in applied:
            continue
        with db.transaction() as conn:
            _lock(db, conn)
            found = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)
            ).fetchone()
            if found:  # another process applied it while this one waited
                continue
            for statement in m.statements(db.dialect):
                conn.execute(statement)
            if db.dialect in m.fix:
                m.fix[db.dialect](conn)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", (m.version, m.name, time.time())
            )
        done.append(m.version)
    return done

"""SQLite (WAL) under DARI_HOME: the embedded default. Each thread gets a connection of its own
(the server answers in several threads; WAL lets them read while one writes), and write
transactions take turns within the process (`BEGIN IMMEDIATE` between processes)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dari.db.base import Args, Dialect
from dari.errors import StoreError


class SqliteDatabase:
    dialect: Dialect = "sqlite"
    order_column = "rowid"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._lock = threading.RLock()  # one write transaction at a time in this process
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db.execute("SELECT 1")
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
        """Rolled back whole on any error (disk full included). Threads take turns: a
        transaction holds the connection until it ends."""
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

    def rows(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._db.execute(sql, args)]

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def json_array_has_any(self, column: str, n: int) -> str:
        marks = ",".join("?" * n)
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value IN ({marks}))"

    def sizes(self) -> dict[str, int]:
        return {
            p.name: p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        }

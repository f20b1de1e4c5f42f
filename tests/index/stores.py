"""Stores on each engine for the suites that prove a behaviour on all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dari.index.store import Store


def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A new, empty store of `kind` (sqlite, or postgres on a fresh database of the session's
    server)."""
    if kind == "sqlite":
        return Store(tmp_path / "dari.db")
    from dari.db.postgres import PostgresDatabase

    url = request.getfixturevalue("postgres_url")
    return Store(PostgresDatabase(url, pool_size=4))


def reopen(store: Store) -> Store:
    """A second Store over the same database (another process, or a restart)."""
    if store.path is not None:
        return Store(store.path)
    from dari.db.postgres import PostgresDatabase

    return Store(PostgresDatabase(store.db.url, pool_size=2))  # type: ignore[attr-defined]

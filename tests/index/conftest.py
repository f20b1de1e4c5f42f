"""The store fixture of the index suites: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import STORE_BACKENDS
from tests.index.stores import open_store

from dari.index.store import Store


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store holding the collection `docs` (embedder fake-hash, 4 dimensions)."""
    s = open_store(request.param, tmp_path, request)
    s.ensure_collection("docs", "fake-hash", 4)
    yield s
    s.close()

"""The real app over a real store, with the fake embedder and LLM of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dari.app import Dari
from dari.server.app import create_app
from dari.server.keys import ApiKey


@pytest.fixture
def app_dari(dari: Dari, corpus: Path, tmp_path: Path) -> Dari:
    dari.ingest([corpus], "docs")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "salaries.md").write_text(
        "# Salaries\n\nThe CEO's salary is 900 million won a year.\n", encoding="utf-8"
    )
    dari.ingest([secret], "docs", acl=["hr"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "lunch.md").write_text("# Lunch\n\nLunch is served at noon.\n", encoding="utf-8")
    dari.ingest([other], "other")
    return dari


@pytest.fixture
def client(app_dari: Dari) -> Iterator[TestClient]:
    app = create_app(app_dari.settings, app_dari)
    with TestClient(app) as c:
        yield c


KeyMaker = Callable[..., tuple[ApiKey, dict[str, str]]]


@pytest.fixture
def make_key() -> KeyMaker:
    """Creates a key in the app's store; returns it with the headers that send it."""

    def make(
        client: TestClient,
        role: str = "user",
        collections: tuple[str, ...] = ("docs",),
        acl: tuple[str, ...] | None = (),
    ) -> tuple[ApiKey, dict[str, str]]:
        keys = client.app.state.keys  # type: ignore[attr-defined]
        key, token = keys.create("test", role, collections, acl)
        return key, {"Authorization": f"Bearer {token}"}

    return make

"""PostgreSQL restarted under a serving dari: clear 503s with Retry-After while it is away, then
answers again without restarting dari."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dari.app import Dari
from dari.config import Settings
from dari.db.local_postgres import LocalPostgres
from dari.index.analyzer import Analyzer
from dari.server.app import create_app
from dari.testing import FakeEmbedder, FakeGenerator

pytest.importorskip("psycopg", reason="the postgres extra is not installed")
Q = {"question": "When does the office open?", "collection": "docs"}


def test_a_restarted_store_is_503_with_retry_after_then_serves_again(
    own_postgres: LocalPostgres, tmp_path: Path, corpus: Path, analyzer: Analyzer
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        cache={"enabled": False},  # type: ignore[arg-type]
        store={"backend": "postgres", "postgres_url": own_postgres.url, "connect_timeout_s": 2},  # type: ignore[arg-type]
    )
    dari = Dari(settings)
    dari.analyzer = analyzer
    dari.__dict__["embedder"] = FakeEmbedder(analyzer)
    generator = FakeGenerator()
    dari.__dict__["generator"] = generator
    dari.ingest([corpus], "docs")
    try:
        with TestClient(create_app(settings, dari)) as client:
            _, token = client.app.state.keys.create("t", "user", ("docs",), ())  # type: ignore[attr-defined]
            headers = {"Authorization": f"Bearer {token}"}
            generator.enqueue("The office opens at 8 am [1].")
            assert client.post("/api/query", json=Q, headers=headers).status_code == 200

            own_postgres.stop()
            down = client.post("/api/query", json=Q, headers=headers)
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) >= 1
            error = down.json()["error"]
            assert (
                f"PostgreSQL at 127.0.0.1:{own_postgres.port}/postgres is unreachable"
                in (error["message"])
            )
            assert "retry" in error["hint"]
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "unreachable" in ready.json()["reason"]
            assert client.get("/healthz").status_code == 200  # the process itself is fine

            own_postgres.start()
            # dari reconnects by itself (its pool retries with backoff): a client that honours
            # Retry-After, or a load balancer polling, sees it back within seconds
            deadline = time.monotonic() + 30
            while client.get("/api/collections", headers=headers).status_code == 503:
                assert time.monotonic() < deadline, "dari did not reconnect to PostgreSQL"
            generator.enqueue("The office opens at 8 am [1].")
            again = client.post("/api/query", json=Q, headers=headers)
            assert again.status_code == 200, again.text
            assert again.json()["citations"][0]["source"].endswith("office.txt")
    finally:
        dari.close()

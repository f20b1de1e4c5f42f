"""The real app over a real store, with the fake embedder and LLM of tests/conftest.py."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
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


def finished(client: TestClient, headers: dict[str, str], run_id: str) -> dict[str, Any]:
    """Poll an eval run until it is no longer running (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = client.get(f"/api/evals/{run_id}", headers=headers).json()
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


@contextmanager
def serving(app: object) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port, in a thread; yields its base URL once
    /healthz answers (polled, bounded), and stops it after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(client: TestClient) -> Iterator[str]:
    """The test app under a real uvicorn server on loopback."""
    with serving(client.app) as url:
        yield url


CHROMIUM = shutil.which("chromium")  # Debian's; `playwright install` is never used
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).with_name("artifacts")
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs the distribution's chromium on PATH (apt-get install chromium); "
    "`playwright install` is not used",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def fits(page: Any) -> bool:
    """The page does not scroll sideways (phone widths)."""
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def screenshot(page: Any, name: str) -> None:
    """A test artefact in tests/server/artifacts (and in $PYTEST_ARTIFACTS when set)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / name, full_page=True)
    if os.environ.get("PYTEST_ARTIFACTS"):
        extra = Path(os.environ["PYTEST_ARTIFACTS"])
        extra.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / name, extra / name)

"""`dari serve`'s logging: one JSON access line per request, with its request id.

Run in a child process: `logging.config.dictConfig` reconfigures the whole process's logging
(closing every handler, pytest's own included), as `dari serve` does at start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import logging.config, sys
from pathlib import Path
from fastapi.testclient import TestClient
from dari.app import Dari
from dari.config import Settings
from dari.server.accesslog import log_config
from dari.server.app import create_app
from dari.testing import FakeEmbedder, FakeGenerator

logging.config.dictConfig(log_config())
settings = Settings(home=Path(sys.argv[1]))
dari = Dari(settings)
dari.__dict__["embedder"] = FakeEmbedder(dari.analyzer)
dari.__dict__["generator"] = FakeGenerator()
client = TestClient(create_app(settings, dari))
client.get("/healthz", headers={"X-Request-ID": "req-42"})
client.get("/api/collections")  # 401: logged too, with a fresh id
"""


def test_one_json_line_per_request_with_its_id(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert lines[-2] == {
        "rid": "req-42",
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "ms": lines[-2]["ms"],
        "key": None,
    }
    assert lines[-1]["status"] == 401 and len(lines[-1]["rid"]) == 16

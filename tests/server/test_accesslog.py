"""`dari serve`'s logging: one JSON access line per request, with its request id."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dari.server.accesslog import log_config


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("dari.server")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers, logger.level, logger.propagate = handlers, level, propagate


def test_one_json_line_per_request_with_its_id(
    client: TestClient, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(log_config())  # here, so its stdout is the one capsys reads
    client.get("/healthz", headers={"X-Request-ID": "req-42"})
    client.get("/api/collections")  # 401: logged too, with a fresh id
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert lines[-2] == {
        "rid": "req-42",
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "ms": lines[-2]["ms"],
        "key": None,
    }
    assert lines[-1]["status"] == 401 and len(lines[-1]["rid"]) == 16

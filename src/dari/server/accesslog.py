"""Logging for `dari serve`: uvicorn's own messages as uvicorn writes them, and the access log as
one JSON line per request from `dari.server` (request id, method, path, status, ms, key id), in
place of uvicorn's plain access lines, which carry no request id."""

from __future__ import annotations

import copy
from typing import Any


def log_config() -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn.run(log_config=…, access_log=False)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["json_line"] = {"format": "%(message)s"}
    config["handlers"]["dari_access"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_line",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["dari.server"] = {
        "handlers": ["dari_access"],
        "level": "INFO",
        "propagate": False,
    }
    # Tracing's own few lines (a collector that cannot be reached), as uvicorn writes its own.
    config["loggers"]["dari.telemetry"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config

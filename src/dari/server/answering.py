"""What every route that answers a question shares: recording the answer (metrics, tracing), and
running the pipeline in a thread while its tokens are streamed to the client."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Request

from dari.errors import DariError
from dari.types import Answer

Emit = Callable[[str], None]


def record(request: Request, answer: Answer, started_ns: int) -> None:
    """The answer into the app's metrics and, when configured, its OpenTelemetry spans."""
    request.app.state.metrics.observe(answer)
    request.app.state.telemetry.record(answer, request, started_ns)


def in_thread(run: Callable[[Emit], Any]) -> Iterator[tuple[str, Any]]:
    """Run `run(emit)` in a thread: yields ("token", text) for each emitted piece, then
    ("done", what `run` returned) or ("error", {type, message, hint, code}) if it raised."""
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            pieces.put(("done", run(lambda text: pieces.put(("token", text)))))
        except DariError as exc:
            pieces.put(
                (
                    "error",
                    {
                        "type": type(exc).__name__,
                        "message": exc.message,
                        "hint": exc.hint,
                        "code": exc.http_status,
                    },
                )
            )
        except Exception as exc:  # reported to the client in the stream, not swallowed
            pieces.put(("error", {"type": "error", "message": str(exc), "code": 500}))

    threading.Thread(target=work, daemon=True).start()
    while True:
        kind, data = pieces.get()
        yield kind, data
        if kind != "token":
            return

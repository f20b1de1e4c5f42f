"""The FastAPI app: one `Dari` shared by all requests, errors answered as JSON in one place,
request size limits, request ids, metrics. Routes live in `routes_api` and `routes_openai`."""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from dari.app import Dari
from dari.config import Settings
from dari.errors import BackendError, DariError, RateLimited
from dari.server.keys import KeyStore
from dari.server.locked import LockedGenerator
from dari.server.metrics import make_metrics
from dari.server.ratelimit import rate_limits
from dari.server.telemetry import Telemetry, create_telemetry

log = logging.getLogger("dari.server")


def create_app(
    settings: Settings, dari: Dari | None = None, telemetry: Telemetry | None = None
) -> FastAPI:
    """The service for one DARI_HOME. `dari`: an existing instance (tests pass fakes in);
    `telemetry`: tracing from `create_telemetry` (tests pass one with an in-memory exporter)."""
    from dari.server import routes_admin, routes_api, routes_openai, routes_ops, ui

    dari = dari or Dari(settings)
    dari.__dict__["generator"] = LockedGenerator.around(dari)
    app = FastAPI(
        title="dari",
        version="0.1.0",
        description="Grounded, cited answers over your documents (OpenAI-compatible + native).",
    )
    app.state.settings = settings
    app.state.dari = dari
    app.state.keys = KeyStore(dari.store)
    app.state.limits = rate_limits(settings.server)  # Redis when server.redis_url is set
    app.state.metrics = make_metrics()
    app.state.telemetry = telemetry or create_telemetry(settings.server)  # OpenTelemetry, if set
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.server.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.middleware("http")(_envelope)
    app.state.telemetry.install(app)  # added last, so outermost: its span holds the request
    app.add_exception_handler(DariError, _dari_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.include_router(routes_api.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_ops.router)  # feedback and eval runs for operators
    app.include_router(ui.router)  # the chat page at /, the operator page at /admin
    return app


async def _envelope(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Body size limit, request id, access log line and metrics for every request."""
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
    request.state.rid = rid
    limit = _body_limit(request)
    length = request.headers.get("content-length")
    started = time.perf_counter()
    if length and length.isdigit() and int(length) > limit:
        response: Response = _error(
            413,
            "too_large",
            f"the request body is {int(length):,} bytes (limit {limit:,})",
            "send less, or raise server.max_body_kb / server.max_upload_mb",
        )
    else:
        response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    seconds = time.perf_counter() - started
    metrics = request.app.state.metrics
    metrics.requests.labels(request.method, path, str(response.status_code)).inc()
    metrics.latency.labels(path).observe(seconds)
    response.headers["x-request-id"] = rid
    key = getattr(request.state, "key", None)
    log.info(
        json.dumps(
            {
                "rid": rid,
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "ms": round(seconds * 1000, 1),
                "key": key.id if key else None,
            }
        )
    )
    return response


def _body_limit(request: Request) -> int:
    s = request.app.state.settings.server
    if request.url.path.startswith("/api/collections/") and request.method in ("POST", "PUT"):
        return int(s.max_upload_mb * 2**20)  # document uploads
    return s.max_body_kb * 1024


async def _dari_error(request: Request, exc: DariError) -> JSONResponse:
    request.app.state.metrics.errors.labels(type(exc).__name__).inc()
    response = _error(exc.http_status, _kind(exc), exc.message, exc.hint)
    if isinstance(exc, RateLimited | BackendError):  # come back later: when, never too early
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    request.app.state.metrics.errors.labels("RequestValidationError").inc()
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return _error(
        422,
        "invalid_request",
        f"{where}: {first.get('msg', 'invalid')}",
        "see the OpenAPI description at /docs",
    )


def _error(status: int, kind: str, message: str, hint: str) -> JSONResponse:
    """The one error shape, which OpenAI clients also understand."""
    return JSONResponse(
        {"error": {"type": kind, "message": message, "hint": hint, "code": status}},
        status_code=status,
    )


def _kind(exc: DariError) -> str:
    return {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        413: "too_large",
        429: "rate_limited",
        503: "unavailable",
    }.get(exc.http_status, "invalid_request" if exc.http_status < 500 else "error")

"""The OpenTelemetry side of `dari.server.telemetry` (the `otel` extra), imported only when
tracing is on: a tracer provider of the app's own (the global one is left alone), a batch
processor with the OTLP/HTTP exporter, the server-span middleware, and the answers' step spans."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dari.server.telemetry import ENV_ENDPOINTS, ROOT, steps
from dari.types import Answer

# Not under dari.server, whose lines are the JSON access log on standard output.
log = logging.getLogger("dari.telemetry")
_SPAN = "otel_span"  # the request's server span, in request.state


class Tracing:
    """Spans of one app. `endpoint` None: the OTEL_EXPORTER_OTLP_* variables say where."""

    def __init__(
        self, service_name: str, endpoint: str | None, exporter: SpanExporter | None = None
    ) -> None:
        if exporter is None:
            exporter = _Reported(OTLPSpanExporter(endpoint=endpoint), endpoint or _env_endpoint())
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("dari.server", "0.1.0")
        self._propagator = TraceContextTextMapPropagator()

    def install(self, app: FastAPI) -> None:
        app.add_middleware(_Middleware, tracing=self)

    def start(self, scope: Scope) -> Span:
        """The server span of an HTTP request, continuing the caller's `traceparent` if any."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        span = self._tracer.start_span(
            method,
            context=self._propagator.extract(headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
        )
        scope.setdefault("state", {})[_SPAN] = span
        return span

    def finish(
        self, span: Span, scope: Scope, status: int | None, error: BaseException | None
    ) -> None:
        state = scope.get("state", {})
        route = getattr(scope.get("route"), "path", None)
        if route:
            span.update_name(f"{scope['method']} {route}")
            span.set_attribute("http.route", route)
        status = status or 500  # no response started: the app raised
        span.set_attribute("http.response.status_code", status)
        if state.get("rid"):
            span.set_attribute("dari.request_id", state["rid"])
        key = state.get("key")
        if key is not None:
            span.set_attribute("dari.key_id", key.id)
        if error is not None:
            span.record_exception(error)
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        elif status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def record(self, answer: Answer, request: Request, started_ns: int) -> None:
        """The answer's steps as spans under the request's server span."""
        server: Span | None = getattr(request.state, _SPAN, None)
        if server is None:
            return
        tr = answer.trace
        server.set_attribute("dari.trace_id", tr.id)
        spans: dict[str, Span] = {"": server}
        for step in steps(tr, started_ns):
            attributes: dict[str, AttributeValue] = {"dari.step": step.name, "dari.ms": step.ms}
            attributes |= (
                _answer_attributes(answer) if step.name == ROOT else {"dari.trace_id": tr.id}
            )
            span = self._tracer.start_span(
                step.name,
                context=trace.set_span_in_context(spans[step.parent]),
                start_time=step.start_ns,
                attributes=attributes,
            )
            span.end(end_time=step.end_ns)
            spans[step.name] = span

    def force_flush(self) -> bool:
        return self.provider.force_flush()

    def shutdown(self) -> None:
        """Send what is queued (bounded by the exporter's timeout) and stop."""
        self.provider.shutdown()


def _answer_attributes(answer: Answer) -> dict[str, AttributeValue]:
    tr = answer.trace
    out: dict[str, AttributeValue] = {
        "dari.trace_id": tr.id,
        "dari.collection": tr.collection,
        "dari.outcome": answer.outcome.value,
        "dari.prompt_version": tr.prompt_version,
        "dari.model": tr.model,
        "dari.hits": len(tr.hits),
        "gen_ai.usage.input_tokens": tr.prompt_tokens,
        "gen_ai.usage.output_tokens": tr.completion_tokens,
        "dari.guards.flagged": [v.guard for v in tr.verdicts if v.flagged],
    }
    if tr.cache is not None:
        out["dari.cache.lookup"] = tr.cache.lookup
    return out


class _Middleware:
    """A server span around every HTTP request. Pure ASGI, so that a streamed answer is inside
    its span (the app returns after the last chunk); at shutdown, queued spans are sent."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = self.tracing.start(scope)
        status: int | None = None

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        except BaseException as exc:
            self.tracing.finish(span, scope, status, exc)
            raise
        self.tracing.finish(span, scope, status, None)

    def _on_shutdown(self, send: Send) -> Send:
        async def sent(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await run_in_threadpool(self.tracing.shutdown)
            await send(message)

        return sent


class _Reported(SpanExporter):
    """Wraps the OTLP exporter so that a collector that cannot be reached is said once (and
    once more when it answers again), instead of the exporter's lines for every batch and
    retry; the batch processor drops what could not be sent, and requests never wait for it."""

    def __init__(self, inner: OTLPSpanExporter, where: str) -> None:
        self._inner = inner
        self._where = where
        self._down = False
        self._exporting: int | None = None  # the thread inside export(), whose lines we keep
        self._reason = ""  # the first of them in the last export: the error, before the summary
        self._logger = logging.getLogger(type(inner).__module__)
        self._logger.addFilter(self._keep)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._exporting, self._reason = threading.get_ident(), ""
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not stop the batch thread
            self._reason = f"{type(exc).__name__}: {exc}"
            result = SpanExportResult.FAILURE
        finally:
            self._exporting = None
        if result is SpanExportResult.FAILURE and not self._down:
            self._down = True
            log.warning(
                "tracing: could not send spans to %s (%s); dropping them until it answers",
                self._where,
                self._reason or "no reason given",
            )
        elif result is SpanExportResult.SUCCESS and self._down:
            self._down = False
            log.warning("tracing: %s answers again; sending spans", self._where)
        return result

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()
        self._logger.removeFilter(self._keep)

    def _keep(self, record: logging.LogRecord) -> bool:
        """The exporter's own lines: kept back while they come from our export call (the first
        is the reason we give); others pass."""
        if record.thread != self._exporting:
            return True
        self._reason = self._reason or record.getMessage()
        return False


def _env_endpoint() -> str:
    traces, base = (os.environ.get(name, "") for name in ENV_ENDPOINTS)
    return traces or f"{base.rstrip('/')}/v1/traces"

"""OpenTelemetry tracing of `dari serve`, on when `server.otel_endpoint` (or the standard
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variable) names an OTLP/HTTP
collector: a server span per request and, for each answer, a span per pipeline step.

Off by default, and then nothing of OpenTelemetry is imported: `create_telemetry` returns `Off`.
The spans are made in `dari.server.otel` (the `otel` extra); this module only decides whether to
trace and places an answer's steps on the clock (`steps`), which needs no OpenTelemetry."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dari.config import ServerSettings
from dari.errors import ConfigError, MissingExtra
from dari.types import Answer, Stage, Trace

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from opentelemetry.sdk.trace.export import SpanExporter

ENV_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
ROOT = "dari.ask"  # the span of one answer (its `total`), under the request's server span
_IN_ORDER = ("retrieve", "guard.context", "load_model", "generate")  # as the pipeline runs them


class Telemetry(Protocol):
    """What the app and its routes see: `install` once in `create_app`; `record` per answer,
    next to `Metrics.observe`, with the time (`time.time_ns()`) the route called `dari.ask`."""

    def install(self, app: FastAPI) -> None: ...

    def record(self, answer: Answer, request: Request, started_ns: int) -> None: ...


class Off:
    """Tracing off: no middleware, nothing recorded."""

    def install(self, app: FastAPI) -> None:
        return None

    def record(self, answer: Answer, request: Request, started_ns: int) -> None:
        return None


def create_telemetry(settings: ServerSettings, exporter: SpanExporter | None = None) -> Telemetry:
    """Tracing as configured. `exporter`: where spans go instead of the OTLP/HTTP exporter (tests
    pass an in-memory one); giving one turns tracing on."""
    endpoint = settings.otel_endpoint.strip()
    from_env = any(os.environ.get(name) for name in ENV_ENDPOINTS)
    if exporter is None and not endpoint and not from_env:
        return Off()
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"server.otel_endpoint is not an http(s) URL: {endpoint!r}",
            "name the collector's OTLP/HTTP traces endpoint, e.g. http://localhost:4318/v1/traces",
        )
    try:
        from dari.server.otel import Tracing
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise MissingExtra("opentelemetry-sdk", "otel") from exc
    return Tracing(settings.otel_service_name, endpoint or None, exporter)


@dataclass(frozen=True)
class Step:
    """One span of an answer: `name` is a key of `trace.timings_ms` (`ROOT` for `total`), or
    `guard.input` / `guard.output` from the guards' verdicts; `parent` is "" for `ROOT`."""

    name: str
    parent: str
    start_ns: int
    end_ns: int
    ms: float


def steps(trace: Trace, started_ns: int) -> list[Step]:
    """The answer's steps on the clock, parents before children. The pipeline ran them in order
    from `started_ns` for `total` ms. What it does not time (the input guards, the cache lookup)
    comes before retrieval, and after generation only the output guards take time, so the steps
    are laid back from the end, each ending where the next one starts; the input guards (timed
    by their verdicts) from the start."""
    t = trace.timings_ms
    total = t.get("total", 0.0)
    end = started_ns + _ns(total)
    out = [Step(ROOT, "", started_ns, end, total)]
    guards = {
        stage: sum(v.ms for v in trace.verdicts if v.stage == stage)
        for stage in (Stage.INPUT, Stage.OUTPUT)
    }
    cursor = end
    if "generate" in t and guards[Stage.OUTPUT]:
        cursor = _back(out, "guard.output", ROOT, cursor, guards[Stage.OUTPUT], started_ns)
    for name in reversed(_IN_ORDER):
        if name not in t:
            continue
        stop = cursor
        cursor = _back(out, name, ROOT, stop, t[name], started_ns)
        if name == "retrieve":  # a follow-up may retrieve twice: the last one ends the step
            inner = stop
            for key in reversed([k for k in t if k.startswith("retrieve.")]):
                inner = _back(out, key, name, inner, t[key], cursor)
        if name == "generate" and "first_token" in t and "schema_retries" not in t:
            first = min(cursor + _ns(t["first_token"]), stop)  # a repair's is the first try's
            out.append(Step("first_token", name, cursor, first, t["first_token"]))
    if guards[Stage.INPUT]:
        first = min(started_ns + _ns(guards[Stage.INPUT]), cursor)
        out.append(Step("guard.input", ROOT, started_ns, first, guards[Stage.INPUT]))
    depth = {"": 0, ROOT: 1}
    return sorted(out, key=lambda s: (depth.get(s.parent, 2), s.start_ns))


def _back(out: list[Step], name: str, parent: str, stop: int, ms: float, floor: int) -> int:
    """Append the step of `ms` that ends at `stop` (starting no earlier than `floor`)."""
    start = max(stop - _ns(ms), floor)
    out.append(Step(name, parent, start, stop, ms))
    return start


def _ns(ms: float) -> int:
    return round(ms * 1_000_000)

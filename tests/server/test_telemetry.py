"""OpenTelemetry tracing: a server span per request, a span per pipeline step of each answer,
placed on the clock from the trace; a real OTLP/HTTP round trip to a local collector; nothing
changes when it is off, and an unreachable collector costs the requests nothing."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dari.app import Dari
from dari.config import ServerSettings, Settings
from dari.errors import ConfigError
from dari.server.app import create_app
from dari.server.otel import _Reported
from dari.server.telemetry import ROOT, Off, create_telemetry, steps
from dari.testing import FakeGenerator
from dari.types import Action, GenerationParams, Outcome, Stage, Trace, Verdict

KeyMaker = Callable[..., Any]
Q = {"question": "When does the office open?", "collection": "docs"}
MS = 1_000_000  # ns


def _with_server(settings: Settings, **server: Any) -> Settings:
    return settings.model_copy(update={"server": settings.server.model_copy(update=server)})


@pytest.fixture
def memory() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(app_dari: Dari, memory: InMemorySpanExporter) -> Iterator[TestClient]:
    telemetry = create_telemetry(app_dari.settings.server, exporter=memory)
    with TestClient(create_app(app_dari.settings, app_dari, telemetry)) as c:
        yield c


def _spans(client: TestClient, memory: InMemorySpanExporter) -> list[ReadableSpan]:
    client.app.state.telemetry.force_flush()  # type: ignore[attr-defined]
    return list(memory.get_finished_spans())


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def _inside(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.start_time and child.end_time and parent.start_time and parent.end_time
    return parent.start_time <= child.start_time <= child.end_time <= parent.end_time


# --- the steps on the clock ------------------------------------------------------------------


def _trace(timings: dict[str, float], verdicts: tuple[Verdict, ...] = ()) -> Trace:
    return Trace(
        id="t1",
        query="q",
        collection="docs",
        outcome=Outcome.ANSWERED,
        hits=(),
        timings_ms=timings,
        model="fake",
        prompt_version="v1",
        params=GenerationParams(),
        verdicts=verdicts,
    )


def test_steps_are_laid_back_from_the_end_in_pipeline_order():
    timings = {
        "retrieve.bm25": 3.0,
        "retrieve.dense": 5.0,
        "retrieve": 10.0,
        "guard.context": 2.0,
        "load_model": 1.0,
        "first_token": 4.0,
        "generate": 20.0,
        "total": 50.0,
    }
    verdicts = (
        Verdict("injection", Stage.INPUT, False, Action.ALLOW, ms=5.0),
        Verdict("groundedness", Stage.OUTPUT, False, Action.ALLOW, ms=6.0),
    )
    start = 10**18
    end = start + 50 * MS
    got = {
        s.name: (s.parent, s.start_ns - end, s.end_ns - end)
        for s in steps(_trace(timings, verdicts), start)
    }
    assert got == {
        ROOT: ("", -50 * MS, 0),
        "guard.input": (ROOT, -50 * MS, -45 * MS),  # before the untimed cache lookup
        "retrieve": (ROOT, -39 * MS, -29 * MS),
        "retrieve.bm25": ("retrieve", -37 * MS, -34 * MS),
        "retrieve.dense": ("retrieve", -34 * MS, -29 * MS),
        "guard.context": (ROOT, -29 * MS, -27 * MS),
        "load_model": (ROOT, -27 * MS, -26 * MS),
        "generate": (ROOT, -26 * MS, -6 * MS),
        "first_token": ("generate", -26 * MS, -22 * MS),
        "guard.output": (ROOT, -6 * MS, 0),
    }
    order = [s.name for s in steps(_trace(timings, verdicts), start)]
    assert order.index(ROOT) == 0
    assert order.index("retrieve") < order.index("retrieve.bm25")
    assert order.index("generate") < order.index("first_token")


def test_steps_of_an_abstention_and_of_a_cache_hit():
    abstained = steps(_trace({"retrieve.bm25": 1.0, "retrieve": 2.0, "total": 3.0}), 0)
    assert [(s.name, s.start_ns, s.end_ns) for s in abstained] == [
        (ROOT, 0, 3 * MS),
        ("retrieve", 1 * MS, 3 * MS),  # the untimed input guards and cache lookup come first
        ("retrieve.bm25", 2 * MS, 3 * MS),
    ]
    assert [s.name for s in steps(_trace({"total": 1.5}), 0)] == [ROOT]


# --- spans of requests -----------------------------------------------------------------------


def test_a_query_has_a_server_span_and_a_span_per_step(
    make_key: KeyMaker,
    traced: TestClient,
    memory: InMemorySpanExporter,
    fake_generator: FakeGenerator,
):
    key, headers = make_key(traced)
    fake_generator.enqueue("The office opens at 8 am [1].")
    r = traced.post("/api/query", json=Q, headers=headers | {"x-request-id": "rid-42"})
    assert r.status_code == 200, r.text
    body = r.json()
    spans = _spans(traced, memory)

    server = _one(spans, "POST /api/query")
    assert server.kind == SpanKind.SERVER and server.parent is None
    attrs = dict(server.attributes or {})
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == "/api/query"
    assert attrs["http.response.status_code"] == 200
    assert attrs["dari.request_id"] == "rid-42"
    assert attrs["dari.key_id"] == key.id
    assert attrs["dari.trace_id"] == body["trace_id"]
    assert server.resource.attributes["service.name"] == "dari"

    ask = _one(spans, ROOT)
    assert _parent_of(ask) == server.context.span_id and _inside(ask, server)
    a = dict(ask.attributes or {})
    assert a["dari.trace_id"] == body["trace_id"]
    assert (a["dari.collection"], a["dari.outcome"]) == ("docs", "answered")
    assert a["dari.prompt_version"] == body["prompt_version"]
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["dari.ms"] == body["timings_ms"]["total"]

    timings = body["timings_ms"]
    by_name = {s.name: s for s in spans}
    for name in ("retrieve", "retrieve.bm25", "retrieve.dense", "load_model", "generate"):
        span = by_name[name]
        assert span.context.trace_id == server.context.trace_id
        assert dict(span.attributes or {})["dari.trace_id"] == body["trace_id"]
        assert dict(span.attributes or {})["dari.ms"] == timings[name]
        assert span.end_time and span.start_time
        assert abs((span.end_time - span.start_time) - timings[name] * MS) <= 1
        parent = "retrieve" if name.startswith("retrieve.") else ROOT
        assert _parent_of(span) == by_name[parent].context.span_id
        assert _inside(span, by_name[parent])
    first = by_name["first_token"]
    assert _parent_of(first) == by_name["generate"].context.span_id
    assert first.start_time == by_name["generate"].start_time
    # in pipeline order: retrieval, then the model
    retrieve, load, generate = by_name["retrieve"], by_name["load_model"], by_name["generate"]
    assert retrieve.end_time and load.end_time
    assert retrieve.end_time <= load.start_time  # type: ignore[operator]
    assert load.end_time <= generate.start_time  # type: ignore[operator]


def test_streamed_answers_are_inside_their_server_spans(
    make_key: KeyMaker,
    traced: TestClient,
    memory: InMemorySpanExporter,
    fake_generator: FakeGenerator,
):
    _, headers = make_key(traced)
    fake_generator.enqueue("The office opens at 8 am [1].")
    with traced.stream("POST", "/api/query/stream", json=Q, headers=headers) as r:
        assert r.status_code == 200
        assert "event: answer" in "".join(r.iter_text())
    fake_generator.enqueue("The office opens at 8 am [1].")
    chat = {"model": "docs", "messages": [{"role": "user", "content": Q["question"]}]}
    assert traced.post("/v1/chat/completions", json=chat, headers=headers).status_code == 200
    spans = _spans(traced, memory)
    asks = [s for s in spans if s.name == ROOT]
    assert len(asks) == 2
    for route in ("POST /api/query/stream", "POST /v1/chat/completions"):
        server = _one(spans, route)
        (ask,) = [s for s in asks if _parent_of(s) == server.context.span_id]
        assert _inside(ask, server)  # the stream's span ends after its last chunk
        assert any(_parent_of(s) == ask.context.span_id and s.name == "generate" for s in spans)


def test_other_requests_errors_and_a_callers_traceparent(
    make_key: KeyMaker, traced: TestClient, memory: InMemorySpanExporter
):
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced.get("/healthz", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"})
    assert traced.post("/api/query", json=Q).status_code == 401
    spans = _spans(traced, memory)
    health = _one(spans, "GET /healthz")
    assert f"{health.context.trace_id:032x}" == caller_trace
    assert health.parent is not None and f"{health.parent.span_id:016x}" == caller_span
    refused = _one(spans, "POST /api/query")
    assert dict(refused.attributes or {})["http.response.status_code"] == 401
    assert "dari.key_id" not in (refused.attributes or {})
    assert not [s for s in spans if s.name == ROOT]


# --- a real collector --------------------------------------------------------------------------


@dataclass
class Collector:
    """A stand-in OTLP/HTTP collector on a loopback port: records what is POSTed to it."""

    url: str
    got: list[tuple[str, str, bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def collector() -> Iterator[Collector]:
    box: list[Collector] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            box[0].got.append((self.path, self.headers.get("content-type", ""), body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()
            box[0].arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Collector(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("configured_by", ["setting", "environment"])
def test_spans_reach_an_otlp_http_collector(
    configured_by: str,
    collector: Collector,
    make_key: KeyMaker,
    app_dari: Dari,
    fake_generator: FakeGenerator,
    monkeypatch: pytest.MonkeyPatch,
    no_network: None,
):
    settings = _with_server(app_dari.settings, otel_service_name="dari-test")
    if configured_by == "setting":
        settings = _with_server(settings, otel_endpoint=f"{collector.url}/v1/traces")
    else:  # the standard variable names the collector's base URL
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    with TestClient(create_app(settings, app_dari)) as client:
        _, headers = make_key(client)
        fake_generator.enqueue("The office opens at 8 am [1].")
        body = client.post("/api/query", json=Q, headers=headers).json()
        client.app.state.telemetry.force_flush()  # type: ignore[attr-defined]
        assert collector.arrived.wait(timeout=10), "nothing reached the collector"
    path, content_type, _ = collector.got[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    sent = ExportTraceServiceRequest()
    sent.ParseFromString(b"".join(p for _, _, p in collector.got))
    resource = sent.resource_spans[0].resource
    service = {a.key: a.value.string_value for a in resource.attributes}["service.name"]
    assert service == "dari-test"
    names = {s.name for rs in sent.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert {"POST /api/query", ROOT, "retrieve", "generate"} <= names
    trace_ids = {
        a.value.string_value
        for rs in sent.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
        for a in s.attributes
        if a.key == "dari.trace_id"
    }
    assert trace_ids == {body["trace_id"]}


def test_queued_spans_are_sent_when_the_server_shuts_down(
    collector: Collector, app_dari: Dari, monkeypatch: pytest.MonkeyPatch, no_network: None
):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # ms: no batch leaves on its own
    settings = _with_server(app_dari.settings, otel_endpoint=f"{collector.url}/v1/traces")
    with TestClient(create_app(settings, app_dari)) as client:
        assert client.get("/healthz").status_code == 200
        assert not collector.got
    assert collector.got  # the lifespan's shutdown sent it, before the server stopped


def test_an_unreachable_collector_costs_the_requests_nothing_and_is_said_once(
    make_key: KeyMaker,
    app_dari: Dari,
    fake_generator: FakeGenerator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    no_network: None,
):
    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # seconds, for a quick give-up
    settings = _with_server(app_dari.settings, otel_endpoint=f"http://127.0.0.1:{port}/v1/traces")
    caplog.set_level(logging.INFO)
    with TestClient(create_app(settings, app_dari)) as client:
        _, headers = make_key(client)
        for _ in range(2):
            fake_generator.enqueue("The office opens at 8 am [1].")
            r = client.post("/api/query", json=Q, headers=headers)
            assert r.status_code == 200 and r.json()["outcome"] == "answered"
            client.app.state.telemetry.force_flush()  # type: ignore[attr-defined]
    said = [r for r in caplog.records if r.name == "dari.telemetry"]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert f"127.0.0.1:{port}" in said[0].getMessage()
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


class _Flaky:
    """Stands in for the OTLP exporter: logs like it does, and fails while `down` says so."""

    def __init__(self) -> None:
        self.down = True

    def export(self, spans: object) -> SpanExportResult:
        if self.down:
            logging.getLogger(__name__).error("Failed to export spans batch code: None")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_a_collector_that_is_down_is_said_once_and_its_return_once(
    caplog: pytest.LogCaptureFixture,
):
    inner = _Flaky()
    reported = _Reported(inner, "http://collector:4318/v1/traces")  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert reported.export([]) is SpanExportResult.FAILURE
    logging.getLogger(__name__).error("not from an export: passes")
    inner.down = False
    assert reported.export([]) is SpanExportResult.SUCCESS
    reported.shutdown()
    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert said == [
        (
            "dari.telemetry",
            "tracing: could not send spans to http://collector:4318/v1/traces (Failed to export"
            " spans batch code: None); dropping them until it answers",
        ),
        (__name__, "not from an export: passes"),
        ("dari.telemetry", "tracing: http://collector:4318/v1/traces answers again; sending spans"),
    ]


# --- off -------------------------------------------------------------------------------------


def test_off_unless_configured(monkeypatch: pytest.MonkeyPatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(create_telemetry(ServerSettings()), Off)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    tracing = create_telemetry(ServerSettings())
    assert not isinstance(tracing, Off)
    tracing.shutdown()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as info:
        create_telemetry(ServerSettings(otel_endpoint="localhost:4318"))
    assert "http://localhost:4318/v1/traces" in info.value.hint


def test_off_imports_no_opentelemetry_sdk_and_adds_no_middleware(tmp_path: Path):
    """FastAPI itself imports the OpenTelemetry API; the SDK and exporter stay out."""
    script = (
        "import json, sys\n"
        "from dari.app import Dari\n"
        "from dari.config import Settings\n"
        "from dari.server.app import create_app\n"
        "settings = Settings()\n"
        "app = create_app(settings, Dari(settings))\n"
        "mods = [m for m in sys.modules if m.startswith(('opentelemetry.sdk',"
        " 'opentelemetry.exporter', 'dari.server.otel'))]\n"
        "print(json.dumps({'modules': mods,"
        " 'middleware': [m.cls.__name__ for m in app.user_middleware]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["modules"] == []
    assert seen["middleware"] == ["BaseHTTPMiddleware"]

"""Prometheus metrics of one server process (a registry per app, so tests can make several)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from dari.types import Answer

_STAGES = ("retrieve", "guard.context", "first_token", "generate", "total")


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    stage: Histogram
    tokens: Counter
    answers: Counter
    cache: Counter
    verdicts: Counter
    errors: Counter

    def observe(self, answer: Answer) -> None:
        trace = answer.trace
        self.answers.labels(trace.collection, answer.outcome.value).inc()
        for name in _STAGES:
            if name in trace.timings_ms:
                self.stage.labels(name).observe(trace.timings_ms[name] / 1000)
        self.tokens.labels("prompt").inc(trace.prompt_tokens)
        self.tokens.labels("completion").inc(trace.completion_tokens)
        if trace.cache is not None:
            self.cache.labels(trace.cache.lookup).inc()
        for v in trace.verdicts:
            if v.flagged:
                self.verdicts.labels(v.stage.value, v.guard, v.action.value).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def make_metrics() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        registry=r,
        requests=Counter(
            "dari_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        ),
        latency=Histogram(
            "dari_http_request_seconds", "HTTP request latency", ["route"], registry=r
        ),
        stage=Histogram("dari_stage_seconds", "Time per pipeline step", ["stage"], registry=r),
        tokens=Counter("dari_llm_tokens", "LLM tokens", ["kind"], registry=r),
        answers=Counter(
            "dari_answers", "Answers by outcome", ["collection", "outcome"], registry=r
        ),
        cache=Counter(
            "dari_cache_lookups", "Answer cache lookups by result", ["result"], registry=r
        ),
        verdicts=Counter(
            "dari_guard_flags", "Flagged guard verdicts", ["stage", "guard", "action"], registry=r
        ),
        errors=Counter("dari_errors", "Errors answered, by type", ["type"], registry=r),
    )

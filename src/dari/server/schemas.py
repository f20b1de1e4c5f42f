"""HTTP request and response bodies of the native API (pydantic at the edge only)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dari.types import Answer


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryIn(_Body):
    question: str = Field(..., min_length=1, max_length=4000)
    collection: str
    top_k: int | None = Field(None, ge=1, le=50)
    filters: dict[str, str] | None = None
    history: list[tuple[str, str]] = Field(default_factory=list, max_length=20)
    session: str = Field("", max_length=200, description="Keeps a user in one A/B prompt arm.")


class FeedbackIn(_Body):
    trace_id: str = Field(..., min_length=1, max_length=64)
    thumb: Literal["up", "down"] | None = None
    rating: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=8000)
    correction: str | None = Field(None, max_length=8000)
    approve: bool = False
    signal: Literal["copy", "regenerate", "rephrase"] | None = None


def answer_body(answer: Answer) -> dict[str, Any]:
    """An answer as the API returns it: text, outcome, citations, trace id, warnings, cache."""
    trace = answer.trace
    return {
        "answer": answer.text,
        "outcome": answer.outcome.value,
        "citations": [dataclasses.asdict(c) for c in answer.citations],
        "trace_id": trace.id,
        "warnings": list(answer.warnings),
        "prompt_version": trace.prompt_version,
        "cache": dataclasses.asdict(trace.cache) if trace.cache else None,
        "guards": [
            {"stage": v.stage.value, "guard": v.guard, "action": v.action.value, "rule": v.rule}
            for v in trace.verdicts
            if v.flagged
        ],
        "timings_ms": dict(trace.timings_ms),
    }

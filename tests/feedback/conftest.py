"""Traces made by the real pipeline (real store, BM25 and analyzer; fake embedder and LLM)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import STORE_BACKENDS

from dari.app import Dari
from dari.feedback.store import FeedbackStore
from dari.testing import FakeGenerator

Ask = Callable[..., str]


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """Every feedback test runs on SQLite and on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def ask(dari: Dari, corpus: Path, fake_generator: FakeGenerator) -> Ask:
    """`ask(question, answer=None, collection="hr")` → the trace id of a real answer; without an
    answer the model is not asked (an abstention, for questions the corpus does not cover)."""
    ingested: set[str] = set()

    def run(question: str, answer: str | None = None, collection: str = "hr") -> str:
        if collection not in ingested:
            dari.ingest([corpus], collection)
            ingested.add(collection)
        if answer is not None:
            fake_generator.enqueue(answer)
        return dari.ask(question, collection).trace.id

    return run


@pytest.fixture
def feedback(dari: Dari) -> FeedbackStore:
    return FeedbackStore(dari.store)

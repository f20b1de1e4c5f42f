"""Query transformation: parsing the LLM's rewrites, remembering them, and searching with them."""

from __future__ import annotations

from pathlib import Path

from dari.app import Dari
from dari.config import RetrievalSettings
from dari.retrieve.transform import QueryTransformer, Variant
from dari.testing import FakeGenerator


def test_multi_query_keeps_three_clean_rewrites() -> None:
    t = QueryTransformer("multi-query", FakeGenerator)
    reply = (
        "1. refund policy\n2) money back rules\n- refund policy\n\nWhat is X?\n* return window\n"
    )
    assert [v.text for v in t.parse("What is X?", reply)] == [
        "refund policy",
        "money back rules",
        "return window",
    ]
    assert all(v.lexical and not v.as_passage for v in t.parse("q", "a\nb"))


def test_step_back_keeps_one_question() -> None:
    t = QueryTransformer("step-back", FakeGenerator)
    assert t.parse("q", '"What are the leave rules?"\nmore') == (
        Variant("What are the leave rules?", lexical=True, as_passage=False),
    )


def test_hyde_is_one_passage_for_the_dense_search_only() -> None:
    t = QueryTransformer("hyde", FakeGenerator)
    (v,) = t.parse("q", "Refunds are paid\nwithin 30 days.")
    assert v == Variant("Refunds are paid within 30 days.", lexical=False, as_passage=True)
    assert t.parse("q", "  ") == ()


def test_the_same_question_costs_one_llm_call() -> None:
    gen = FakeGenerator("a\nb", "c\nd")
    t = QueryTransformer("multi-query", lambda: gen)
    first = t.expand("연차는 며칠인가요?")
    assert t.expand("연차는 며칠인가요?") == first
    assert len(gen.seen) == 1
    assert gen.seen[0][1]["content"].endswith("질문: 연차는 며칠인가요?")  # Korean prompt


def test_a_rewrite_finds_what_the_question_alone_misses(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    rs = RetrievalSettings(dense_weight=0.0, top_k=1, min_coverage=0.0)
    plain = dari.retriever("c", rs).retrieve("money back?")
    assert not plain.hits  # no word of the question is in the corpus
    gen = FakeGenerator("refund request\ngetting money back")
    dari.__dict__["generator"] = gen
    rewritten = dari.retriever("c", rs.model_copy(update={"query_transform": "multi-query"}))
    r = rewritten.retrieve("money back?")
    assert r.hits[0].source.endswith("refunds.md")
    assert "transform" in r.timings_ms

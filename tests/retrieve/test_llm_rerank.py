"""Listwise LLM reranking: the prompt, reading the model's order, and keeping the tail."""

from __future__ import annotations

import pytest

from dari.retrieve.llm_rerank import LLMReranker, parse_order
from dari.testing import FakeGenerator
from dari.types import Hit


def hit(i: int) -> Hit:
    return Hit(
        f"c{i}", f"s{i}", "d", 1.0 / (i + 1), f"text {i}", "s.md", f"T{i}", child_text=f"child {i}"
    )


@pytest.mark.parametrize(
    ("reply", "order"),
    [
        ("3 > 1 > 2", [2, 0, 1]),
        ("[2] > [3]", [1, 2, 0]),  # left-out candidates follow in their order
        ("2, 2, 9, 0, 1", [1, 0, 2]),  # repeats and out-of-range numbers are ignored
        ("I cannot rank these.", [0, 1, 2]),
    ],
)
def test_parse_order(reply: str, order: list[int]) -> None:
    assert parse_order(reply, 3) == order


def test_reorders_the_window_and_keeps_the_tail() -> None:
    gen = FakeGenerator("3 > 1 > 2")
    hits = [hit(i) for i in range(5)]
    ranked = LLMReranker(lambda: gen, window=3).rerank("which one?", hits, 2)
    assert [h.chunk_id for h in ranked] == ["c2", "c0", "c1", "c3", "c4"]
    (messages,) = gen.seen
    assert "[3] T2: child 2" in messages[-1]["content"]
    assert "[4]" not in messages[-1]["content"]


def test_korean_question_gets_the_korean_instruction() -> None:
    gen = FakeGenerator("1 > 2")
    LLMReranker(lambda: gen, window=2).rerank("연차는 며칠인가요?", [hit(0), hit(1)], 2)
    assert "순위" in gen.seen[0][0]["content"] and gen.seen[0][-1]["content"].startswith("질문:")


def test_a_single_candidate_needs_no_call() -> None:
    gen = FakeGenerator()
    assert LLMReranker(lambda: gen).rerank("q", [hit(0)], 1) == [hit(0)]
    assert gen.seen == []

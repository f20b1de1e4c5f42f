"""The meaning checks on the kinds of pairs embeddings blur, in Korean and English."""

from __future__ import annotations

import pytest

from dari.cache.meaning import MeaningParser, differs
from dari.index.analyzer import Analyzer


@pytest.fixture(scope="module")
def parser() -> MeaningParser:
    return MeaningParser(Analyzer())


@pytest.mark.parametrize(
    ("a", "b", "check"),
    [
        ("환불이 되나요?", "환불이 안 되나요?", "negation"),
        ("환불이 되나요?", "환불이 되지 않나요?", "negation"),
        ("Can I cancel my order?", "Can I not cancel my order?", "negation"),
        ("Can I cancel my order?", "Why can't I cancel my order?", "negation"),
        ("2024년 보고서의 매출은?", "2025년 보고서의 매출은?", "number"),
        ("What was revenue in 2023?", "What was revenue in 2024?", "number"),
        ("세 명까지 예약할 수 있나요?", "3명까지 예약할 수 있나요?", ""),
        ("직원 4만7천 명", "직원 47,000명", ""),
        (
            "Is the refund limit above 100 euros?",
            "Is the refund limit below 100 euros?",
            "comparative",
        ),
        ("매출이 증가했나요?", "매출이 감소했나요?", "comparative"),
        ("How do I reach Samsung support?", "How do I reach Apple support?", "entity"),
        ("Flights from Seoul to Busan", "Flights from Busan to Seoul", "role"),
        ("철수가 영희를 좋아하나요?", "영희가 철수를 좋아하나요?", "role"),
        ("Does Google own YouTube?", "Does YouTube own Google?", "role"),
        ("How do I reset my password?", "How can I reset my password?", ""),
        ("How do I reset my password?", "how do i reset my password", ""),
        ("숙소가 정말 조용한가요?", "숙소는 정말 조용한가요?", ""),
    ],
)
def test_checks(parser: MeaningParser, a: str, b: str, check: str) -> None:
    assert differs(parser.parse(a), parser.parse(b), max_unmatched=1) == check


def test_extra_content_is_counted(parser: MeaningParser) -> None:
    a = parser.parse("What is the refund policy?")
    b = parser.parse("What is the refund policy for damaged electronics bought online?")
    assert differs(a, b, max_unmatched=1) == "content"
    assert differs(a, b, max_unmatched=4) == ""


def test_one_sided_superlative_counts_as_content(parser: MeaningParser) -> None:
    a = parser.parse("Which airline flies to Jeju?")
    b = parser.parse("Which airline flies to Jeju the most?")
    assert differs(a, b, max_unmatched=0) == "content"


def test_odd_text_parses(parser: MeaningParser) -> None:
    for text in ["", "???", "\u200b", "😀" * 50, "a" * 5000, "１２３ ＡＢＣ"]:
        parser.parse(text)

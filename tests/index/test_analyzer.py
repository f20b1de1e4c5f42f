"""Analyzer: Korean by morphemes, English stemmed without stopwords, and sentence splitting."""

from __future__ import annotations

import pytest

from dari.index.analyzer import Analyzer

# --- Korean ---------------------------------------------------------------------------------


def test_korean_particles_and_endings_are_dropped(analyzer: Analyzer) -> None:
    terms = analyzer.terms("연차 휴가는")
    assert terms == ["연차", "휴가"]


def test_korean_sentence_keeps_nouns_and_numbers(analyzer: Analyzer) -> None:
    terms = analyzer.terms("정규직 직원의 연차 휴가는 1년에 15일입니다.")
    assert {"정규직", "직원", "연차", "휴가", "15"} <= set(terms)
    for dropped in ("의", "는", "에", "입니다", "."):
        assert dropped not in terms


def test_korean_question_matches_statement_terms(analyzer: Analyzer) -> None:
    question = set(analyzer.terms("연차 휴가는 며칠인가요?"))
    statement = set(analyzer.terms("정규직 직원의 연차 휴가는 1년에 15일입니다."))
    assert {"연차", "휴가"} <= question & statement


def test_korean_terms_have_no_spaces(analyzer: Analyzer) -> None:
    for term in analyzer.terms(
        "병가는 연간 최대 10일까지 유급으로 쓸 수 있으며 진단서가 필요합니다."
    ):
        assert term and " " not in term


# --- English --------------------------------------------------------------------------------


def test_english_is_stemmed_and_lowercased(analyzer: Analyzer) -> None:
    assert analyzer.terms("Refunds") == analyzer.terms("refund") == ["refund"]
    assert analyzer.terms("running runs") == ["run", "run"]


def test_english_stopwords_are_dropped(analyzer: Analyzer) -> None:
    terms = analyzer.terms("How do I get a refund for the order?")
    assert terms == ["refund", "order"]


def test_english_only_stopwords_give_no_terms(analyzer: Analyzer) -> None:
    assert analyzer.terms("what is it and how") == []
    assert analyzer.terms("") == []


# --- mixed ----------------------------------------------------------------------------------


def test_english_words_inside_korean_are_stemmed(analyzer: Analyzer) -> None:
    terms = analyzer.terms("환불 policy는 refunds를 다룹니다")
    assert "환불" in terms
    assert "refund" in terms  # stemmed like the English analyzer would
    assert "refunds" not in terms
    assert analyzer.terms("policy")[0] in terms


def test_english_words_inside_korean_match_english_text(analyzer: Analyzer) -> None:
    mixed = set(analyzer.terms("Refunds 신청은 30일 이내에 가능합니다"))
    english = set(analyzer.terms("You can request a refund"))
    assert "refund" in mixed & english


# --- terms_many -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "texts",
    [
        ["연차 휴가는", "refunds", "", "환불 policies", "The office opens at 8 am."],
        ["only english here", "and more english"],
        ["한국어만 있습니다", "두 번째 한국어 문장입니다"],
        [],
    ],
)
def test_terms_many_equals_terms_per_text(analyzer: Analyzer, texts: list[str]) -> None:
    assert analyzer.terms_many(texts) == [analyzer.terms(t) for t in texts]


# --- sentences ------------------------------------------------------------------------------


def test_korean_sentences_by_kiwi_keep_line_breaks(analyzer: Analyzer) -> None:
    text = "첫 문장입니다. 두 번째 문장입니다.\n셋째 줄입니다"
    assert analyzer.sentences(text, "ko") == [
        "첫 문장입니다. ",
        "두 번째 문장입니다.\n",
        "셋째 줄입니다\n",
    ]


def test_english_sentences_keep_line_breaks(analyzer: Analyzer) -> None:
    text = "First one. Second one!\nThird line"
    assert analyzer.sentences(text, "en") == ["First one. ", "Second one!\n", "Third line\n"]


def test_sentences_keep_list_items_and_drop_blank_lines(analyzer: Analyzer) -> None:
    text = "- item one\n- item two\n\n\nPara."
    out = analyzer.sentences(text, "en")
    assert out == ["- item one\n", "- item two\n", "Para.\n"]
    assert "".join(out) == "- item one\n- item two\nPara.\n"


def test_english_line_in_korean_document_splits_by_punctuation(analyzer: Analyzer) -> None:
    out = analyzer.sentences("한국어 문장입니다.\nEnglish one. English two.", "ko")
    assert out == ["한국어 문장입니다.\n", "English one. ", "English two.\n"]


def test_sentences_rejoin_to_the_text(analyzer: Analyzer) -> None:
    text = "규정은 다음과 같습니다. 연차는 15일입니다. 병가는 10일입니다.\n문의는 인사팀으로."
    out = analyzer.sentences(text, "ko")
    assert len(out) >= 3
    assert "".join(out).split() == text.split()
    assert all(s.endswith((" ", "\n")) for s in out)

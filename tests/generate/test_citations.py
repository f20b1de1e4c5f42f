"""Citation markers in finished answers: keep valid ones, strip and count the rest, attach one."""

from __future__ import annotations

import pytest

from dari.generate.citations import best_source, process
from dari.types import Hit


def hit(text: str, n: int = 0) -> Hit:
    return Hit(f"c{n}", f"s{n}", f"d{n}", 1.0, text, f"src{n}.md", f"Title {n}")


HITS = [
    hit("Customers can request a refund within 30 days of purchase.", 1),
    hit("The office opens at 8 am and closes at 6 pm.", 2),
    hit("정규직 직원의 연차 휴가는 1년에 15일입니다.", 3),
]


# --- valid and invalid markers --------------------------------------------------------------


def test_valid_markers_are_kept_in_order_of_first_use() -> None:
    out = process("Open at 8 [2]. Refunds in 30 days [1]. Again [2].", 3)
    assert out.text == "Open at 8 [2]. Refunds in 30 days [1]. Again [2]."
    assert out.cited == (2, 1)
    assert out.invalid == 0
    assert not out.attached


@pytest.mark.parametrize(
    ("answer", "text", "invalid"),
    [
        ("Refunds in 30 days [1][9].", "Refunds in 30 days [1].", 1),
        ("Refunds in 30 days [9].", "Refunds in 30 days.", 1),
        ("Refunds [0] in 30 days [1].", "Refunds in 30 days [1].", 1),
        ("Refunds [4] [5] in 30 days [1].", "Refunds in 30 days [1].", 2),
    ],
)
def test_invalid_markers_are_stripped_and_counted(answer: str, text: str, invalid: int) -> None:
    out = process(answer, 3, attach=False)
    assert out.text == text
    assert out.invalid == invalid


@pytest.mark.parametrize(
    ("answer", "text", "cited", "invalid"),
    [
        ("Both [1, 3].", "Both [1][3].", (1, 3), 0),
        ("Both [1,3].", "Both [1][3].", (1, 3), 0),
        ("Both [1 , 2 ,3].", "Both [1][2][3].", (1, 2, 3), 0),
        ("Half [1, 7].", "Half [1].", (1,), 1),
        ("None [7, 8].", "None.", (), 2),
        ("Repeated [2, 2].", "Repeated [2].", (2,), 0),
    ],
)
def test_comma_lists(answer: str, text: str, cited: tuple[int, ...], invalid: int) -> None:
    out = process(answer, 3, attach=False)
    assert (out.text, out.cited, out.invalid) == (text, cited, invalid)


def test_marker_without_space_gets_one() -> None:
    assert process("Refunds[1].", 1).text == "Refunds [1]."


def test_brackets_that_are_not_citations_pass_through() -> None:
    answer = "See [see note], [a], [] and the year [2024] [1]."
    out = process(answer, 3, attach=False)
    assert out.text == answer
    assert out.cited == (1,)
    assert out.invalid == 0


def test_no_sources_makes_every_marker_invalid() -> None:
    out = process("Something [1].", 0, HITS)
    assert (out.text, out.cited, out.invalid, out.attached) == ("Something.", (), 1, False)


# --- attaching a source ---------------------------------------------------------------------


def test_uncited_answer_gets_the_best_source_attached() -> None:
    out = process("You can request a refund within 30 days.", 3, HITS)
    assert out.text == "You can request a refund within 30 days [1]."
    assert out.cited == (1,)
    assert out.attached


def test_attached_marker_goes_before_final_punctuation_or_at_the_end() -> None:
    assert process("Does the office open at 8?", 3, HITS).text == "Does the office open at 8 [2]?"
    assert process("the office opens at 8", 3, HITS).text == "the office opens at 8 [2]"
    assert process("연차 휴가는 15일입니다.", 3, HITS).text == "연차 휴가는 15일입니다 [3]."


def test_answer_with_only_invalid_markers_gets_a_source_attached() -> None:
    out = process("The office opens at 8 am [7].", 3, HITS)
    assert out.text == "The office opens at 8 am [2]."
    assert (out.cited, out.invalid, out.attached) == ((2,), 1, True)


def test_nothing_attached_when_cited_disabled_or_unrelated() -> None:
    plain = "You can request a refund within 30 days."
    assert not process(plain, 3, HITS, attach=False).attached
    assert process(plain, 3, HITS, attach=False).text == plain
    assert not process(plain, 3, ()).attached  # no hits given
    unrelated = process("Quantum chromodynamics!", 3, HITS)
    assert (unrelated.text, unrelated.cited, unrelated.attached) == (
        "Quantum chromodynamics!",
        (),
        False,
    )
    assert process("   ", 3, HITS).text == ""


def test_cited_answer_is_not_given_another_source() -> None:
    out = process("You can request a refund within 30 days [2].", 3, HITS)
    assert out.cited == (2,)
    assert not out.attached


# --- best_source ----------------------------------------------------------------------------


def test_best_source_by_word_overlap() -> None:
    assert best_source("refund within 30 days", HITS) == 1
    assert best_source("OFFICE Opens", HITS) == 2  # case-insensitive
    assert best_source("연차 휴가는", HITS) == 3


def test_best_source_ignores_one_letter_words_and_ties_go_first() -> None:
    assert best_source("a", [hit("a b c")]) == 0
    assert best_source("office refund", HITS) == 1  # one word each: the first wins
    assert best_source("nothing shared", HITS) == 0
    assert best_source("refund", []) == 0

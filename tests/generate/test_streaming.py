"""Streaming citation filter: markers held back until they close, invalid ones never shown."""

from __future__ import annotations

import pytest

from dari.generate.streaming import CitationFilter


def run(n_sources: int, pieces: list[str]) -> tuple[list[str], int]:
    """What the user sees for each piece (and the final flush), and the invalid count."""
    f = CitationFilter(n_sources)
    shown = [f.feed(p) for p in pieces]
    shown.append(f.flush())
    return shown, f.invalid


def streamed(n_sources: int, pieces: list[str]) -> tuple[str, int]:
    shown, invalid = run(n_sources, pieces)
    return "".join(shown), invalid


def squash(text: str) -> str:
    """Text without whitespace: where a dropped marker leaves its space is tested apart."""
    return "".join(text.split())


def test_plain_text_flows_through_unchanged() -> None:
    pieces = ["The office ", "opens at ", "8 am."]
    shown, invalid = run(2, pieces)
    assert "".join(shown) == "".join(pieces)
    assert all(shown[:-1])  # every piece shows text at once (a trailing space may wait)
    assert invalid == 0


def test_valid_marker_in_one_piece() -> None:
    assert streamed(2, ["Refunds take 30 days [1]."]) == ("Refunds take 30 days [1].", 0)


def test_invalid_marker_stripped_and_counted() -> None:
    assert streamed(2, ["Refunds [1][9] done."]) == ("Refunds [1] done.", 1)
    text, invalid = streamed(2, ["Refunds [0] done [3]."])
    assert squash(text) == "Refundsdone."
    assert invalid == 2


@pytest.mark.parametrize(
    ("marker", "expected", "invalid"),
    [("[1, 3]", "[1]", 1), ("[1,2]", "[1][2]", 0), ("[2, 2]", "[2]", 0), ("[5, 6]", "", 2)],
)
def test_comma_lists(marker: str, expected: str, invalid: int) -> None:
    text, count = streamed(2, [f"x {marker} y"])
    assert (squash(text), count) == (f"x{expected}y", invalid)


def test_marker_split_across_pieces_is_held_back() -> None:
    shown, invalid = run(2, ["Refunds [", "9", "] and [", "1", "]."])
    assert shown[0].rstrip() == "Refunds"  # the opening bracket waits
    assert shown[1] == ""
    assert squash("".join(shown)) == "Refundsand[1]."
    assert "[9" not in "".join(shown[:3])
    assert invalid == 1


def test_valid_marker_split_across_pieces_is_shown_whole() -> None:
    shown, invalid = run(2, ["Refunds [", "1", "] ok"])
    assert shown[0].rstrip() == "Refunds"
    assert shown[1] == ""
    assert "".join(shown) == "Refunds [1] ok"
    assert invalid == 0


TEXT = "연차는 15일입니다 [1]. Refunds [2, 7] apply [9][1]. See [see note] or [a]. End [3]"


@pytest.mark.parametrize("n_sources", [0, 1, 2, 3])
def test_any_split_gives_the_same_text(n_sources: int) -> None:
    whole = streamed(n_sources, [TEXT])
    assert streamed(n_sources, list(TEXT)) == whole  # one character at a time
    for cut in range(1, len(TEXT)):
        assert streamed(n_sources, [TEXT[:cut], TEXT[cut:]]) == whole, cut


def test_whole_text_result() -> None:
    text, invalid = streamed(2, [TEXT])
    assert squash(text) == squash(
        "연차는 15일입니다 [1]. Refunds [2] apply [1]. See [see note] or [a]. End"
    )
    assert invalid == 3


def test_bracket_that_is_not_a_citation_passes_through() -> None:
    shown, invalid = run(2, ["see [", "see note] here"])
    assert "".join(shown) == "see [see note] here"
    assert invalid == 0
    assert run(2, ["see [see", " note]"])[0][0] == "see [see"  # not held: cannot be a marker


def test_unclosed_marker_is_released_on_flush() -> None:
    shown, invalid = run(2, ["the end [1"])
    assert "[" not in shown[0]
    assert "".join(shown) == "the end [1"
    assert invalid == 0


def test_flush_twice_is_empty() -> None:
    f = CitationFilter(1)
    f.feed("x [")
    assert f.flush() == " ["
    assert f.flush() == ""


def test_long_bracket_of_digits_is_not_held_forever() -> None:
    f = CitationFilter(2)
    first = f.feed("[" + "1" * 100)
    assert first == "[" + "1" * 100


def test_long_comma_list_streamed_in_small_pieces_is_filtered() -> None:
    text = "Sources [1, 2, 3, 4, 5, 6] end."
    assert streamed(3, [text]) == ("Sources [1][2][3] end.", 3)
    assert streamed(3, list(text)) == ("Sources [1][2][3] end.", 3)


def test_invalid_marker_leaves_no_stray_space() -> None:
    assert streamed(2, ["within 30 days [9]."]) == ("within 30 days.", 1)

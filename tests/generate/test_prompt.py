"""The grounded prompt templates: versions, languages, numbered sources."""

from __future__ import annotations

import pytest

from dari.errors import ConfigError
from dari.generate.prompt import DEFAULT_VERSION, TEMPLATES, template_for
from dari.types import Hit


def hit(text: str, title: str, heading: str = "", page: int | None = None) -> Hit:
    return Hit("c", "s", "d", 1.0, text, "src", title, heading, page)


@pytest.mark.parametrize("version", sorted({v for v, _ in TEMPLATES}))
def test_every_version_has_korean_and_english(version: str) -> None:
    assert template_for("ko", version).lang == "ko"
    assert template_for("en", version).lang == "en"
    assert template_for("fr", version).lang == "en"  # others fall back to English


def test_sources_are_numbered_with_place_and_no_repeated_title() -> None:
    t = template_for("en")
    data = t.data(
        "When?", [hit("Opens at 8.", "Guide", "Guide > Hours", 3), hit("Closed Sundays.", "FAQ")]
    )
    assert data.startswith("[1] Guide — Hours (p. 3)\nOpens at 8.")
    assert "[2] FAQ\nClosed Sundays." in data
    assert data.endswith("Question: When?")


def test_fixed_prefix_is_the_same_for_every_question() -> None:
    t = template_for("ko")
    a = t.messages("첫 질문", [hit("가", "A")])
    b = t.messages("둘째 질문", [hit("나", "B")])
    fixed = 1 + 2 * len(t.demonstrations)
    assert a[:fixed] == b[:fixed] and a[fixed:] != b[fixed:]
    assert a[-1]["role"] == "user" and "질문: 첫 질문" in a[-1]["content"]


def test_demonstrations_answer_in_sentences_with_citations() -> None:
    for (version, _), t in TEMPLATES.items():
        for _, answer in t.demonstrations:
            assert answer == t.dont_know or ("[1]" in answer or "[2]" in answer), version


def test_unknown_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown prompt version 'v9'"):
        template_for("en", "v9")
    assert DEFAULT_VERSION in {v for v, _ in TEMPLATES}

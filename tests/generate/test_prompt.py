"""The grounded prompt templates: built-in versions, languages, numbered sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dari.errors import ConfigError
from dari.generate.prompt import template_for
from dari.prompts.builtin import builtin_versions
from dari.prompts.refs import DEFAULT_PROMPT
from dari.types import Hit

GOLDEN = Path(__file__).parent / "golden" / "grounded.json"


def hit(text: str, title: str, heading: str = "", page: int | None = None) -> Hit:
    return Hit("c", "s", "d", 1.0, text, "src", title, heading, page)


@pytest.mark.parametrize("key", sorted(json.loads(GOLDEN.read_text(encoding="utf-8"))))
def test_the_prompt_files_render_what_the_code_rendered_byte_for_byte(key: str) -> None:
    """grounded-v1/v2 were Python strings until the registry; the golden file holds what they
    rendered, and the files under the new names (and the old ones) must render the same."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))[key]
    old_name, lang = key.split("/")
    hits = [
        Hit("c1", "s1", "d1", 1.0, "  Opens at 8 am.\n", "src/a.md", "Guide", "Guide > Hours", 3),
        Hit("c2", "s2", "d2", 0.5, "연차는 15일입니다.", "src/b.md", "휴가 규정", "", None),
    ]
    new_name = old_name.replace("-v", "@")
    for name in (old_name, new_name):
        t = template_for(lang, name)
        assert t.messages("  When does it open? ", hits) == golden["messages"]
        assert t.dont_know == golden["dont_know"]
        assert (t.version, t.lang) == (new_name, lang)


@pytest.mark.parametrize("ref", sorted(builtin_versions()))
def test_every_version_has_korean_and_english(ref: str) -> None:
    assert template_for("ko", ref).lang == "ko"
    assert template_for("en", ref).lang == "en"
    assert template_for("fr", ref).lang == "en"  # others fall back to English


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
    for version in builtin_versions().values():
        for lang in version.langs:
            t = version.template(lang)
            for _, answer in t.demonstrations:
                assert answer == t.dont_know or ("[1]" in answer or "[2]" in answer), version.ref


def test_the_default_is_the_latest_grounded_and_unknown_is_a_config_error() -> None:
    assert template_for("en").version == DEFAULT_PROMPT == "grounded@2"
    assert template_for("en", "grounded").version == "grounded@2"  # a bare name: its latest
    with pytest.raises(ConfigError, match="unknown prompt 'v9'"):
        template_for("en", "v9")
    with pytest.raises(ConfigError, match="unknown prompt 'grounded@9'"):
        template_for("en", "grounded@9")

"""`dari prompt show` and `diff` text: the parts in reading order, diffed per language."""

from __future__ import annotations

import pytest

from dari.errors import InputError
from dari.prompts.builtin import builtin_versions
from dari.prompts.text import diff, parts_text


def test_parts_are_shown_in_the_order_the_model_reads_them() -> None:
    text = parts_text(builtin_versions()["grounded@1"], "ko")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## role", "## directive", "## output_format"]
    assert headings[3:5] == ["## demonstrations[1].user", "## demonstrations[1].assistant"]
    assert headings[-3:] == ["## data.source", "## data.question", "## dont_know"]
    assert "질문: {question}" in text


def test_diff_shows_what_changed_per_language() -> None:
    v = builtin_versions()
    out = diff(v["grounded@1"], v["grounded@2"])
    assert "--- grounded@1 [en]\n+++ grounded@2 [en]\n" in out
    assert "--- grounded@1 [ko]\n+++ grounded@2 [ko]\n" in out
    added = [line for line in out.splitlines() if line.startswith("+") and "North Gate" in line]
    assert added and "+## demonstrations[3].user" in out.splitlines()
    assert diff(v["grounded@2"], v["grounded@2"]) == ""
    only_ko = diff(v["grounded@1"], v["grounded@2"], ["ko"])
    assert "[en]" not in only_ko and "+[2] 남문" in only_ko


def test_a_language_neither_has_is_an_input_error() -> None:
    v = builtin_versions()
    with pytest.raises(InputError, match=r"grounded@2 has no \[fr\] parts \(it has en, ko\)"):
        parts_text(v["grounded@2"], "fr")
    with pytest.raises(InputError, match=r"neither grounded@1 nor grounded@2 has \[fr\]"):
        diff(v["grounded@1"], v["grounded@2"], ["fr"])

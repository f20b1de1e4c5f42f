"""Example rows from public QA sets are in the shape `dari feedback export` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dari.errors import InputError
from dari.generate.prompt import template_for
from dari.tune.examples import build

DATA = Path(__file__).parent / "data"


def test_sft_rows_are_dari_prompts_with_cited_answers() -> None:
    rows = build("halueval", DATA, "sft", n=30, abstain=0.2, seed=1)
    t = template_for("en")
    assert len(rows) == 30
    for row in rows:
        system, user, answer = row["messages"]
        assert system == {"role": "system", "content": t.system}
        assert user["content"].startswith("[1] Knowledge") and "Question: " in user["content"]
        assert answer["content"] == t.dont_know or answer["content"].endswith("[1].")
    abstained = [r for r in rows if r["messages"][-1]["content"] == t.dont_know]
    assert 0 < len(abstained) < 15


def test_dpo_prefers_the_right_answer_and_abstention() -> None:
    rows = build("halueval", DATA, "dpo", n=20, abstain=0.3, seed=2)
    t = template_for("en")
    for row in rows:
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        assert row["rejected"][0]["content"] != t.dont_know
    with_demos = build("halueval", DATA, "dpo", n=2, demonstrations=True)
    assert len(with_demos[0]["prompt"]) == 1 + 2 * len(t.demonstrations) + 1


def test_the_same_seed_gives_the_same_rows() -> None:
    assert build("halueval", DATA, "sft", n=10, seed=5) == build(
        "halueval", DATA, "sft", n=10, seed=5
    )


def test_unknown_set_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown example set"):
        build("squad", DATA, "sft")
    with pytest.raises(InputError, match="--data-dir"):
        build("halueval", tmp_path, "sft")

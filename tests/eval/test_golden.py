"""Golden sets: good lines become items, bad lines are reported with their numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dari.errors import InputError
from dari.eval.golden import load_golden, require_items


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fields_and_defaults(tmp_path: Path):
    path = _write(
        tmp_path / "g.jsonl",
        [
            json.dumps({"question": "How long is the refund window?", "answer": "30 days"}),
            json.dumps(
                {
                    "id": "k1",
                    "question": "연차 휴가는 며칠인가요?",
                    "answers": ["15일", "1년에 15일"],
                    "gold_ids": ["leave"],
                    "tags": "hr",
                }
            ),
            json.dumps({"question": "What is the CEO's salary?", "unanswerable": True}),
        ],
    )
    gold = load_golden(path)
    assert gold.skipped == ()
    first, second, third = gold.items
    assert (first.id, first.lang, first.answers) == ("1", "en", ("30 days",))
    assert (second.id, second.lang, second.tags, second.gold_ids) == (
        "k1",
        "ko",
        ("hr",),
        ("leave",),
    )
    assert second.answers == ("15일", "1년에 15일")
    assert third.unanswerable and third.answers == ()


def test_feedback_export_rows_are_read(tmp_path: Path):
    row = {
        "id": "trace1",
        "question": "When is my refund paid?",
        "answer": "Within 5 business days [1].",
        "collection": "c",
        "sources": [{"source": "/docs/refunds.md", "chunk_id": "x"}],
        "outcome": "answered",
    }
    gold = load_golden(_write(tmp_path / "g.jsonl", [json.dumps(row)]))
    assert gold.items[0].gold_ids == ("/docs/refunds.md",)
    assert gold.items[0].id == "trace1"


def test_bad_lines_are_skipped_with_their_numbers(tmp_path: Path):
    ok = json.dumps({"question": "q?", "answer": "a"})
    path = _write(
        tmp_path / "g.jsonl",
        [
            ok,
            '{"question": "broken',
            json.dumps({"answer": "no question"}),
            json.dumps({"question": "no answer"}),
            json.dumps({"question": "q2?", "answer": "a", "lang": "fr"}),
            json.dumps({"question": "q3?", "answer": "  "}),
            "",
            json.dumps({"question": "q4?", "answers": []}),
            json.dumps({"id": "1", "question": "dup?", "answer": "a"}),
            json.dumps({"question": "q5?", "answer": "b", "lang": "ko"}),
        ],
    )
    gold = load_golden(path)
    assert [i.line for i in gold.items] == [1, 10]
    reasons = {s.line: s.reason for s in gold.skipped}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 8, 9]
    assert reasons[2].startswith("not JSON")
    assert "question" in reasons[3]
    assert "answer" in reasons[4]
    assert "unknown language 'fr'" in reasons[5]
    assert "empty reference" in reasons[6] and "empty reference" in reasons[8]
    assert "duplicate id" in reasons[9]


def test_missing_file_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError):
        load_golden(tmp_path / "nope.jsonl")


def test_a_set_without_one_usable_line_is_refused_with_the_first_reasons(tmp_path: Path):
    bad = _write(tmp_path / "bad.jsonl", ["nope", json.dumps({"question": "q?"}), "", "{", "[1]"])
    with pytest.raises(InputError) as refused:
        require_items(load_golden(bad))
    message = refused.value.message
    assert message.startswith(f"no usable line in the golden set {bad}: all 4 are bad (line 1: ")
    assert "; line 2: missing field 'answer'" in message and message.endswith(", …)")
    with pytest.raises(InputError, match="has no items"):
        require_items(load_golden(_write(tmp_path / "empty.jsonl", ["", " "])))
    some = load_golden(
        _write(tmp_path / "ok.jsonl", ["nope", json.dumps({"question": "q?", "answer": "a"})])
    )
    assert require_items(some) is some

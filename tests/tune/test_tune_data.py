"""Training files: every bad line reported with its number, duplicates dropped, a stable split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dari.errors import InputError
from dari.tune.data import load_rows, split
from dari.tune.examples import build

DATA = Path(__file__).parent / "data"


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_rows_from_real_data_load_cleanly(tmp_path: Path) -> None:
    sft = _write(tmp_path / "sft.jsonl", build("halueval", DATA, "sft", n=40))  # type: ignore[arg-type]
    rows, skipped, sha = load_rows(sft, "sft")
    assert len(rows) + len(skipped) == 40 and len(sha) == 64
    assert all(s.reason.startswith("duplicate") for s in skipped)  # HaluEval repeats a few rows
    first = rows[0].to_trl()
    assert first["prompt"][0]["role"] == "system" and first["prompt"][-1]["role"] == "user"
    assert first["completion"][0]["role"] == "assistant"
    dpo = _write(tmp_path / "dpo.jsonl", build("halueval", DATA, "dpo", n=40))  # type: ignore[arg-type]
    pairs, _, _ = load_rows(dpo, "dpo")
    assert set(pairs[0].to_trl()) == {"prompt", "chosen", "rejected"}


def test_bad_lines_are_reported_with_numbers_and_the_rest_kept(tmp_path: Path) -> None:
    good = build("halueval", DATA, "sft", n=3, abstain=0)
    path = _write(
        tmp_path / "mixed.jsonl",
        [
            good[0],
            "{not json",
            {"text": "no messages"},
            {"messages": [{"role": "user", "content": "q"}]},  # no answer
            {
                "messages": [
                    {"role": "robot", "content": "x"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            {"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]},
            good[0],  # duplicate of line 1
            "[1, 2]",
            good[1],
        ],
    )
    rows, skipped, _ = load_rows(path, "sft")
    assert [r.line for r in rows] == [1, 9]
    reasons = {s.line: s.reason for s in skipped}
    assert reasons[2].startswith("not JSON")
    assert reasons[3] == "missing field: 'messages'"
    assert "last message must be the assistant" in reasons[4]
    assert "role" in reasons[5] and "empty message" in reasons[6]
    assert reasons[7] == "duplicate: same row as line 1"
    assert reasons[8] == "not a JSON object"


def test_dpo_rows_need_a_real_preference(tmp_path: Path) -> None:
    prompt = [{"role": "user", "content": "Who?"}]
    path = _write(
        tmp_path / "dpo.jsonl",
        [
            {"prompt": prompt, "chosen": "Ann [1].", "rejected": "Bob."},
            {"prompt": prompt, "chosen": "Ann [1]."},
            {"prompt": prompt, "chosen": "Same.", "rejected": "Same."},
            {"prompt": [{"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"},
        ],
    )
    rows, skipped, _ = load_rows(path, "dpo")
    assert len(rows) == 1 and rows[0].rejected[0]["content"] == "Bob."
    assert [s.reason for s in skipped] == [
        "missing field: 'rejected'",
        "no preference: chosen and rejected are the same text",
        "bad message: 'prompt' must end with a user message",
    ]


@pytest.mark.parametrize("content", ["", "\n\n", '{"oops": 1}\n'])
def test_a_file_without_usable_rows_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match="no usable sft rows"):
        load_rows(path, "sft")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_rows(tmp_path / "missing.jsonl", "sft")
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match="not UTF-8"):
        load_rows(binary, "sft")


def test_split_is_stable_and_bounded(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", build("halueval", DATA, "sft", n=100))  # type: ignore[arg-type]
    rows, _, _ = load_rows(path, "sft")
    train, held = split(rows, 0.1, 100)
    _, again_held = split(list(reversed(rows)), 0.1, 100)
    assert {r.key for r in held} == {r.key for r in again_held}
    assert len(held) == round(len(rows) * 0.1) and len(train) + len(held) == len(rows)
    assert len(split(rows, 0.5, 4)[1]) == 4
    assert split(rows[:1], 0.5, 4) == (rows[:1], [])

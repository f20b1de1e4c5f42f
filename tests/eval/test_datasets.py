"""Reading eval sets: BEIR and QA folders, and precise errors for broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dari.errors import InputError
from dari.eval.datasets import load_set


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    _jsonl(root / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "alpha"}])
    _jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "alpha?"}, {"_id": "q2", "text": "b"}])
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td1\t0\nq3\td1\t1\n"
    )
    return root


def test_beir_keeps_judged_queries_with_graded_relevance(beir: Path):
    s = load_set(beir)
    assert s.kind == "beir" and s.lang == "en" and s.name == "tiny-beir"
    assert [(q.id, q.gold) for q in s.queries] == [("q1", {"d1": 2})]  # q2: only a 0 judgement
    assert s.skipped == {"no query text": 1}  # q3 is judged but has no text
    assert len(s.fingerprint) == 64


def test_unknown_split_names_the_ones_there(beir: Path):
    with pytest.raises(InputError) as err:
        load_set(beir, split="dev")
    assert "split 'dev'" in err.value.message and "test" in err.value.hint


def test_qa_folder_in_autorag_shape(tmp_path: Path):
    _jsonl(tmp_path / "corpus.jsonl", [{"doc_id": "p1", "contents": "연차는 15일입니다."}])
    _jsonl(
        tmp_path / "qa.jsonl",
        [
            {"qid": "a", "query": "연차는 며칠?", "gold_doc_ids": ["p1"], "generation_gt": "15일"},
            {"question": "근거 없음", "gold_ids": []},
        ],
    )
    s = load_set(tmp_path)
    assert s.kind == "qa" and s.lang == "ko"
    (q,) = s.queries
    assert (q.id, q.text, q.gold, q.answers) == ("a", "연차는 며칠?", {"p1": 1}, ("15일",))
    assert s.skipped == {"no gold ids": 1}


def test_limit_keeps_the_first_queries(tmp_path: Path):
    _jsonl(tmp_path / "corpus.jsonl", [{"id": "p", "text": "x"}])
    _jsonl(tmp_path / "qa.jsonl", [{"question": f"q{i}", "gold_ids": ["p"]} for i in range(5)])
    assert [q.text for q in load_set(tmp_path, limit=2).queries] == ["q0", "q1"]


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({}, "no corpus.jsonl"),
        ({"corpus.jsonl": "{}\n"}, "neither a BEIR set"),
        (
            {"corpus.jsonl": "{}\n", "qa.jsonl": '{"question": "q", "gold_ids": ["a"]}\n{oops\n'},
            "line 2: not JSON",
        ),
        ({"corpus.jsonl": "{}\n", "qa.jsonl": '{"gold_ids": ["a"]}\n'}, "line 1: no question"),
        ({"corpus.jsonl": "{}\n", "qa.jsonl": '{"question": "q"}\n'}, "no judged queries"),
    ],
)
def test_broken_sets_say_what_is_wrong(tmp_path: Path, files: dict[str, str], needle: str):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as err:
        load_set(tmp_path)
    assert needle in err.value.message


def test_missing_folder(tmp_path: Path):
    with pytest.raises(InputError, match="eval set not found"):
        load_set(tmp_path / "nope")

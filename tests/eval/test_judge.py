"""LLM-as-judge with a fake generator: rubric prompts, robust parsing, position swapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dari.eval import judge as jd
from dari.eval.rubrics import RUBRICS
from dari.testing import FakeGenerator

ITEM = jd.Item("q1", "What is the default chunk size?", "512 tokens [1].", "en", "512 tokens", "…")
KO = jd.Item("q2", "기본 청크 크기는?", "512 토큰입니다 [1].", "ko", "512 토큰", "…")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"reason": "matches", "score": 5}', 5),
        ('Sure!\n```json\n{"reason": "half", "score": "3"}\n```', 3),
        ('{"score": 4.0, "reason": "x"} and {"score": 1}', 4),
        ("I would give this a 2 out of 5.", 2),
        ('{"reason": "bad", "score": 9} but really 4', 4),
        ("Score: 10/10", None),
        ("no idea", None),
        ("", None),
    ],
)
def test_parse_score(raw: str, expected: int | None) -> None:
    assert jd.parse_score(raw)[0] == expected


def test_score_keeps_reason_and_raw() -> None:
    gen = FakeGenerator('Here: {"reason": "same fact", "score": 5}')
    s = jd.score(gen, RUBRICS["correctness"], ITEM)
    assert (s.score, s.reason) == (5, "same fact")
    assert "same fact" in s.raw


def test_unparseable_output_is_null_with_raw() -> None:
    s = jd.score(FakeGenerator("the answer looks fine"), RUBRICS["relevance"], ITEM)
    assert s.score is None and s.raw == "the answer looks fine"


def test_prompt_holds_criteria_steps_and_scale() -> None:
    gen = FakeGenerator('{"reason": "", "score": 4}')
    jd.score(gen, RUBRICS["correctness"], ITEM)
    system, user = (m["content"] for m in gen.seen[0])
    rubric = RUBRICS["correctness"]
    assert '"score"' in system
    assert rubric.criteria["en"] in user
    assert all(step in user for step in rubric.steps["en"])
    assert "5: fully right and complete" in user
    assert "512 tokens" in user and ITEM.question in user


def test_korean_item_uses_the_korean_rubric() -> None:
    gen = FakeGenerator('{"reason": "같음", "score": 5}')
    jd.score(gen, RUBRICS["faithfulness"], KO)
    system, user = (m["content"] for m in gen.seen[0])
    assert "평가자" in system
    assert RUBRICS["faithfulness"].criteria["ko"] in user
    assert "## 평가 단계" in user and "## 출처" in user
    assert RUBRICS["faithfulness"].criteria["en"] not in user


def test_missing_reference_is_not_judged() -> None:
    gen = FakeGenerator()
    item = jd.Item("q", "question", "answer")
    s = jd.score(gen, RUBRICS["correctness"], item)
    assert s.score is None and "reference" in s.reason and gen.seen == []


def test_pair_win_needs_both_orders() -> None:
    # (A, B): answer 2 (= B) wins; (B, A): answer 1 (= B) wins → B, consistent
    gen = FakeGenerator('{"winner": "2"}', '{"winner": "1"}')
    v = jd.pair(gen, RUBRICS["correctness"], ITEM, "A text", "B text")
    assert (v.winner, v.first, v.second, v.consistent) == ("B", "B", "B", True)
    first_user, second_user = gen.seen[0][1]["content"], gen.seen[1][1]["content"]
    assert first_user.index("A text") < first_user.index("B text")
    assert second_user.index("B text") < second_user.index("A text")


def test_pair_position_bias_is_a_tie() -> None:
    # the judge always picks the first answer shown: A, then B → inconsistent → tie
    gen = FakeGenerator('{"winner": "1"}', '{"winner": "1"}')
    v = jd.pair(gen, RUBRICS["relevance"], ITEM, "A text", "B text")
    assert (v.winner, v.first, v.second, v.consistent) == ("tie", "A", "B", False)


def test_pair_summary_counts_consistency() -> None:
    gen = FakeGenerator(
        '{"winner": "2"}', '{"winner": "1"}',  # B, consistent
        '{"winner": "1"}', '{"winner": "1"}',  # position bias → tie
        '{"winner": "tie"}', '{"winner": "tie"}',  # tie, consistent
        "hmm", '{"winner": "2"}',  # unreadable → tie
    )  # fmt: skip
    verdicts = [jd.pair(gen, RUBRICS["relevance"], ITEM, "a", "b") for _ in range(4)]
    s = jd.pair_summary(verdicts)
    assert (s["wins_b"], s["wins_a"], s["ties"], s["unreadable"]) == (1, 0, 3, 1)
    assert s["position_consistency"] == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('{"winner": 2}', "2"), ('{"winner": "Answer 1"}', "1"), ("It's a tie.", "tie"), ("?", None)],
)
def test_parse_winner(raw: str, expected: str | None) -> None:
    assert jd.parse_winner(raw) == expected


def test_item_from_report_joins_references_and_sources() -> None:
    row = {"id": 3, "question": "q", "answer": "a", "lang": "ko", "references": ["x", "y"],
           "sources": [{"text": "s1"}, "s2"]}  # fmt: skip
    item = jd.item_from_report(row)
    assert (item.id, item.reference, item.lang) == ("3", "x\ny", "ko")
    assert item.sources == "[1] s1\n\n[2] s2"


def test_judged_run_and_merge() -> None:
    run = {"run": {"model": "m"}, "items": [{"id": "q1", "metrics": {"token_f1": 0.5}}]}
    one = jd.judged_run(run, RUBRICS["relevance"], [jd.Score("q1", 4, "ok", "raw")], "fake")
    two = jd.judged_run(run, RUBRICS["correctness"], [jd.Score("q1", None, "", "??")], "fake")
    merged = jd.merge_judged(one, two)
    assert merged["items"][0]["metrics"] == {
        "token_f1": 0.5, "judge_relevance": 4, "judge_correctness": None,
    }  # fmt: skip
    assert set(merged["judges"]) == {"relevance", "correctness"}
    assert merged["judges"]["correctness"]["unreadable"] == 1


def test_cli_judge_writes_judge_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dari.cli import eval_runs
    from dari.cli.main import app

    run = tmp_path / "run"
    run.mkdir()
    items = [
        {"id": "q1", "question": "q", "answer": "a", "lang": "en", "references": ["a"],
         "metrics": {}},
        {"id": "q2", "question": "질문", "answer": "답", "lang": "ko", "references": ["답"],
         "metrics": {}},
    ]  # fmt: skip
    (run / "report.json").write_text(json.dumps({"run": {}, "items": items}))
    gen = FakeGenerator('{"reason": "ok", "score": 5}', '{"reason": "no", "score": 2}')

    class _Store:
        def trace_prompt(self, _trace_id: str) -> None:
            return None

    class _Dari:
        store = _Store()

        def close(self) -> None:
            pass

    monkeypatch.setattr(eval_runs, "_judge", lambda *_: (_Dari(), gen))
    monkeypatch.setenv("DARI_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["eval", "judge", str(run), "--rubric", "correctness"])
    assert result.exit_code == 0, result.output
    data = json.loads((run / "judge.json").read_text())
    assert [i["metrics"]["judge_correctness"] for i in data["items"]] == [5, 2]
    assert data["judges"]["correctness"]["mean"] == 3.5
    assert "평가 기준" in gen.seen[1][1]["content"]

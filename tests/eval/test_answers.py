"""`dari eval answers` over the small corpus with the fake embedder and LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dari.app import Dari
from dari.errors import InputError
from dari.eval import answer_report
from dari.eval.answers import METRICS, AnswerEval, eval_settings
from dari.eval.golden import load_golden
from dari.testing import FakeEmbedder, FakeGenerator

ITEMS = [
    {
        "id": "leave",
        "question": "연차 휴가는 며칠인가요?",
        "answer": "연차 휴가는 1년에 15일입니다.",
        "gold_ids": ["leave"],
        "tags": ["hr"],
    },
    {
        "id": "refund",
        "question": "How long do I have to request a refund?",
        "answers": ["Within 30 days of purchase."],
        "tags": ["billing"],
    },
    {
        "id": "card",
        "question": "When are refunds paid to the original card?",
        "answer": "Within 5 business days.",
        "tags": ["billing"],
    },
    {"id": "mercury", "question": "What is the boiling point of mercury?", "unanswerable": True},
]
ANSWERS = [
    "정규직 직원의 연차 휴가는 1년에 15일입니다 [1].",
    "Customers can request a refund within 30 days of purchase [1].",
    "Refunds are paid to the original card within 9 business days [1].",
]


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    path = tmp_path / "golden.jsonl"
    lines = [json.dumps(i, ensure_ascii=False) for i in ITEMS]
    lines.insert(2, '{"question": "broken line')  # line 3
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def hr(dari: Dari, corpus: Path) -> Dari:
    dari.ingest([corpus], "hr")
    return dari


def test_runs_scores_and_reports(
    hr: Dari, golden: Path, fake_generator: FakeGenerator, tmp_path: Path
):
    for a in ANSWERS:
        fake_generator.enqueue(a)
    gold = load_golden(golden)
    out = tmp_path / "run"
    run = AnswerEval(hr, "hr").run(gold, out)
    data = answer_report.write(run, out)
    on_disk = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(data))
    assert (out / "report.html").read_text().count("<svg") >= 3
    assert data["run"]["skipped"] == [{"line": 3, "reason": data["run"]["skipped"][0]["reason"]}]
    assert data["run"]["items"] == 4 and set(data["metrics"]) == set(METRICS)
    items = {i["id"]: i for i in data["items"]}
    leave, refund, card, mercury = (
        items[k]["metrics"] for k in ("leave", "refund", "card", "mercury")
    )
    assert leave["citation_precision"] == leave["citation_recall"] == 1.0
    assert leave["token_f1"] > 0.6 and leave["faithfulness"] == 1.0
    assert refund["faithfulness"] == 1.0 and refund["citation_recall"] is None
    assert card["faithfulness"] == 0.0  # "9 business days" is not in the source
    assert mercury["abstention_accuracy"] == 1.0 and mercury["token_f1"] is None
    assert items["mercury"]["outcome"] == "abstained" and mercury["faithfulness"] is None
    assert all(m["abstention_accuracy"] == 1.0 for m in (leave, refund, card))
    assert all(i["metrics"]["latency_ms"] > 0 for i in data["items"])
    assert set(data["by_tag"]) == {"hr", "billing"} and set(data["by_lang"]) == {"en", "ko"}
    assert data["by_tag"]["billing"]["token_f1"]["n"] == 2
    assert data["metrics"]["agreement"] == {"mean": None, "low": None, "high": None, "n": 0}
    cell = data["metrics"]["faithfulness"]
    assert cell["n"] == 3 and cell["low"] <= cell["mean"] <= cell["high"]
    trace = hr.store.trace(items["leave"]["trace_id"])  # every answer's trace is stored
    assert trace is not None and trace["query"] == ITEMS[0]["question"]


def test_resumes_where_it_stopped(
    hr: Dari, golden: Path, fake_generator: FakeGenerator, tmp_path: Path
):
    gold = load_golden(golden)
    out = tmp_path / "run"
    fake_generator.enqueue(ANSWERS[0])
    fake_generator.enqueue(ANSWERS[1])
    first = AnswerEval(hr, "hr").run(gold, out, limit=2)
    assert [r["id"] for r in first.results] == ["leave", "refund"]
    asked = len(fake_generator.seen)
    with (out / "items.jsonl").open("a") as f:
        f.write('{"id": "card", "quest')  # torn by an interruption: answered again
    fake_generator.enqueue(ANSWERS[2])
    second = AnswerEval(hr, "hr").run(gold, out)
    assert len(fake_generator.seen) == asked + 1  # only "card" reached the LLM
    assert [r["id"] for r in second.results] == ["leave", "refund", "card", "mercury"]
    assert second.resumed == 2 and second.started == first.started
    lines = (out / "items.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["leave", "refund", "card", "mercury"]


def test_resume_with_another_configuration_is_refused(hr: Dari, golden: Path, tmp_path: Path):
    gold = load_golden(golden)
    out = tmp_path / "run"
    AnswerEval(hr, "hr").run(gold, out, limit=1)
    with pytest.raises(InputError, match="samples"):
        AnswerEval(hr, "hr", samples=2).run(gold, out)


def test_self_consistency_agreement(hr: Dari, fake_generator: FakeGenerator, tmp_path: Path):
    path = tmp_path / "g.jsonl"
    rows = [ITEMS[1], ITEMS[2]]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    same = "Customers can request a refund within 30 days of purchase [1]."
    for a in (same, same, same):
        fake_generator.enqueue(a)
    for a in (
        "Refunds are paid within 5 business days [1].",
        "Gift cards cannot be refunded [1].",
        "The office opens at 8 am [1].",
    ):
        fake_generator.enqueue(a)
    run = AnswerEval(hr, "hr", samples=3).run(load_golden(path), tmp_path / "run")
    agree = [r["metrics"]["agreement"] for r in run.results]
    assert agree[0] == 1.0 and agree[1] < 0.5
    assert len(run.results[0]["sample_trace_ids"]) == 2
    params = [hr.store.trace(t)["params"] for t in run.results[1]["sample_trace_ids"]]
    assert {p["seed"] for p in params} == {8, 9} and all(p["temperature"] >= 0.7 for p in params)
    assert hr.settings.llm.temperature == 0.1  # put back


def test_eval_settings_override_and_turn_the_cache_off(dari: Dari):
    s = eval_settings(
        dari.settings.model_copy(
            update={"cache": dari.settings.cache.model_copy(update={"enabled": True})}
        ),
        prompt="grounded@1",
        model="ci",
        top_k=5,
        config=["fusion=rrf"],
    )
    assert (s.llm.prompt, s.llm.model, s.retrieval.top_k, s.retrieval.fusion) == (
        "grounded@1",
        "ci",
        5,
        "rrf",
    )
    assert s.cache.enabled is False
    with pytest.raises(InputError):
        eval_settings(dari.settings, config=["nope=1"])
    with pytest.raises(InputError):
        eval_settings(dari.settings, top_k=0)


def test_cli(monkeypatch: pytest.MonkeyPatch, corpus: Path, golden: Path, tmp_path: Path, analyzer):
    from dari.cli.main import app

    fake = FakeGenerator(*ANSWERS)
    monkeypatch.setattr(Dari, "embedder", property(lambda self: FakeEmbedder(analyzer)))
    monkeypatch.setattr(Dari, "generator", property(lambda self: fake))
    monkeypatch.setenv("DARI_CACHE__ENABLED", "false")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(corpus), "-c", "hr"]).exit_code == 0
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        ["eval", "answers", "--golden", str(golden), "-c", "hr", "-o", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert "line 3" in result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert data["run"]["items"] == 4 and "items" not in data
    assert json.loads((out / "report.json").read_text())["items"][0]["id"] == "leave"


def test_cli_refuses_a_golden_set_without_one_usable_line(tmp_path: Path):
    from dari.cli.main import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"question": "no answer"}\n', encoding="utf-8")
    result = CliRunner().invoke(
        app, ["eval", "answers", "--golden", str(bad), "-c", "hr", "-o", str(tmp_path / "out")]
    )
    err = result.exception
    assert isinstance(err, InputError) and "all 2 are bad" in err.message
    assert "line 1: not JSON" in err.message
    assert not (tmp_path / "out").exists()

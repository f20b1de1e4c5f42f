"""Retrieval eval end to end on the real store and BM25 with the fake embedder: configurations
side by side, the cached corpus, the analyzer comparison and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dari.app import Dari
from dari.config import Settings
from dari.errors import InputError
from dari.eval import report
from dari.eval.datasets import load_set
from dari.eval.retrieval import RetrievalEval, parse_configs
from dari.testing import FakeEmbedder

DOCS = [
    {"_id": "leave", "title": "Leave policy", "text": "직원의 연차 휴가는 1년에 15일입니다."},
    {"_id": "sick", "title": "병가", "text": "병가는 연간 최대 10일까지 유급으로 쓸 수 있습니다."},
    {"_id": "refund", "title": "Refunds", "text": "Customers may request a refund within 30 days."},
    {"_id": "parking", "title": "Parking", "text": "The garage opens at 7 am for all staff."},
]
QUERIES = [
    ("q1", "휴가 며칠", {"leave": 1}),
    ("q2", "When does the garage open?", {"parking": 1}),
    ("q3", "refund window", {"refund": 1}),
]


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "mini"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS)
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n" for q, t, _ in QUERIES)
    )
    qrels = "".join(f"{q}\t{d}\t1\n" for q, _, g in QUERIES for d in g)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return root


@pytest.fixture
def runner(settings: Settings, dari: Dari) -> RetrievalEval:
    r = RetrievalEval(settings, dari)
    yield r
    r.close()


def test_configurations_side_by_side(runner: RetrievalEval, beir: Path, tmp_path: Path):
    specs = parse_configs("bm25,bm25-ws,dense,hybrid,hybrid:rrf_k=10:dense_weight=0.5")
    run = runner.run(load_set(beir), specs)
    by = {r.spec.label: r for r in run.results}
    assert by["bm25"].ranked["q2"][0] == "parking"
    assert by["bm25"].ranked["q1"][0] == "leave"
    # Words split at spaces: "휴가" does not match "휴가는", so the Korean query misses.
    assert by["bm25-ws"].metrics["recall@20"]["q1"] == 0.0
    assert by["bm25"].metrics["recall@1"]["q1"] == 1.0
    assert by["hybrid:rrf_k=10:dense_weight=0.5"].settings["rrf_k"] == 10
    assert by["hybrid:rrf_k=10:dense_weight=0.5"].settings["dense_weight"] == 0.5
    assert by["dense"].settings["bm25_weight"] == 0.0
    assert all(len(r.latency_ms) == len(QUERIES) for r in run.results)

    data = report.write(run, tmp_path / "out")
    assert set(data["configs"]) == {s.label for s in specs}
    bm25 = data["configs"]["bm25"]
    assert bm25["ndcg@10"] == 1.0 and bm25["recall@5"] == 1.0
    assert data["configs"]["bm25-ws"]["vs_bm25"]["ndcg@10"]["delta"] < 0
    assert data["dataset"]["documents"] == 4 and data["dataset"]["queries"] == 3
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["configs"]["hybrid"]["ndcg@10"] == data["configs"]["hybrid"]["ndcg@10"]
    rows = (tmp_path / "out" / "per_query.jsonl").read_text().splitlines()
    assert len(rows) == len(specs) * len(QUERIES)
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 3 and "mini" in page and "bm25-ws" in page


def test_the_corpus_is_indexed_once(runner: RetrievalEval, dari: Dari, beir: Path):
    evalset = load_set(beir)
    runner.run(evalset, parse_configs("bm25"))
    embedder = dari.embedder
    assert isinstance(embedder, FakeEmbedder)
    embedded = embedder.texts_embedded
    again = RetrievalEval(runner._settings, dari)
    again.run(evalset, parse_configs("dense"))
    assert embedder.texts_embedded == embedded  # unchanged corpus: nothing re-embedded


def test_qa_sets_report_whether_the_answer_reached_the_context(
    runner: RetrievalEval, tmp_path: Path
):
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"doc_id": d["_id"], "contents": d["text"]}) + "\n" for d in DOCS)
    )
    (tmp_path / "qa.jsonl").write_text(
        json.dumps({"query": "garage open time", "gold_doc_ids": ["parking"], "answer": "7 am"})
        + "\n"
        + json.dumps({"query": "refund days", "gold_doc_ids": ["refund"], "answer": "90 days"})
        + "\n"
    )
    run = runner.run(load_set(tmp_path), parse_configs("bm25"))
    assert list(run.results[0].answer_in_context.values()) == [True, False]
    assert report.summary(run)["configs"]["bm25"]["answer_in_context"] == 0.5


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bm25,splade", "unknown retrieval configuration 'splade'"),
        ("hybrid:rrf=3", "bad setting 'rrf=3'"),
        ("hybrid:rrf_k=0", "bad setting in configuration 'hybrid:rrf_k=0'"),
        ("bm25,bm25", "listed twice"),
        (" , ", "no retrieval configuration"),
    ],
)
def test_bad_configurations_fail_before_any_work(text: str, needle: str):
    with pytest.raises(InputError) as err:
        parse_configs(text)
    assert needle in err.value.message

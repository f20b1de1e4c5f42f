"""`dari eval retrieval` through the real command: e5 embeddings, Kiwi, tantivy, on a slice of
BEIR SciFact from the shared data (the full-set figures are in docs/benchmarks/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DARI = [sys.executable, "-m", "dari.cli.main"]
SCIFACT = Path(
    os.environ.get("DARI_SHARED_DATA", Path(__file__).parents[3] / "shared" / "data")
) / ("beir_scifact")


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DARI_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(DARI + args, capture_output=True, text=True, env=env, timeout=900)


def test_bad_dataset_and_configuration_are_usage_errors(tmp_path: Path):
    result = run(["eval", "retrieval", "-d", str(tmp_path / "nope")], tmp_path / "home")
    assert result.returncode == 64
    assert "eval set not found" in result.stderr and "hint:" in result.stderr
    result = run(["eval", "retrieval", "-d", str(tmp_path), "--configs", "bm25,colbert"], tmp_path)
    assert result.returncode == 64 and "unknown retrieval configuration 'colbert'" in result.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_scifact_slice_end_to_end(tmp_path: Path):
    if not SCIFACT.is_dir():
        pytest.skip(f"shared data not found at {SCIFACT} (set DARI_SHARED_DATA)")
    qrels = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:13]
    wanted = {line.split("\t")[1] for line in qrels}
    corpus = [json.loads(x) for x in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    keep = [d for d in corpus if d["_id"] in wanted] + [
        d for d in corpus if d["_id"] not in wanted
    ][:20]
    qids = {line.split("\t")[0] for line in qrels}
    lines = (SCIFACT / "queries.jsonl").read_text().splitlines()
    queries = [x for x in lines if json.loads(x)["_id"] in qids]
    root = tmp_path / "scifact-slice"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in keep))
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels))

    out, home = tmp_path / "out", tmp_path / "home"
    args = ["eval", "retrieval", "-d", str(root), "--configs", "bm25,dense,hybrid", "-o", str(out)]
    result = run([*args, "--json"], home)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dataset"]["documents"] == len(keep)
    for label in ("bm25", "dense", "hybrid"):
        row = data["configs"][label]
        assert 0.0 < row["ndcg@10"] <= 1.0
        assert row["ci95"]["ndcg@10"][0] <= row["ndcg@10"] <= row["ci95"]["ndcg@10"][1]
        assert row["recall@1"] <= row["recall@5"] <= row["recall@20"]
    assert (out / "report.html").stat().st_size > 10_000
    # Second run: the indexed corpus is reused, and the table is printed.
    again = run(args, home)
    assert again.returncode == 0, again.stderr
    assert "nDCG@10" in again.stdout and "report.html" in again.stdout
    # A learned reranker trained on the slice's labels, then compared with the other rerankers.
    model = tmp_path / "ltr.txt"
    trained = run(["rerank", "train", "-d", str(root), "--split", "test", "-o", str(model)], home)
    assert trained.returncode == 0, trained.stderr
    assert "trained on" in trained.stdout and model.stat().st_size > 1000
    configs = f"hybrid,hybrid+ltr:ltr_model={model},hybrid+mmr"
    compared = run(["eval", "retrieval", "-d", str(root), "--configs", configs, "--json"], home)
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)["configs"]
    assert rows[f"hybrid+ltr:ltr_model={model}"]["settings"]["reranker"] == "ltr"
    assert rows["hybrid+mmr"]["settings"]["reranker"] == "mmr"
    assert all(0.0 < row["ndcg@10"] <= 1.0 for row in rows.values())

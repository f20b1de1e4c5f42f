"""What `dari eval answers` costs, and how far its faithfulness metric can be trusted.

1. Throughput: ~30 HaluEval QA items (a golden file built the way bench/answers.py builds its
   set) through the full pipeline with the CI model, into a throw-away DARI_HOME: items/min, and
   the cost of each metric in ms per item.
2. Faithfulness vs truth: for ~200 items, the right answer and the hallucinated answer are each
   scored against the item's knowledge as the only source, cited as [1]. Reported: accuracy of
   "faithfulness ≥ 0.9 ⇒ faithful", and ROC-AUC (of the faithfulness score, and of the guard's
   raw mean support, which is continuous).
3. Korean (`--korean N`, usually with the default model): N AutoRAG-KO questions over its 720
   pages, with the text metrics on Kiwi morphemes; added to the report as "korean".

Prints JSON and writes docs/benchmarks/evals/report.json.

    python bench/evals.py [--n 30] [--judge-n 200] [--model ci]
    python bench/evals.py --korean 20 --model default    # 3. AutoRAG-KO, added to the report
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, machine, need_data

from dari.app import Dari
from dari.config import Settings
from dari.eval import answer_metrics as am
from dari.eval import answer_report
from dari.eval.answers import AnswerEval, Scorer, eval_settings
from dari.eval.golden import load_golden

DOCS = 200  # documents in the throughput corpus: the eval items' knowledge and distractors


def rows() -> list[dict]:
    path = need_data("hallucination", "halueval_qa_generation.jsonl")
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def roc_auc(scores: list[float], labels: list[int]) -> float:
    """Probability that a faithful answer scores above a hallucinated one (ties count half)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def throughput(data: list[dict], n: int, model: str, seed: int, home: Path) -> dict:
    picked = random.Random(seed).sample(data, DOCS)
    corpus = home / "halueval_knowledge.jsonl"
    with corpus.open("w") as f:
        for r in picked:
            f.write(json.dumps({"doc_id": r["id"], "text": r["knowledge"]}) + "\n")
    items = [
        {
            "id": r["id"],
            "question": r["question"],
            "answer": r["right_answer"],
            "gold_ids": [r["id"]],
            "tags": [r["strategy"]],
            "lang": "en",
        }
        for r in picked[:n]
    ]
    out = run_eval(corpus, items, "halueval", model, home, "warm up: who wrote it?")
    return {"corpus_documents": DOCS, **out}


def korean(n: int, model: str, seed: int, home: Path) -> dict:
    """AutoRAG-KO: its 720 OCR'd pages as the corpus, n of its questions with their reference
    answers and gold pages, through the full pipeline (Korean morpheme-based text metrics)."""
    corpus = need_data("ko_autorag_embedding_benchmark", "corpus.jsonl")
    qa = [json.loads(x) for x in need_data("ko_autorag_embedding_benchmark", "qa.jsonl").open()]
    items = [
        {
            "id": r["qid"],
            "question": r["query"],
            "answers": r["generation_gt"],
            "gold_ids": [i for group in r["retrieval_gt"] for i in group],
            "tags": [r["qid"].split("_", 1)[-1]],
            "lang": "ko",
        }
        for r in random.Random(seed).sample(qa, n)
    ]
    out = run_eval(corpus, items, "autorag", model, home, "연차 휴가는 며칠인가요?")
    return {"set": "AutoRAG-KO (ko_autorag_embedding_benchmark)", "corpus_documents": 720, **out}


def run_eval(
    corpus: Path, items: list[dict], collection: str, model: str, home: Path, warm: str
) -> dict:
    """Ingest the corpus, then `dari eval answers` over the items: timings and mean metrics."""
    golden = home / f"golden-{collection}.jsonl"
    golden.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    base = Settings(home=home / "home", ingest={"id_field": "doc_id"})  # type: ignore[arg-type]
    settings = eval_settings(base, model=model)
    dari = Dari(settings, models_home=Path("~/.dari").expanduser())
    t = time.perf_counter()
    dari.ingest([corpus], collection)
    ingest_s = time.perf_counter() - t
    runner = AnswerEval(dari, collection)
    gold = load_golden(golden)
    dari.ask(warm, collection)  # loads the model: not timed
    out = OUT / "evals-run"
    for stale in ("items.jsonl", "run.json"):
        (out / stale).unlink(missing_ok=True)
    t = time.perf_counter()
    run = runner.run(gold, out)
    run_s = time.perf_counter() - t
    t = time.perf_counter()
    data_out = answer_report.write(run, out)
    report_s = time.perf_counter() - t
    dari.close()
    metric_ms = {k: round(v / len(run.results), 2) for k, v in runner.scorer.timings_ms.items()}
    return {
        "items": len(run.results),
        "model": model,
        "ingest_s": round(ingest_s, 1),
        "run_s": round(run_s, 1),
        "items_per_min": round(len(run.results) / run_s * 60, 1),
        "report_s": round(report_s, 2),
        "metric_ms_per_item": metric_ms,
        "metrics": {k: v["mean"] for k, v in data_out["metrics"].items()},
    }


def faithfulness_vs_truth(data: list[dict], n: int, seed: int, home: Path) -> dict:
    dari = Dari(Settings(home=home / "judge"))  # type: ignore[arg-type]
    scorer = Scorer(dari)
    items = random.Random(seed + 1).sample(data, n)
    scores: list[float] = []
    supports: list[float] = []
    labels: list[int] = []
    t = time.perf_counter()
    for r in items:
        for text, label in ((r["right_answer"], 1), (r["hallucinated_answer"], 0)):
            answer = f"{text.strip().rstrip('.')} [1]."
            sources = [r["knowledge"]]
            support = am.cited_sentences(
                scorer.guard, answer, sources, "en", dari.analyzer.sentences
            )
            scores.append(am.faithfulness(support, scorer.guard.min_support))
            supports.append(float(np.mean(support)) if support else 0.0)
            labels.append(label)
    ms = (time.perf_counter() - t) * 1000 / len(scores)
    dari.close()
    threshold = scorer.guard.min_support
    predicted = [int(s >= threshold) for s in scores]
    y = np.asarray(labels)
    p = np.asarray(predicted)
    return {
        "items": n,
        "answers_scored": len(scores),
        "threshold": threshold,
        "accuracy": round(float((p == y).mean()), 3),
        "faithful_recall": round(float(p[y == 1].mean()), 3),  # right answers judged faithful
        "hallucination_recall": round(float((1 - p[y == 0]).mean()), 3),  # caught
        "roc_auc_faithfulness": round(roc_auc(scores, labels), 3),
        "roc_auc_mean_support": round(roc_auc(supports, labels), 3),
        "ms_per_answer": round(ms, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--judge-n", type=int, default=200)
    ap.add_argument("--model", default="ci")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--korean", type=int, default=0, help="Only the AutoRAG-KO run, N items")
    args = ap.parse_args()
    target = ROOT / "docs" / "benchmarks" / "evals" / "report.json"
    with tempfile.TemporaryDirectory(prefix="dari-evals-") as tmp:
        home = Path(tmp)
        if args.korean:  # added to the report the full run wrote
            figures = json.loads(target.read_text()) if target.exists() else {}
            figures["korean"] = {
                **korean(args.korean, args.model, args.seed, home),
                "machine": machine(),
            }
        else:
            data = rows()
            figures = {
                "set": "HaluEval QA (hallucination/halueval_qa_generation.jsonl)",
                "throughput": throughput(data, args.n, args.model, args.seed, home),
                "faithfulness_vs_truth": faithfulness_vs_truth(data, args.judge_n, args.seed, home),
                "machine": machine(),
            }
    text = json.dumps(figures, ensure_ascii=False, indent=2)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""How well dari's LLM judge agrees with human hallucination labels (HaluEval general).

A stratified, seeded sample of HaluEval's general split (user query, model response, human label
"does the response hallucinate?") is scored by `dari.eval.judge` with the `factuality` rubric
(1–5, "does this response contain claims that are false or unsupported?"). A score ≤ 3 counts as
"hallucinated". Reports accuracy, balanced accuracy, Spearman between score and the human label
(1 = no hallucination), unreadable outputs and seconds per item, per model.

    python bench/judge.py [--models ci,default] [--n 100] [--n-default 40]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, emit, machine, need_data

from dari.app import Dari
from dari.config import Settings
from dari.eval.judge import Item, score
from dari.eval.rubrics import RUBRICS

THRESHOLD = 3  # judge score ≤ 3 → hallucinated


def sample(path: Path, n: int, seed: int = 7) -> list[dict]:
    """n rows, half labelled hallucinated and half not (seeded)."""
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    yes = [r for r in rows if r["hallucination"] == "yes"]
    no = [r for r in rows if r["hallucination"] == "no"]
    rng = random.Random(seed)
    picked = rng.sample(yes, n // 2) + rng.sample(no, n - n // 2)
    rng.shuffle(picked)
    return picked


def spearman(x: list[float], y: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return None  # a constant judge has no rank correlation
    return round(float(spearmanr(x, y).statistic), 4)


def agreement(model: str, rows: list[dict]) -> dict:
    dari = Dari(Settings(home=OUT / "judge-home", llm={"model": model, "n_ctx": 4096}))
    judge = dari.generator
    rubric = RUBRICS["factuality"]
    scores: list[int | None] = []
    times: list[float] = []
    examples = []
    for r in rows:
        item = Item(str(r["id"]), r["user_query"], r["response"][:3000], "en")
        t = time.perf_counter()
        s = score(judge, rubric, item)
        times.append(time.perf_counter() - t)
        scores.append(s.score)
        if len(examples) < 3:
            examples.append({"id": item.id, "label": r["hallucination"], "raw": s.raw[:300]})
    dari.close()
    truth = [r["hallucination"] == "yes" for r in rows]
    # an unreadable verdict counts as "not hallucinated" (the judge failed to flag it)
    pred = [s is not None and s <= THRESHOLD for s in scores]
    tp = sum(p and t for p, t in zip(pred, truth, strict=True))
    tn = sum(not p and not t for p, t in zip(pred, truth, strict=True))
    pos, neg = sum(truth), len(truth) - sum(truth)
    read = [(s, t) for s, t in zip(scores, truth, strict=True) if s is not None]
    dist = {str(k): sum(s == k for s in scores) for k in range(1, 6)}
    return {
        "model": model,
        "items": len(rows),
        "accuracy": round((tp + tn) / len(rows), 4),
        "balanced_accuracy": round((tp / pos + tn / neg) / 2, 4),
        "spearman_score_vs_no_hallucination": spearman(
            [float(s) for s, _ in read], [0.0 if t else 1.0 for _, t in read]
        ),
        "unreadable": sum(s is None for s in scores),
        "score_distribution": dist,
        "flagged_hallucinated": sum(pred),
        "s_per_item": round(sum(times) / len(times), 3),
        "examples": examples,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="ci,default")
    ap.add_argument("--n", type=int, default=100, help="items for the ci model")
    ap.add_argument("--n-default", type=int, default=40, help="items for larger models")
    args = ap.parse_args()
    path = need_data("hallucination", "halueval_general.jsonl")
    results = []
    for model in args.models.split(","):
        rows = sample(path, args.n if model == "ci" else args.n_default)
        results.append(agreement(model, rows))
    figures = {
        "dataset": "HaluEval general (human labels), stratified 50/50 sample, seed 7",
        "rubric": "factuality (1–5); score ≤ 3 counts as hallucinated; unreadable counts as not",
        "chance": {"accuracy": 0.5, "balanced_accuracy": 0.5, "spearman": 0.0},
        "results": results,
        "machine": machine(),
    }
    emit("judge", figures)
    target = ROOT / "docs" / "benchmarks" / "evals" / "judge.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()

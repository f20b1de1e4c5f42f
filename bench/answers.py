"""Answer quality of the full pipeline on real QA data (AutoRAG-KO, HaluEval QA).

For each question: does the answer contain the reference answer, is it cited, did dari abstain,
was the gold passage retrieved. Prints JSON; per-item answers go to bench/out/answers-<set>.jsonl.

    python bench/answers.py --set halueval --n 60 [--model default]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, emit, need_data, summary

from dari.app import Dari
from dari.config import Settings
from dari.eval.metrics import normalise
from dari.types import Outcome


def norm(text: str) -> str:
    """Citation markers out, then the eval's answer normalisation (NFKC, case, punctuation)."""
    return normalise(re.sub(r"\[\d+\]", " ", unicodedata.normalize("NFKC", text)))


def load_set(name: str, n: int, seed: int) -> tuple[Path, list[dict]]:
    """(jsonl corpus to ingest, questions with reference answers and gold ids)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if name == "autorag":
        corpus = need_data("ko_autorag_embedding_benchmark", "corpus.jsonl")
        rows = [
            json.loads(x)
            for x in need_data("ko_autorag_embedding_benchmark", "qa.jsonl")
            .read_text()
            .splitlines()
        ]
        items = [
            {"q": r["query"], "refs": r["generation_gt"], "gold": r["gold_doc_ids"]} for r in rows
        ]
    elif name == "halueval":
        rows = [
            json.loads(x)
            for x in need_data("hallucination", "halueval_qa_generation.jsonl")
            .read_text()
            .splitlines()
        ]
        corpus = OUT / "halueval_knowledge.jsonl"
        with corpus.open("w") as f:
            for r in rows:
                f.write(json.dumps({"doc_id": r["id"], "text": r["knowledge"]}) + "\n")
        items = [{"q": r["question"], "refs": [r["right_answer"]], "gold": [r["id"]]} for r in rows]
    else:
        raise SystemExit(f"unknown set {name}")
    random.Random(seed).shuffle(items)
    return corpus, items[:n]


def ref_recall(answer: str, ref: str, dari: Dari) -> float:
    """Share of the reference's content terms found in the answer (morphemes for Korean)."""
    want = set(dari.analyzer.terms(ref))
    got = set(dari.analyzer.terms(answer))
    return len(want & got) / len(want) if want else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["autorag", "halueval"], required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompt", default="grounded-v2")
    ap.add_argument("--home", default=str(OUT / "home"))
    args = ap.parse_args()

    settings = Settings(
        home=Path(args.home),
        llm={"model": args.model, "prompt": args.prompt},
        ingest={"id_field": "doc_id"},
    )
    dari = Dari(settings)
    corpus, items = load_set(args.set, args.n, args.seed)
    collection = f"bench-{args.set}"
    dari.ingest([corpus], collection)
    # Map gold ids (row ids) to sources so we can tell whether retrieval found the gold passage.
    per_item = []
    for item in items:
        t = time.perf_counter()
        ans = dari.ask(item["q"], collection)
        seconds = time.perf_counter() - t
        ids = {h.source for h in ans.trace.hits}
        text = norm(ans.text)
        contains = any(norm(r) and norm(r) in text for r in item["refs"])
        recall = max(ref_recall(ans.text, r, dari) for r in item["refs"])
        per_item.append(
            {
                "q": item["q"],
                "answer": ans.text,
                "refs": item["refs"][:1],
                "outcome": ans.outcome.value,
                "cited": bool(ans.citations),
                "contains": contains,
                "ref_recall": round(recall, 3),
                "seconds": round(seconds, 2),
                "first_token_ms": ans.trace.timings_ms.get("first_token"),
                "hit_sources": sorted(ids),
                "invalid_citations": ans.trace.invalid_citations,
            }
        )
        print(
            f"{len(per_item):3d} {'✓' if contains else '·'} {recall:.2f} "
            f"{ans.outcome.value[:3]} {ans.text[:110]!r}",
            file=sys.stderr,
        )
    with (OUT / f"answers-{args.set}-{args.prompt}.jsonl").open("w") as f:
        for row in per_item:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    n = len(per_item)
    answered = [r for r in per_item if r["outcome"] == Outcome.ANSWERED.value]
    emit(
        f"answers-{args.set}-{args.prompt}",
        {
            "set": args.set,
            "n": n,
            "model": args.model,
            "prompt": args.prompt,
            "contains_reference": round(sum(r["contains"] for r in per_item) / n, 3),
            "mean_ref_recall": round(sum(r["ref_recall"] for r in per_item) / n, 3),
            "answered": round(len(answered) / n, 3),
            "cited_of_answered": round(
                sum(r["cited"] for r in answered) / max(1, len(answered)), 3
            ),
            "invalid_citations": sum(r["invalid_citations"] for r in per_item),
            "seconds": summary([r["seconds"] for r in per_item]),
            "first_token_ms": summary([r["first_token_ms"] or 0 for r in answered]),
        },
    )
    dari.close()


if __name__ == "__main__":
    main()

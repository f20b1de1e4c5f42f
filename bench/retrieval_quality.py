"""Retrieval quality on the shared eval sets, configurations side by side (issue: retrieval eval).

Runs `dari eval retrieval` in-process and writes its report (JSON, per-query JSONL, HTML with plots)
to docs/benchmarks/retrieval/<set>[-<tag>]/ so that the figures are committed with the code.

    python bench/retrieval_quality.py --set scifact --configs bm25,bm25-ws,dense,hybrid
    DARI_CHUNKING__CHUNK_TOKENS=192 python bench/retrieval_quality.py --set autorag --tag c192

Indexes are cached under bench/out/evalhome (the first SciFact run embeds ~17k chunks with e5:
about 20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, machine, need_data

from dari.config import load_settings
from dari.eval import report
from dari.eval.datasets import load_set
from dari.eval.retrieval import RetrievalEval, parse_configs

SETS = {"scifact": ("beir_scifact",), "autorag": ("ko_autorag_embedding_benchmark",)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=sorted(SETS), required=True)
    ap.add_argument("--configs", default="bm25,bm25-ws,dense,hybrid")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--tag", default="", help="suffix of the output folder")
    ap.add_argument("--home", default=str(OUT / "evalhome"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "retrieval"))
    args = ap.parse_args()

    settings = load_settings(home=Path(args.home))
    evalset = load_set(need_data(*SETS[args.set]), "test", args.limit)
    runner = RetrievalEval(settings)
    try:
        run = runner.run(evalset, parse_configs(args.configs))
    finally:
        runner.close()
    name = args.set + (f"-{args.tag}" if args.tag else "")
    data = report.write(run, Path(args.out) / name)
    # Per-query rows stay out of the repository (bench/out); the summary and plots go in.
    (Path(args.out) / name / "per_query.jsonl").replace(OUT / f"retrieval-{name}-per_query.jsonl")
    data["machine"] |= machine()
    (Path(args.out) / name / "report.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    )
    table = {
        label: {
            k: row[k]
            for k in ("ndcg@10", "recall@1", "recall@5", "recall@20", "mrr@10", "latency_ms_p95")
        }
        | {"ndcg@10_ci95": row["ci95"]["ndcg@10"]}
        for label, row in data["configs"].items()
    }
    print(
        json.dumps({"set": name, "chunks": data["dataset"]["chunks"], "configs": table}, indent=2)
    )


if __name__ == "__main__":
    main()

"""Which embedder should be the default? Quality (nDCG@10, recall@5) of dense-only and hybrid
retrieval on real Korean and English sets, against passages/s on this machine; plus whether the
abstention floor separates answerable from unanswerable questions.

    python bench/embedders.py [--embedders use,e5] [--scifact-docs 1500] [--queries 150]

SciFact is cut to the documents judged for the test queries plus distractors up to
--scifact-docs, so that the slow embedder finishes; both embedders see the same cut.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, emit, need_data

from dari.app import Dari
from dari.config import Settings


def ndcg10(ranked: list[str], gold: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(gold))))
    return dcg / ideal if ideal else 0.0


def load_autorag(n: int) -> tuple[list[dict], list[tuple[str, set[str]]]]:
    rows = [
        json.loads(x)
        for x in need_data("ko_autorag_embedding_benchmark", "corpus.jsonl")
        .read_text()
        .splitlines()
    ]
    docs = [{"id": r["doc_id"], "text": r["contents"]} for r in rows]
    qa = [
        json.loads(x)
        for x in need_data("ko_autorag_embedding_benchmark", "qa.jsonl").read_text().splitlines()
    ]
    queries = [(q["query"], set(q["gold_doc_ids"])) for q in qa][:n]
    return docs, queries


def load_scifact(n_docs: int, n: int) -> tuple[list[dict], list[tuple[str, set[str]]]]:
    base = need_data("beir_scifact")
    qtext = {}
    for line in (base / "queries.jsonl").read_text().splitlines():
        r = json.loads(line)
        qtext[r["_id"]] = r["text"]
    gold: dict[str, set[str]] = {}
    for line in (base / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            gold.setdefault(qid, set()).add(did)
    queries = [(qtext[q], g) for q, g in sorted(gold.items())][:n]
    needed = set().union(*(g for _, g in queries))
    corpus = [json.loads(x) for x in (base / "corpus.jsonl").read_text().splitlines()]
    random.Random(7).shuffle(corpus)
    keep = [d for d in corpus if d["_id"] in needed]
    keep += [d for d in corpus if d["_id"] not in needed][: max(0, n_docs - len(keep))]
    docs = [{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in keep]
    return docs, queries


def write_rows(folder: Path, docs: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(docs), 200):
        with (folder / f"part{i // 200:04d}.jsonl").open("w") as f:
            for d in docs[i : i + 200]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")


def evaluate(dari: Dari, collection: str, queries, bm25_w: float, dense_w: float) -> dict:
    """nDCG@10, recall@5 (by document) and the abstention rate of one weighting."""
    retriever = dari.pipeline(collection)._retriever
    retriever._s = retriever._s.model_copy(
        update={"bm25_weight": bm25_w, "dense_weight": dense_w, "context_tokens": 100000}
    )
    rows = dari.store._db.execute(
        "SELECT source, metadata FROM documents WHERE collection = ?", (collection,)
    ).fetchall()
    id_of = {src: json.loads(meta).get("id", src) for src, meta in rows}
    nd, r5, abstained = [], [], 0
    for q, gold in queries:
        res = retriever.retrieve(q, 10)
        hits = sorted(res.hits, key=lambda h: -h.score)  # prompt order → rank order
        ranked = list(dict.fromkeys(id_of.get(h.source, h.source) for h in hits))
        nd.append(ndcg10(ranked, gold))
        r5.append(len(set(ranked[:5]) & gold) / len(gold))
        abstained += res.abstain
    n = len(queries)
    return {
        "ndcg@10": round(sum(nd) / n, 3),
        "recall@5": round(sum(r5) / n, 3),
        "abstained": round(abstained / n, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedders", default="use,e5")
    ap.add_argument("--scifact-docs", type=int, default=1500)
    ap.add_argument("--queries", type=int, default=150)
    args = ap.parse_args()
    sets = {
        "autorag-ko": load_autorag(args.queries),
        "scifact-en": load_scifact(args.scifact_docs, args.queries),
    }
    figures: dict = {
        "note": "section-level hits mapped back to document ids; "
        "SciFact corpus cut as described in the docstring"
    }
    for name in args.embedders.split(","):
        for set_name, (docs, queries) in sets.items():
            home = OUT / f"embedders-{name}-{set_name}"
            settings = Settings(home=home, embedder={"name": name}, ingest={"id_field": "id"})
            dari = Dari(settings)
            r = settings.retrieval
            folder = OUT / f"embedders-src-{set_name}"
            if not folder.exists():
                write_rows(folder, docs)
            t = time.perf_counter()
            report = dari.ingest([folder], set_name)
            chunks = dari.store.collection(set_name).chunks
            embed_s = report.timings_s.get("embed", 0.0)
            row = {
                "chunks": chunks,
                "passages_per_s": round(chunks / embed_s, 1) if embed_s > 1 else None,
                "ingest_s": round(time.perf_counter() - t, 1),
                "dense": evaluate(dari, set_name, queries, 0.0, 1.0),
                "hybrid": evaluate(dari, set_name, queries, r.bm25_weight, r.dense_weight),
            }
            figures.setdefault(name, {})[set_name] = row
            print(name, set_name, row, file=sys.stderr)
            dari.close()
    # BM25 alone does not depend on the embedder: measure it once.
    first = args.embedders.split(",")[0]
    for set_name, (_, queries) in sets.items():
        dari = Dari(
            Settings(
                home=OUT / f"embedders-{first}-{set_name}",
                embedder={"name": first},
                ingest={"id_field": "id"},
            )
        )
        figures.setdefault("bm25", {})[set_name] = evaluate(dari, set_name, queries, 1.0, 0.0)
        dari.close()
    # Abstention at each embedder's default floor: the same questions asked against dari's own
    # docs, which cannot answer them (the answerable rate is "abstained" under "hybrid").
    for name in args.embedders.split(","):
        dari = Dari(Settings(home=OUT / f"embedders-{name}-docs", embedder={"name": name}))
        dari.ingest([ROOT / "docs"], "dari-docs")
        r = dari.settings.retrieval
        for set_name, (_, queries) in sets.items():
            figures[name][set_name]["abstained_when_unrelated"] = evaluate(
                dari, "dari-docs", queries, r.bm25_weight, r.dense_weight
            )["abstained"]
        dari.close()
    emit("embedders", figures)


if __name__ == "__main__":
    main()

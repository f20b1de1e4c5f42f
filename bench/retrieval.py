"""Retrieval latency, index size and memory at scale, without an LLM in the loop.

For each size N, SciFact and AutoRAG-KO documents (shuffled together, then repeated with distinct
ids and a distinct title line in every chunk) are written as JSONL files of 500 rows into
bench/out/retrieval-N/ until they make N chunks, and ingested with `Dari.ingest` into
bench/out/retrieval-N.home/. Dense vectors come from a hashed 512-d stand-in for the real embedder
(USE is 512-d too): embedding 100k chunks for real would take hours on two cores, and exact search
latency does not depend on the values. Queries (SciFact test queries and AutoRAG questions,
interleaved) are timed per call: the whole `HybridRetriever.retrieve`, BM25 alone and dense search
alone. The real query-embedding latency (USE) is measured separately; retrieval p95 (less the
stand-in's query embedding) + embedding p95 is the end-to-end retrieval latency.

Build and queries run in fresh child processes, so the RSS increase is that of the indexes alone.

    python bench/retrieval.py [--sizes 10000,100000] [--queries 300] [--embed-queries 50] [--reuse]

Quick check: `python bench/retrieval.py --sizes 2000 --queries 30 --embed-queries 10`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, Advance, emit, machine, need_data, peak_rss_mb, summary

from dari.app import Dari
from dari.config import RetrievalSettings, Settings
from dari.index.analyzer import Analyzer
from dari.testing import FakeEmbedder

COLLECTION = "bench"
STAND_IN = "hashed 512-d stand-in; exact search latency does not depend on values"
SEED = 13


class HashedEmbedder(FakeEmbedder):
    """FakeEmbedder's term hashing at USE's dimension, batched through `Analyzer.terms_many`."""

    name = "hash-512"
    dim = 512

    def __init__(self, analyzer: Analyzer | None = None) -> None:
        super().__init__(analyzer)
        self._slots: dict[str, tuple[int, float]] = {}

    def _slot(self, term: str) -> tuple[int, float]:
        slot = self._slots.get(term)
        if slot is None:
            h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")
            slot = self._slots[term] = (h % self.dim, 1.0 if (h >> 16) & 1 else -1.0)
        return slot

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        m = np.zeros((len(texts), self.dim), dtype=np.float32)
        terms_of = self._analyzer.terms_many(list(texts))
        for row, (text, terms) in enumerate(zip(texts, terms_of, strict=True)):
            for term in terms or [text]:
                i, sign = self._slot(term)
                m[row, i] += sign
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        return self._batch(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._batch(texts)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def open_dari(home: Path) -> Dari:
    dari = Dari(Settings(home=home, ingest={"id_field": "id"}))
    dari.__dict__["embedder"] = HashedEmbedder(dari.analyzer)
    return dari


# -- data --------------------------------------------------------------------------------------
def base_rows() -> list[dict[str, str]]:
    """SciFact and AutoRAG documents as {"id", "title", "text"}, shuffled together."""
    rows: list[dict[str, str]] = []
    with need_data("beir_scifact", "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows.append({"id": f"scifact:{r['_id']}", "title": r["title"], "text": r["text"]})
    with need_data("ko_autorag_embedding_benchmark", "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows.append({"id": f"autorag:{r['doc_id']}", "title": "", "text": r["contents"]})
    random.Random(SEED).shuffle(rows)
    return rows


def chunk_counts(rows: list[dict[str, str]]) -> dict[str, int]:
    """Chunks per base document, by dari's own loader and splitter (cached under bench/out)."""
    from dari.ingest.loaders import load_path
    from dari.ingest.splitter import ParentChildSplitter

    settings = Settings(home=OUT / "retrieval-base", ingest={"id_field": "id"})
    folder = OUT / "retrieval-base"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "base.jsonl"
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    key = hashlib.sha256((repr(settings.chunking) + text).encode()).hexdigest()
    cache = folder / "chunk_counts.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached["counts"]
    source.write_text(text, encoding="utf-8")
    analyzer = Analyzer()
    splitter = ParentChildSplitter(settings.chunking, analyzer)
    print("counting chunks per base document…", file=sys.stderr)
    counts = {
        d.metadata["id"]: len(splitter.split("x", d).chunks)
        for d in load_path(source, settings.ingest)
    }
    cache.write_text(json.dumps({"key": key, "counts": counts}))
    return counts


def write_collection(
    target: int, rows: list[dict[str, str]], counts: dict[str, int], folder: Path, per_file: int
) -> dict[str, int]:
    """JSONL files of `per_file` rows holding at least `target` chunks. Repetition r > 0 gets ids
    suffixed `~r<r>` and a distinct title, which dari puts on the first line of every chunk."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out: list[dict[str, str]] = []
    total = rep = 0
    while total < target:
        for row in rows:
            n = counts.get(row["id"], 0)
            if n == 0:
                continue
            if rep == 0:
                out.append(row)
            else:
                title = f"{row['title'] or row['id']} (copy {rep})"
                out.append({"id": f"{row['id']}~r{rep}", "title": title, "text": row["text"]})
            total += n
            if total >= target:
                break
        rep += 1
    for i in range(0, len(out), per_file):
        with (folder / f"part-{i // per_file:05d}.jsonl").open("w", encoding="utf-8") as f:
            for row in out[i : i + per_file]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {
        "docs": len(out),
        "files": -(-len(out) // per_file),
        "repetitions": rep,
        "expected_chunks": total,
    }


def load_queries(limit: int) -> list[tuple[str, str]]:
    """(lang, query): SciFact test queries and AutoRAG questions, interleaved."""
    test_ids: list[str] = []
    for line in need_data("beir_scifact", "qrels", "test.tsv").read_text().splitlines()[1:]:
        qid = line.split("\t")[0]
        if qid and qid not in test_ids:
            test_ids.append(qid)
    texts = {}
    for line in need_data("beir_scifact", "queries.jsonl").read_text().splitlines():
        r = json.loads(line)
        texts[r["_id"]] = r["text"]
    en = [("en", texts[q]) for q in test_ids if q in texts]
    qa = need_data("ko_autorag_embedding_benchmark", "qa.jsonl").read_text().splitlines()
    ko = [("ko", json.loads(line)["query"]) for line in qa if line.strip()]
    mixed: list[tuple[str, str]] = []
    for i in range(max(len(en), len(ko))):
        mixed.extend(x[i] for x in (en, ko) if i < len(x))
    return mixed[:limit]


# -- child processes ---------------------------------------------------------------------------
def build(folder: str, home: str, n_files: int) -> dict[str, Any]:
    """Ingest the folder into a fresh home; runs in a child process."""
    shutil.rmtree(home, ignore_errors=True)
    dari = open_dari(Path(home))
    dari.analyzer.terms_many(["워밍업 문장입니다.", "warm-up sentence"])  # load Kiwi first
    with progress() as bar:
        task = bar.add_task(f"ingest {Path(folder).name}", total=n_files)
        t = time.perf_counter()
        report = dari.ingest([Path(folder)], COLLECTION, progress=Advance(bar, task))
        seconds = time.perf_counter() - t
    info = dari.store.collection(COLLECTION)
    dari.close()
    return {
        "seconds": round(seconds, 2),
        "chunks_per_s": round(info.chunks / seconds, 1),
        "timings_s": {k: round(v, 2) for k, v in report.timings_s.items()},
        "failed_files": report.failed,
        "documents": info.documents,
        "chunks": info.chunks,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def measure(home: str, queries: list[tuple[str, str]], k: int, warmup: int) -> dict[str, Any]:
    """Per-query latencies and the RSS the indexes add; runs in a fresh child process."""
    dari = open_dari(Path(home))
    dari.analyzer.terms_many(["워밍업 문장입니다.", "warm-up sentence"])
    rss_base = rss_mb()
    retriever = dari.pipeline(COLLECTION)._retriever
    bm25, vectors = dari.bm25(COLLECTION), dari.vectors(COLLECTION)
    bm25.num_docs()
    rss_open = rss_mb()
    embed = dari.embedder.embed_queries

    def once(q: str) -> dict[str, float]:
        t = time.perf_counter()
        r = retriever.retrieve(q)
        hybrid = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        bm25.search(q, k)
        lexical = (time.perf_counter() - t) * 1000
        vec = embed([q])[0]
        t = time.perf_counter()
        vectors.search(vec, k)
        dense = (time.perf_counter() - t) * 1000
        # What retrieve() pays before each dense search: Dari.vectors() looks up the generation.
        t = time.perf_counter()
        dari.vectors(COLLECTION)
        lookup = (time.perf_counter() - t) * 1000
        stand_in = r.timings_ms.get("embed_query", 0.0)
        return {
            "hybrid_retrieve": hybrid,
            "hybrid_excl_query_embed": hybrid - stand_in,
            "stand_in_query_embed": stand_in,
            "bm25_only": lexical,
            "dense_only": dense,
            "vectors_lookup": lookup,
            **{f"stage_{name}": ms for name, ms in r.timings_ms.items() if name != "embed_query"},
        }

    for _, q in queries[:warmup]:
        once(q)
    rows: list[tuple[str, dict[str, float]]] = []
    with progress() as bar:
        task = bar.add_task(f"queries ({len(vectors)} chunks)", total=len(queries))
        for lang, q in queries:
            rows.append((lang, once(q)))
            bar.advance(task)
    rss_after = rss_mb()
    dari.close()
    names = list(rows[0][1])
    by_lang = {
        lang: summary([r["hybrid_retrieve"] for la, r in rows if la == lang])
        for lang in sorted({la for la, _ in rows})
    }
    return {
        "latency_ms": {name: summary([r[name] for _, r in rows]) for name in names},
        "hybrid_retrieve_by_lang_ms": by_lang,
        "rss_mb": {
            "baseline": round(rss_base, 1),
            "after_open": round(rss_open, 1),
            "after_queries": round(rss_after, 1),
        },
        "indexed_chunks": len(vectors),
    }


def in_child(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# -- figures -----------------------------------------------------------------------------------
def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def disk_sizes(home: Path) -> dict[str, int]:
    col = home / "collections" / COLLECTION
    vectors = sum(p.stat().st_size for p in col.glob("vectors*"))
    sizes = {
        "bm25": folder_bytes(col / "bm25"),
        "vectors": vectors,
        "collection_folder": folder_bytes(col),
        "sqlite_db": (home / "dari.db").stat().st_size,
        "sqlite_wal": (home / "dari.db-wal").stat().st_size
        if (home / "dari.db-wal").exists()
        else 0,
    }
    sizes["total"] = sizes["collection_folder"] + sizes["sqlite_db"] + sizes["sqlite_wal"]
    return sizes


def real_query_embedding(queries: list[tuple[str, str]], n: int) -> dict[str, Any]:
    from dari.config import Settings
    from dari.index.embedders import make_embedder

    embedder = make_embedder(Settings().embedder)  # the configured default (e5)
    t = time.perf_counter()
    embedder.embed_queries(["warm-up"])
    load_s = time.perf_counter() - t
    times = []
    for _, q in queries[:n]:
        t = time.perf_counter()
        embedder.embed_queries([q])
        times.append((time.perf_counter() - t) * 1000)
    return {
        "embedder": embedder.name,
        "load_s": round(load_s, 2),
        "n": len(times),
        "ms": summary(times),
    }


def one_size(
    target: int, rows: list[dict[str, str]], counts: dict[str, int], args: argparse.Namespace
) -> dict[str, Any]:
    queries = load_queries(args.queries)
    folder, home = OUT / f"retrieval-{target}", OUT / f"retrieval-{target}.home"
    manifest = home / "bench-build.json"
    built: dict[str, Any] | None = None
    if args.reuse and manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("rows_per_file") == args.rows_per_file and saved.get("target") == target:
            built = saved
            print(f"reusing {home}", file=sys.stderr)
    if built is None:
        layout = write_collection(target, rows, counts, folder, args.rows_per_file)
        result = in_child(build, str(folder), str(home), layout["files"])
        built = {"target": target, "rows_per_file": args.rows_per_file, **layout, "build": result}
        manifest.write_text(json.dumps(built, indent=2))
    sizes = disk_sizes(home)
    measured = in_child(measure, str(home), queries, args.candidates, args.warmup)
    chunks = built["build"]["chunks"]
    per100k = 100_000 / chunks
    rss = measured["rss_mb"]
    rss["increase"] = round(rss["after_queries"] - rss["baseline"], 1)
    rss["increase_per_100k_chunks"] = round(rss["increase"] * per100k, 1)
    return {
        "target_chunks": target,
        "chunks": chunks,
        "expected_chunks": built["expected_chunks"],
        "documents": built["docs"],
        "files": built["files"],
        "repetitions": built["repetitions"],
        "build": built["build"],
        "queries": len(queries),
        "latency_ms": measured["latency_ms"],
        "hybrid_retrieve_by_lang_ms": measured["hybrid_retrieve_by_lang_ms"],
        "disk_bytes": sizes,
        "disk_mb_per_100k_chunks": {k: round(v / 1e6 * per100k, 1) for k, v in sizes.items()},
        "rss_mb": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--queries", type=int, default=300, help="at most this many queries")
    ap.add_argument("--embed-queries", type=int, default=50, help="queries for the real embedder")
    ap.add_argument("--candidates", type=int, default=RetrievalSettings().candidates)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rows-per-file", type=int, default=500)
    ap.add_argument("--reuse", action="store_true", help="keep collections already built")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = machine()

    rows = base_rows()
    counts = chunk_counts(rows)
    per_size = {str(n): one_size(n, rows, counts, args) for n in sizes}
    embed = real_query_embedding(load_queries(args.queries), args.embed_queries)
    for figures in per_size.values():
        p95 = figures["latency_ms"]["hybrid_excl_query_embed"]["p95"]
        figures["end_to_end_p95_ms"] = round(p95 + embed["ms"]["p95"], 3)
    figures: dict[str, Any] = {
        "dense_vectors": STAND_IN,
        "machine": started,
        "candidates_k": args.candidates,
        "warmup_queries": args.warmup,
        "query_mix": "SciFact test queries (en) and AutoRAG questions (ko), interleaved",
        "sizes": per_size,
        "real_query_embedding": embed,
        "end_to_end": "end_to_end_p95_ms = hybrid_excl_query_embed p95 + real query embedding "
        "p95: the end-to-end retrieval latency (sum of p95s, a slight over-estimate)",
    }
    if len(sizes) > 1:
        small, large = per_size[str(min(sizes))], per_size[str(max(sizes))]
        figures["scaling_large_over_small"] = {
            "chunks": round(large["chunks"] / small["chunks"], 2),
            **{
                f"{name}_p50": round(
                    large["latency_ms"][name]["p50"] / max(small["latency_ms"][name]["p50"], 1e-9),
                    2,
                )
                for name in ("hybrid_retrieve", "bm25_only", "dense_only")
            },
        }
    name = (
        "retrieval" if args.sizes == "10000,100000" else f"retrieval-{args.sizes.replace(',', '-')}"
    )
    emit(name, figures)


if __name__ == "__main__":
    main()

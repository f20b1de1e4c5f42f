"""Ingest throughput on real corpora (BEIR SciFact, AutoRAG-KO) through `Dari.ingest`.

Each corpus becomes a folder of JSONL files (200 rows each) under bench/out/ingest-src/; it is
ingested into a fresh home with the real embedder, then ingested again unchanged (every file should
be skipped as `unchanged`), then once more after editing one row of one file (only that file should
be `updated`, and only its changed chunks sent to the embedder). Prints JSON: docs, chunks, text
bytes, seconds, docs/s, chunks/s, MB/s, the parse/embed/index split, the no-change and one-edit
re-ingest times as ratios of the full ingest, and peak RSS.

    python bench/ingest.py [--sets scifact,autorag] [--embedder use|e5] [--limit N]

Quick check: `python bench/ingest.py --limit 100`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, Advance, emit, machine, need_data, peak_rss_mb

from dari.app import Dari
from dari.config import Settings
from dari.protocols import Embedder
from dari.types import FileStatus, IngestReport

SETS = ("scifact", "autorag")
COLLECTION = "bench"
EDIT_LINE = " This sentence was added to measure a one-row edit."


class CountingEmbedder:
    """Wraps the real embedder to count the passages actually sent to the model."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts = 0

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_passages(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


def corpus_rows(name: str, limit: int | None) -> list[dict[str, str]]:
    """The corpus as rows of {"id", "title"?, "text"}, the first `limit` of them."""
    if name == "scifact":
        path = need_data("beir_scifact", "corpus.jsonl")
    else:
        path = need_data("ko_autorag_embedding_benchmark", "corpus.jsonl")
    rows: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            r = json.loads(line)
            if name == "scifact":
                rows.append({"id": r["_id"], "title": r["title"], "text": r["text"]})
            else:
                rows.append({"id": r["doc_id"], "text": r["contents"]})
    return rows


def write_folder(rows: list[dict[str, str]], folder: Path, per_file: int) -> list[Path]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = []
    for i in range(0, len(rows), per_file):
        path = folder / f"part-{i // per_file:05d}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in rows[i : i + per_file]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        files.append(path)
    return files


def edit_one_file(path: Path) -> None:
    """Append a sentence to the text of the first row of `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["text"] += EDIT_LINE
    lines[0] = json.dumps(row, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def timed_ingest(
    dari: Dari, folder: Path, n_files: int, label: str
) -> tuple[IngestReport, float, int]:
    """(report, wall seconds of `Dari.ingest`, passages sent to the embedder)."""
    counter = dari.embedder
    assert isinstance(counter, CountingEmbedder)
    before = counter.texts
    console = Console(stderr=True)
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=n_files)
        t = time.perf_counter()
        report = dari.ingest([folder], COLLECTION, progress=Advance(bar, task))
        wall = time.perf_counter() - t
    return report, wall, counter.texts - before


def statuses(report: IngestReport) -> dict[str, int]:
    return {s.value: report.count(s) for s in FileStatus if report.count(s)}


def bench_set(name: str, args: argparse.Namespace) -> dict[str, object]:
    rows = corpus_rows(name, args.limit)
    if not rows:
        sys.exit(f"{name}: no rows")
    folder = OUT / "ingest-src" / name
    files = write_folder(rows, folder, args.rows_per_file)
    text_bytes = sum(len((r.get("title", "") + r["text"]).encode("utf-8")) for r in rows)
    home = OUT / "ingest-home" / name
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, ingest={"id_field": "id"}, embedder={"name": args.embedder})
    dari = Dari(settings)
    counter = CountingEmbedder(dari.embedder)
    dari.__dict__["embedder"] = counter

    # Model loads happen on first use; keep them out of the throughput figures.
    t = time.perf_counter()
    dari.analyzer.terms_many(["워밍업 문장입니다.", "warm-up sentence"])
    counter.inner.embed_passages(["warm-up"])
    model_load_s = time.perf_counter() - t

    report, wall, embedded = timed_ingest(dari, folder, len(files), f"{name}: ingest")
    if report.failed:
        bad = [f for f in report.files if f.status == FileStatus.FAILED][:3]
        sys.exit(f"{name}: {report.failed} file(s) failed, e.g. {bad}")
    docs = sum(f.documents for f in report.files)
    chunks = sum(f.chunks for f in report.files)
    split = {k: round(v, 3) for k, v in report.timings_s.items()}
    split["other"] = round(report.seconds - sum(report.timings_s.values()), 3)
    full = {
        "seconds": round(wall, 3),
        "ingestor_seconds": round(report.seconds, 3),
        "vector_matrix_rebuild_s": round(wall - report.seconds, 3),
        "docs_per_s": round(docs / wall, 1),
        "chunks_per_s": round(chunks / wall, 1),
        "text_mb_per_s": round(text_bytes / 1e6 / wall, 3),
        "split_s": split,
        "split_share": {k: round(v / report.seconds, 3) for k, v in split.items()},
        "passages_embedded": embedded,
        "statuses": statuses(report),
    }

    noop_runs = []
    noop_statuses: dict[str, int] = {}
    noop_embedded = 0
    for i in range(args.repeats):
        again, seconds, n = timed_ingest(dari, folder, len(files), f"{name}: re-ingest {i + 1}")
        noop_runs.append(seconds)
        noop_statuses = statuses(again)
        noop_embedded += n
    noop = statistics.median(noop_runs)

    edited = files[len(files) // 2]
    edit_one_file(edited)
    after, edit_s, edit_embedded = timed_ingest(dari, folder, len(files), f"{name}: one edit")
    dari.close()
    return {
        "docs": docs,
        "files": len(files),
        "chunks": chunks,
        "text_bytes": text_bytes,
        "model_load_s": round(model_load_s, 3),
        "full": full,
        "no_change_reingest": {
            "seconds_median": round(noop, 4),
            "runs_s": [round(s, 4) for s in noop_runs],
            "ratio_to_full": round(noop / wall, 5),
            "statuses": noop_statuses,
            "all_unchanged": noop_statuses == {"unchanged": len(files)},
            "passages_embedded": noop_embedded,
        },
        "one_file_edited": {
            "file": edited.name,
            "seconds": round(edit_s, 4),
            "ratio_to_full": round(edit_s / wall, 5),
            "statuses": statuses(after),
            "updated": after.count(FileStatus.UPDATED),
            "only_that_file": after.count(FileStatus.UPDATED) == 1
            and any(f.status == FileStatus.UPDATED and f.path == str(edited) for f in after.files),
            "passages_embedded": edit_embedded,
            "chunks_in_file": sum(f.chunks for f in after.files if f.path == str(edited)),
        },
        "peak_rss_mb_so_far": round(peak_rss_mb(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: scifact,autorag")
    ap.add_argument("--embedder", choices=["use", "e5"], default="e5")
    ap.add_argument("--limit", type=int, default=None, help="first N documents of each corpus")
    ap.add_argument("--rows-per-file", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="no-change re-ingests (median)")
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        ap.error(f"unknown set(s): {', '.join(unknown)}")
    started = machine()

    results = {name: bench_set(name, args) for name in sets}
    suffix = f"-limit{args.limit}" if args.limit else ""
    emit(
        f"ingest{suffix}",
        {
            "embedder": args.embedder,
            "limit": args.limit,
            "rows_per_file": args.rows_per_file,
            "machine": started,
            "note": "seconds: wall time of Dari.ingest (incl. the vector matrix rebuild); "
            "split_s: IngestReport.timings_s, other = file hashing, recovery, bookkeeping; "
            "model loads are excluded (model_load_s); MB = 1e6 bytes of title+text",
            "sets": results,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )


if __name__ == "__main__":
    main()

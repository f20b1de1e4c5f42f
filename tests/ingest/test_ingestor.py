"""Incremental ingest, pruning, bad files in a batch, and crash recovery."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.conftest import WITH_FULLTEXT

from dari.app import Dari
from dari.config import Settings
from dari.errors import DariError
from dari.ingest.ingestor import list_files
from dari.testing import FakeEmbedder
from dari.types import FileStatus


@pytest.fixture(params=WITH_FULLTEXT)
def store_backend(request: pytest.FixtureRequest) -> str:
    """Incremental ingest and crash safety are proven on SQLite and on PostgreSQL (BM25 in tantivy,
    or in PostgreSQL too)."""
    return str(request.param)


def statuses(report) -> dict[str, FileStatus]:
    return {Path(f.path).name: f.status for f in report.files}


def test_reingest_skips_unchanged_and_reembeds_only_the_edited_file(dari: Dari, corpus: Path):
    first = dari.ingest([corpus], "c")
    assert set(statuses(first).values()) == {FileStatus.ADDED}
    embedder: FakeEmbedder = dari.embedder  # type: ignore[assignment]
    before = embedder.texts_embedded

    (corpus / "office.txt").write_text("The office opens at 9 am on Fridays.\n")
    second = dari.ingest([corpus], "c")
    assert statuses(second) == {
        "leave.md": FileStatus.UNCHANGED,
        "refunds.md": FileStatus.UNCHANGED,
        "office.txt": FileStatus.UPDATED,
    }
    assert embedder.texts_embedded - before == 1  # only the edited file's one chunk
    hits = dari.pipeline("c")._retriever.retrieve("When does the office open on Fridays?").hits
    assert "9 am" in hits[0].text
    assert not any("8 am" in h.text for h in hits)  # the old version is gone
    info = dari.store.collection("c")
    assert (info.files, info.documents) == (3, 3)
    assert dari.bm25("c").num_docs() == info.chunks


def test_prune_removes_deleted_files_and_their_chunks(dari: Dari, corpus: Path):
    dari.ingest([corpus], "c")
    (corpus / "refunds.md").unlink()
    report = dari.ingest([corpus], "c", prune=True)
    assert statuses(report)["refunds.md"] == FileStatus.REMOVED
    hits = dari.pipeline("c")._retriever.retrieve("refund within 30 days").hits
    assert all("refunds.md" not in h.source for h in hits)
    assert dari.bm25("c").num_docs() == dari.store.collection("c").chunks


def test_without_prune_deleted_files_stay(dari: Dari, corpus: Path):
    dari.ingest([corpus], "c")
    (corpus / "refunds.md").unlink()
    dari.ingest([corpus], "c")
    assert dari.store.collection("c").files == 3


def test_bad_files_are_reported_and_the_rest_ingested(dari: Dari, corpus: Path):
    (corpus / "empty.txt").write_text("")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (corpus / "korean-cp949.txt").write_bytes(
        "퇴직금은 1년 이상 근무한 직원에게 지급됩니다.".encode("cp949")
    )
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    (corpus / "bad.jsonl").write_text('{"text": "fine row"}\n{not json\n')
    report = dari.ingest([corpus], "c")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["korean-cp949.txt"].status == FileStatus.ADDED
    for bad in ("empty.txt", "binary.txt", "broken.pdf", "bad.jsonl"):
        assert by_name[bad].status == FileStatus.FAILED, bad
        assert by_name[bad].reason and by_name[bad].hint, bad
    assert "line 2" in by_name["bad.jsonl"].reason
    assert report.failed == 4 and not report.ok
    assert dari.store.collection("c").files == 4  # 3 corpus files + the cp949 one
    hits = dari.pipeline("c")._retriever.retrieve("퇴직금은 누구에게 지급되나요?").hits
    assert "퇴직금" in hits[0].text


def test_file_deleted_during_the_run_is_reported(dari: Dari, corpus: Path):
    files, _ = list_files([corpus])
    victim = files[-1]

    class DeleteTheLastFile:
        def start(self, total: int) -> None:
            assert total == len(files)

        def advance(self, result) -> None:
            if victim.exists():
                victim.unlink()

    report = dari.ingest([corpus], "c", progress=DeleteTheLastFile())
    failed = [f for f in report.files if f.status == FileStatus.FAILED]
    assert [Path(f.path).name for f in failed] == [victim.name]
    assert "disappeared" in failed[0].reason


def test_missing_path_is_reported(dari: Dari, tmp_path: Path):
    report = dari.ingest([tmp_path / "nope"], "c")
    assert report.files[0].status == FileStatus.FAILED
    assert "no such file" in report.files[0].reason


def psycopg_errors() -> type[Exception]:
    try:
        import psycopg
    except ImportError:
        return DariError
    return psycopg.Error


def files_written(settings: Settings) -> int:
    """Files the ingest has staged or finished so far, read as another process would."""
    if settings.store.backend == "sqlite":
        db = settings.home_dir / "dari.db"
        if not db.exists():
            return 0
        with sqlite3.connect(db) as con:
            return int(con.execute("SELECT count(*) FROM files").fetchone()[0])
    import psycopg

    with psycopg.connect(settings.store.postgres_url) as con:
        row = con.execute("SELECT count(*) FROM files").fetchone()
        return int(row[0]) if row else 0


_SLOW_INGEST = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dari.app import Dari
    from dari.config import Settings
    from dari.testing import FakeEmbedder

    class Slow(FakeEmbedder):
        def embed_passages(self, texts):
            time.sleep(0.02)  # make the run long enough to be killed in the middle
            return super().embed_passages(texts)

    d = Dari(Settings.model_validate_json(sys.argv[1]))
    d.__dict__["embedder"] = Slow(d.analyzer)
    d.ingest([Path(sys.argv[2])], "c")
    """
)


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_is_consistent(tmp_path: Path, settings, analyzer):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(400):
        (folder / f"doc{i:03d}.md").write_text(
            f"# Document {i}\n\nThis is document number {i}. It talks about topic {i % 17} "
            f"and item {i * 7}.\n\n## Details\n\nMore text for document {i}.\n"
        )
    config = settings.model_dump_json()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_INGEST, config, str(folder)])
    deadline = time.monotonic() + 120
    ready = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            ready = files_written(settings)
        except (sqlite3.Error, psycopg_errors()):  # not created yet
            ready = 0
        if ready >= 40:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    d = Dari(settings)
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    report = d.ingest([folder], "c")
    assert report.ok
    info = d.store.collection("c")
    assert (info.files, info.documents) == (400, 400)
    assert d.store.pending_files("c") == []
    assert d.bm25("c").num_docs() == info.chunks  # no duplicate or orphan chunks in BM25
    assert len(d.vectors("c")) == info.chunks
    hits = d.pipeline("c")._retriever.retrieve("document number 123 item 861").hits
    assert hits[0].source.endswith("doc123.md")
    d.close()


@pytest.mark.parametrize("bm25_committed", [True, False])
def test_interrupted_write_is_rolled_forward(
    dari: Dari, corpus: Path, monkeypatch: pytest.MonkeyPatch, bm25_committed: bool
):
    """A crash after staging in SQLite (with or without the BM25 commit) is repaired next run."""
    dari.ingest([corpus], "c")
    (corpus / "office.txt").write_text("The office opens at 10 am during the holidays.\n")

    from dari.index.bm25 import TantivyIndex
    from dari.index.store import Store

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(Store, "finish_files", crash)
    if not bm25_committed:
        monkeypatch.setattr(TantivyIndex, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        dari.ingest([corpus], "c")
    monkeypatch.undo()
    assert [p for p, _, _ in dari.store.pending_files("c")] == [str(corpus / "office.txt")]
    # Until repaired, readers still see the old version only.
    assert (
        "8 am" in dari.pipeline("c")._retriever.retrieve("When does the office open?").hits[0].text
    )

    report = dari.ingest([corpus], "c")
    assert statuses(report)["office.txt"] == FileStatus.UNCHANGED  # rolled forward already
    assert dari.store.pending_files("c") == []
    info = dari.store.collection("c")
    assert (info.files, info.documents) == (3, 3)
    assert dari.bm25("c").num_docs() == info.chunks
    top = dari.pipeline("c")._retriever.retrieve("When does the office open?").hits[0]
    assert "10 am" in top.text


def test_changing_chunking_acl_or_sidecar_reingests(dari: Dari, corpus: Path):
    dari.ingest([corpus], "c")
    assert set(statuses(dari.ingest([corpus], "c")).values()) == {FileStatus.UNCHANGED}
    assert set(statuses(dari.ingest([corpus], "c", acl=["hr"])).values()) == {FileStatus.UPDATED}
    (corpus / "office.txt.meta.json").write_text('{"acl": ["facilities"]}')
    report = statuses(dari.ingest([corpus], "c", acl=["hr"]))
    assert report["office.txt"] == FileStatus.UPDATED and report["leave.md"] == FileStatus.UNCHANGED
    dari.settings.chunking.chunk_tokens = 64
    assert set(statuses(dari.ingest([corpus], "c", acl=["hr"])).values()) == {FileStatus.UPDATED}


def test_failure_reason_does_not_repeat_the_file_name(dari: Dari, corpus: Path):
    (corpus / "empty.txt").write_text("")
    report = dari.ingest([corpus], "c")
    (failed,) = [f for f in report.files if f.status == FileStatus.FAILED]
    assert failed.path.endswith("empty.txt") and "empty" in failed.reason
    assert "empty.txt" not in failed.reason

"""A replica's own BM25 index follows a store other processes write to (dari.index.bm25_sync), on
SQLite and PostgreSQL; and two Dari objects with their own homes over one PostgreSQL store answer
from each other's ingests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.index.test_store import row

from dari.app import Dari
from dari.config import Settings
from dari.index.analyzer import Analyzer
from dari.index.bm25 import TantivyIndex
from dari.index.bm25_sync import STAMP, sync
from dari.index.store import Store
from dari.testing import FakeEmbedder, FakeGenerator
from dari.types import Chunk


def write(store: Store, path: str, *rows: tuple) -> None:  # type: ignore[type-arg]
    """What an ingest on another replica does to the store."""
    store.stage_file("docs", path, "sha-" + rows[0][0], 10, list(rows))
    store.finish_files("docs", [path])


def hits(index: TantivyIndex, query: str, acl: tuple[str, ...] | None = None) -> list[str]:
    return sorted(chunk for chunk, _ in index.search(query, 10, acl))


def test_a_replica_catches_up_with_writes_it_did_not_make(
    store: Store, tmp_path: Path, analyzer: Analyzer
) -> None:
    folder = tmp_path / "replica-b" / "bm25"
    index = TantivyIndex(folder, analyzer)
    assert sync(index, store, "docs", folder) == 0

    write(store, "a.md", row("d1"))  # another replica ingests
    assert hits(index, "chunk") == []  # not yet
    assert sync(index, store, "docs", folder) == store.generation("docs")
    assert hits(index, "chunk") == ["d1:c0", "d1:c1"]

    # the file changes: its document is replaced by one with other chunks
    replaced = row("d2", n=1)
    replaced[3][0] = Chunk("d2:c0", "d2", replaced[2][0].id, 0, "rewritten paragraph")
    write(store, "a.md", replaced)
    sync(index, store, "docs", folder)
    assert hits(index, "chunk") == []
    assert hits(index, "rewritten") == ["d2:c0"]

    store.remove_files("docs", ["a.md"])
    sync(index, store, "docs", folder)
    assert hits(index, "rewritten") == []
    index.close()


def test_new_acl_tags_reach_the_replica(store: Store, tmp_path: Path, analyzer: Analyzer) -> None:
    folder = tmp_path / "b" / "bm25"
    index = TantivyIndex(folder, analyzer)
    write(store, "a.md", row("d1", acl=("hr",)))
    sync(index, store, "docs", folder)
    assert hits(index, "chunk", acl=("eng",)) == []
    write(store, "a.md", row("d1b", acl=("eng",)))  # the same file, its tags changed
    sync(index, store, "docs", folder)
    assert hits(index, "chunk", acl=("eng",)) == ["d1b:c0", "d1b:c1"]
    assert hits(index, "chunk", acl=("hr",)) == []
    index.close()


def test_a_second_process_on_the_same_home_finds_the_work_done(
    store: Store, tmp_path: Path, analyzer: Analyzer
) -> None:
    folder = tmp_path / "shared" / "bm25"
    first = TantivyIndex(folder, analyzer)
    write(store, "a.md", row("d1"))
    sync(first, store, "docs", folder)
    first.close()
    second = TantivyIndex(folder, analyzer)
    second.clear = None  # type: ignore[assignment,method-assign]  # a rebuild would call it
    assert sync(second, store, "docs", folder) == store.generation("docs")
    assert hits(second, "chunk") == ["d1:c0", "d1:c1"]


def test_an_index_of_an_earlier_collection_of_that_name_is_rebuilt(
    store: Store, tmp_path: Path, analyzer: Analyzer
) -> None:
    folder = tmp_path / "b" / "bm25"
    index = TantivyIndex(folder, analyzer)
    write(store, "a.md", row("d1"))
    write(store, "b.md", row("d9", path="b.md"))
    sync(index, store, "docs", folder)

    store.delete_collection("docs")  # on another replica, then made again
    store.ensure_collection("docs", "fake-hash", 4)
    write(store, "c.md", row("d3", path="c.md"))
    sync(index, store, "docs", folder)
    assert hits(index, "chunk") == ["d3:c0", "d3:c1"]
    index.close()


def test_an_index_older_than_the_log_is_rebuilt(
    store: Store, tmp_path: Path, analyzer: Analyzer
) -> None:
    folder = tmp_path / "b" / "bm25"
    index = TantivyIndex(folder, analyzer)
    sync(index, store, "docs", folder)
    write(store, "a.md", row("d1"))
    write(store, "b.md", row("d2", path="b.md"))
    with store.transaction() as db:  # the log was pruned (or the store predates it)
        db.execute("DELETE FROM changes WHERE generation = 1")
    assert store.changes_since("docs", 0) is None
    sync(index, store, "docs", folder)
    assert hits(index, "chunk") == ["d1:c0", "d1:c1", "d2:c0", "d2:c1"]
    index.close()


def test_a_lost_stamp_means_a_rebuild_not_duplicates(
    store: Store, tmp_path: Path, analyzer: Analyzer
) -> None:
    folder = tmp_path / "b" / "bm25"
    index = TantivyIndex(folder, analyzer)
    write(store, "a.md", row("d1"))
    sync(index, store, "docs", folder)
    (folder / STAMP).unlink()
    sync(index, store, "docs", folder)
    assert index.num_docs() == 2
    index.close()


# --- two Dari processes' worth of objects, one PostgreSQL store ------------------------------


def replica(home: Path, url: str, analyzer: Analyzer, fulltext: str = "tantivy") -> Dari:
    store = {"backend": "postgres", "postgres_url": url, "pool_size": 2, "fulltext": fulltext}
    settings = Settings(
        home=home,
        cache={"enabled": False},  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
    )
    d = Dari(settings)
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    d.__dict__["generator"] = FakeGenerator()
    return d


@pytest.mark.parametrize("fulltext", ["tantivy", "postgres"])
def test_what_one_replica_ingests_another_retrieves(
    postgres_url: str, tmp_path: Path, corpus: Path, analyzer: Analyzer, fulltext: str
) -> None:
    """With tantivy, b's own index catches up; with store.fulltext = "postgres" there is one
    index, in the store's server, and no replica keeps one under its home."""
    a = replica(tmp_path / "a", postgres_url, analyzer, fulltext)
    b = replica(tmp_path / "b", postgres_url, analyzer, fulltext)
    try:
        report = a.ingest([corpus], "docs")
        assert not report.failed
        found = b.retriever("docs").retrieve("refund within 30 days", 3).ranked
        assert found and "refund" in found[0].text.lower()
        assert b.bm25("docs").search("refund", 5)  # b's own BM25 index caught up

        (corpus / "refunds.md").unlink()
        a.ingest([corpus], "docs", prune=True)
        after = b.retriever("docs").retrieve("refund within 30 days", 3).ranked
        assert all("refund" not in h.text.lower() for h in after)
        assert b.bm25("docs").search("refund", 5) == []
        assert b.store.collection("docs").documents == a.store.collection("docs").documents
        bm25_folders = list((tmp_path / "b").glob("collections/*/bm25"))
        assert bool(bm25_folders) == (fulltext == "tantivy")
    finally:
        a.close()
        b.close()
        shutil.rmtree(tmp_path / "a", ignore_errors=True)


def test_the_change_log_keeps_the_last_generations(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dari.index.store as store_module

    monkeypatch.setattr(store_module, "CHANGES_KEPT", 150)
    for i in range(200):
        write(store, f"f{i}.md", row(f"d{i}", path=f"f{i}.md", n=1))
    assert store.generation("docs") == 200
    (first,) = store.rows("SELECT min(generation) FROM changes WHERE collection = 'docs'")[0]
    assert first == 51  # pruned at generation 200: 200 - 150 and older went
    assert store.changes_since("docs", 40) is None  # too far behind: rebuild
    assert store.changes_since("docs", 190) == [f"d{i}" for i in range(190, 200)]

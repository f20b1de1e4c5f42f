"""The store on each engine (SQLite, and PostgreSQL when the postgres extra is installed): staged
writes, the ready flip, removal, the embedding cache, traces. Engine-specific failure modes at the
end."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.index.stores import reopen

from dari.errors import StoreError, UnknownCollection
from dari.index.store import Store
from dari.types import Chunk, Document, Section

Row = tuple[str, Document, list[Section], list[Chunk], list[str]]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "dari.db")
    s.ensure_collection("docs", "fake-hash", 4)
    yield s
    s.close()


def count(store: Store, sql: str) -> int:
    return int(store.rows(sql)[0][0])


def row(doc_id: str, path: str = "a.md", n: int = 2, acl: tuple[str, ...] = ()) -> Row:
    """One document with one section and n chunks, whose embedding keys are `<doc>-k<i>`."""
    doc = Document(
        path, f"Title {doc_id}", (), "md", "hash-" + doc_id, acl=acl, metadata={"k": "값"}
    )
    section = Section(f"{doc_id}:s0", doc_id, 0, f"section of {doc_id}", "Heading", 2)
    chunks = [
        Chunk(f"{doc_id}:c{i}", doc_id, section.id, i, f"chunk {i} of {doc_id}") for i in range(n)
    ]
    return doc_id, doc, [section], chunks, [f"{doc_id}-k{i}" for i in range(n)]


def chunk_ids(*rows: Row) -> list[str]:
    return [c.id for r in rows for c in r[3]]


def generation(store: Store) -> int:
    return store.collection("docs").generation


# --- staging and the ready flip -------------------------------------------------------------


def test_stage_file_leaves_documents_pending(store: Store) -> None:
    r = row("d1")
    assert store.stage_file("docs", "a.md", "sha1", 10, [r]) == []
    assert store.file_state("docs", "a.md") == ("sha1", "pending")
    assert store.source_rows(chunk_ids(r)) == {}
    info = store.collection("docs")
    assert (info.files, info.documents, info.chunks) == (0, 0, 0)
    assert store.chunks_for_docs(["d1"])  # present, only hidden from readers


def test_finish_files_flips_to_ready(store: Store) -> None:
    r = row("d1")
    store.stage_file("docs", "a.md", "sha1", 10, [r])
    before = generation(store)
    store.finish_files("docs", ["a.md"])
    assert store.file_state("docs", "a.md") == ("sha1", "ready")
    assert generation(store) == before + 1
    rows = store.source_rows(chunk_ids(r))
    assert set(rows) == {"d1:c0", "d1:c1"}
    src = rows["d1:c1"]
    assert (src.section_id, src.doc_id, src.chunk_text) == ("d1:s0", "d1", "chunk 1 of d1")
    assert (src.section_text, src.heading, src.page) == ("section of d1", "Heading", 2)
    assert (src.source, src.title) == ("a.md", "Title d1")
    info = store.collection("docs")
    assert (info.files, info.documents, info.chunks) == (1, 1, 2)


def test_restage_keeps_old_visible_until_finish_then_deletes_it(store: Store) -> None:
    old, new = row("d1"), row("d2", n=3)
    store.stage_file("docs", "a.md", "sha1", 10, [old])
    store.finish_files("docs", ["a.md"])

    replaced = store.stage_file("docs", "a.md", "sha2", 12, [new])
    assert replaced == ["d1"]
    assert set(store.source_rows(chunk_ids(old, new))) == set(chunk_ids(old))

    store.finish_files("docs", ["a.md"])
    assert set(store.source_rows(chunk_ids(old, new))) == set(chunk_ids(new))
    assert store.chunks_for_docs(["d1"]) == []  # replaced document gone, with its chunks
    assert store.collection("docs").documents == 1


def test_restage_of_a_pending_file_drops_the_earlier_pending_write(store: Store) -> None:
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1")])
    store.stage_file("docs", "a.md", "sha2", 10, [row("d2")])
    [(path, new, replaces)] = store.pending_files("docs")
    assert (path, new, replaces) == ("a.md", ["d2"], [])
    assert store.chunks_for_docs(["d1"]) == []


def test_pending_files_lists_interrupted_writes(store: Store) -> None:
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1")])
    store.finish_files("docs", ["a.md"])
    assert store.pending_files("docs") == []

    store.stage_file("docs", "a.md", "sha2", 10, [row("d2"), row("d3")])
    store.stage_file("docs", "b.md", "sha3", 10, [row("d4", path="b.md")])
    pending = sorted(store.pending_files("docs"))
    assert pending == [("a.md", ["d2", "d3"], ["d1"]), ("b.md", ["d4"], [])]


def test_pending_files_survive_reopening(store: Store, tmp_path: Path) -> None:
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1")])
    again = reopen(store)
    try:
        assert again.pending_files("docs") == [("a.md", ["d1"], [])]
    finally:
        again.close()


def test_file_state_of_unknown_file(store: Store) -> None:
    assert store.file_state("docs", "nope.md") is None


def test_failed_stage_is_rolled_back_whole(store: Store) -> None:
    doc_id, doc, sections, chunks, keys = row("d1")
    with pytest.raises(ValueError):  # one key short: zip(strict=True) fails mid-transaction
        store.stage_file("docs", "a.md", "sha1", 10, [(doc_id, doc, sections, chunks, keys[:1])])
    assert store.file_state("docs", "a.md") is None
    assert store.chunks_for_docs(["d1"]) == []


def test_chunks_for_docs_in_order_with_acl(store: Store) -> None:
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1", n=3, acl=("hr",))])
    rows = store.chunks_for_docs(["d1"])
    assert [(r.chunk_id, r.doc_id, r.text, r.acl) for r in rows] == [
        (f"d1:c{i}", "d1", f"chunk {i} of d1", ("hr",)) for i in range(3)
    ]
    assert {"lang=en"} <= set(rows[0].meta)


# --- removal --------------------------------------------------------------------------------


def test_remove_files(store: Store) -> None:
    a, b = row("d1"), row("d2", path="b.md")
    store.stage_file("docs", "a.md", "sha1", 10, [a])
    store.stage_file("docs", "b.md", "sha2", 10, [b])
    store.finish_files("docs", ["a.md", "b.md"])
    before = generation(store)

    assert store.remove_files("docs", ["a.md"]) == ["d1"]
    assert store.file_paths("docs") == ["b.md"]
    assert set(store.source_rows(chunk_ids(a, b))) == set(chunk_ids(b))
    assert store.chunks_for_docs(["d1"]) == []
    assert generation(store) == before + 1


def test_remove_files_includes_pending_documents(store: Store) -> None:
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1")])
    assert store.remove_files("docs", ["a.md"]) == ["d1"]
    assert store.pending_files("docs") == []


# --- embeddings -----------------------------------------------------------------------------


def test_embeddings_cache_round_trip_in_float16(store: Store) -> None:
    rng = np.random.default_rng(0)
    vecs = {f"k{i}": rng.standard_normal(8).astype(np.float32) for i in range(3)}
    store.put_embeddings(vecs.items())
    found = store.cached_embeddings(["k0", "k2", "missing"])
    assert set(found) == {"k0", "k2"}
    for key in found:
        assert found[key].dtype == np.float32
        np.testing.assert_array_equal(found[key], vecs[key].astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(found[key], vecs[key], rtol=1e-3, atol=1e-3)
    ((blob,),) = store.rows("SELECT vec FROM embeddings WHERE key = 'k0'")
    assert len(blob) == 8 * 2  # stored as float16


def test_embeddings_cache_keeps_the_first_vector(store: Store) -> None:
    store.put_embeddings([("k", np.ones(4, dtype=np.float32))])
    store.put_embeddings([("k", np.zeros(4, dtype=np.float32))])
    np.testing.assert_array_equal(store.cached_embeddings(["k"])["k"], np.ones(4))


def test_cached_embeddings_in_batches_over_500(store: Store) -> None:
    store.put_embeddings((f"k{i}", np.full(2, i % 7, dtype=np.float32)) for i in range(1200))
    found = store.cached_embeddings([f"k{i}" for i in range(1200)])
    assert len(found) == 1200
    assert found["k1199"][0] == 1199 % 7


def test_ready_vectors(store: Store) -> None:
    a = row("d1", n=2, acl=("hr",))
    b = row("d2", path="b.md", n=1)
    store.put_embeddings(
        [
            ("d1-k0", np.array([1, 0, 0, 0.5])),
            ("d1-k1", np.array([0, 1, 0, 0])),
            ("d2-k0", np.array([0, 0, 1, 0])),
        ]
    )
    store.stage_file("docs", "a.md", "sha1", 10, [a])
    store.stage_file("docs", "b.md", "sha2", 10, [b])
    store.finish_files("docs", ["a.md"])  # b.md stays pending: not ready, not returned

    ids, tags, matrix = store.ready_vectors("docs")
    assert ids == ["d1:c0", "d1:c1"]
    assert [acl for acl, _ in tags] == [("hr",), ("hr",)]
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[1, 0, 0, 0.5], [0, 1, 0, 0]])


def test_ready_vectors_of_empty_collection(store: Store) -> None:
    ids, acls, matrix = store.ready_vectors("docs")
    assert (ids, acls, matrix.shape) == ([], [], (0, 0))


def test_ready_vectors_skips_chunks_without_embedding(store: Store) -> None:
    store.put_embeddings([("d1-k1", np.ones(4))])
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1")])
    store.finish_files("docs", ["a.md"])
    ids, _, matrix = store.ready_vectors("docs")
    assert ids == ["d1:c1"]
    assert matrix.shape == (1, 4)


# --- collections ----------------------------------------------------------------------------


def test_unknown_collection_lists_existing_names(store: Store) -> None:
    store.ensure_collection("alpha", "fake-hash", 4)
    with pytest.raises(UnknownCollection) as info:
        store.collection("nope")
    assert info.value.name == "nope"
    assert "'nope'" in info.value.message
    assert "existing: alpha, docs" in info.value.message
    assert "--collection nope" in info.value.hint
    assert isinstance(info.value, StoreError)


def test_unknown_collection_when_there_are_none(tmp_path: Path) -> None:
    s = Store(tmp_path / "empty.db")
    try:
        with pytest.raises(UnknownCollection, match="none yet"):
            s.collection("docs")
    finally:
        s.close()


def test_ensure_collection_is_idempotent(store: Store) -> None:
    store.ensure_collection("docs", "other", 8)
    info = store.collection("docs")
    assert (info.embedder, info.dim, info.generation) == ("fake-hash", 4, 0)
    assert store.collection_names() == ["docs"]


def test_delete_collection_cascades(store: Store) -> None:
    store.ensure_collection("other", "fake-hash", 4)
    a, b = row("d1"), row("d2", path="b.md")
    store.stage_file("docs", "a.md", "sha1", 10, [a])
    store.stage_file("other", "b.md", "sha2", 10, [b])
    store.finish_files("docs", ["a.md"])
    store.finish_files("other", ["b.md"])

    store.delete_collection("docs")
    assert store.collection_names() == ["other"]
    assert store.file_paths("docs") == []
    assert count(store, "SELECT count(*) FROM documents WHERE collection = 'docs'") == 0
    assert count(store, "SELECT count(*) FROM sections WHERE doc_id = 'd1'") == 0
    assert count(store, "SELECT count(*) FROM chunks WHERE doc_id = 'd1'") == 0
    assert set(store.source_rows(chunk_ids(a, b))) == set(chunk_ids(b))
    with pytest.raises(UnknownCollection):
        store.delete_collection("docs")


# --- traces and sizes -----------------------------------------------------------------------


def test_save_trace_and_read_it_back(store: Store) -> None:
    body = {"query": "연차 휴가는?", "hits": [{"n": 1}], "timings_ms": {"bm25": 1.5}}
    store.save_trace("t1", "docs", body)
    assert store.trace("t1") == body
    ((raw,),) = store.rows("SELECT body FROM traces WHERE id = 't1'")
    assert "연차" in raw  # stored readable, not \\u-escaped
    assert json.loads(raw) == body


def test_trace_unknown_id(store: Store) -> None:
    assert store.trace("nope") is None


def test_sizes_names_the_database(sqlite_store: Store) -> None:
    assert "dari.db" in sqlite_store.sizes()
    assert all(v >= 0 for v in sqlite_store.sizes().values())


def test_unopenable_database_is_store_error(tmp_path: Path) -> None:
    (tmp_path / "dari.db").mkdir()  # a folder where the database file should be
    with pytest.raises(StoreError) as info:
        Store(tmp_path / "dari.db")
    assert "cannot open the store" in info.value.message
    assert "DARI_HOME" in info.value.hint


def test_uncreatable_home_is_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        Store(blocker / "dari.db")  # its parent is a file
    assert "DARI_HOME" in info.value.hint


def test_wal_mode(sqlite_store: Store) -> None:
    assert sqlite_store.rows("PRAGMA journal_mode") == [("wal",)]


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises((sqlite3.IntegrityError, StoreError)), store.transaction() as db:
        db.execute("INSERT INTO sections VALUES ('s', 'no-doc', 0, 't', '', NULL, '')")


def test_disk_full_during_a_write_is_a_store_error_and_rolls_back(tmp_path: Path) -> None:
    import sqlite3

    from dari.errors import StoreError

    store = Store(tmp_path / "dari.db")
    store.ensure_collection("c", "fake", 4)

    class FullDisk:
        """Stands in for the connection: COMMIT fails the way SQLite reports a full disk."""

        def __init__(self, real: sqlite3.Connection) -> None:
            self.real = real

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return self.real.execute(sql, *args)

    real = store.db._db  # type: ignore[attr-defined]
    store.db._local.db = FullDisk(real)  # type: ignore[attr-defined]  # this thread's connection
    with pytest.raises(StoreError, match="disk is full") as err, store.transaction() as db:
        db.execute("UPDATE collections SET generation = 99 WHERE name = 'c'")
    assert "free disk space" in err.value.hint
    store.db._local.db = real  # type: ignore[attr-defined]
    assert store.generation("c") == 0  # nothing half-written


def test_a_store_made_before_section_flags_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE sections(id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,"
        " text TEXT NOT NULL, heading TEXT NOT NULL, page INTEGER)"
    )
    db.execute("INSERT INTO sections VALUES ('s1', 'd', 0, 'kept', '', NULL)")
    db.commit()
    db.close()
    store = Store(path)
    try:
        rows = store.rows("SELECT id, text, flags FROM sections")
        assert rows == [("s1", "kept", "")]
    finally:
        store.close()


def test_ready_among_names_only_ready_documents(store: Store) -> None:
    store.stage_file("docs", "a.md", "sha1", 10, [row("d1")])
    store.finish_files("docs", ["a.md"])
    store.stage_file("docs", "b.md", "sha2", 10, [row("d2", path="b.md")])  # still pending
    assert store.ready_among(["d1", "d2", "gone"]) == {"d1"}
    assert store.ready_among([]) == set()

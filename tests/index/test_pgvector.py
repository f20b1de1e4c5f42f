"""What only the pgvector backend has to get right: a table per collection (any dimension), the
HNSW index and its filtered scans, several processes on one database (their syncs, their
schema creation), a server that goes away and comes back, and the app's wiring. The behaviour
shared with the other backends is in test_vector_backends.py."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.index.test_vectors import DIM, add_file, brute_force, unit

from dari.db.local_postgres import LocalPostgres
from dari.db.postgres import describe
from dari.errors import BackendError, ConfigError, MissingExtra
from dari.index.pgvector import PgVectorIndex, connect, drop, table_of
from dari.index.store import Store
from dari.types import Chunk, Document, Section

pytest.importorskip("psycopg_pool", reason="the postgres extra is not installed")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "dari.db")
    s.ensure_collection("docs", "fake", DIM)
    yield s
    s.close()


@pytest.fixture
def pool(postgres_url: str) -> Iterator[Any]:
    p = connect(postgres_url, 4, 5.0)
    yield p
    p.close()


def add(store: Store, collection: str, path: str, vectors: np.ndarray) -> list[str]:
    """One ready document in `collection` (add_file writes to "docs" only)."""
    doc_id = f"{collection}-{path}"
    doc = Document(path, doc_id, (), "md", "h")
    section = Section(f"{doc_id}:s0", doc_id, 0, "text")
    chunks = [Chunk(f"{doc_id}:c{i}", doc_id, section.id, i, f"t{i}") for i in range(len(vectors))]
    keys = [f"{doc_id}-{i}" for i in range(len(vectors))]
    store.put_embeddings(zip(keys, vectors, strict=True))
    store.stage_file(collection, path, "sha", 1, [(doc_id, doc, [section], chunks, keys)])
    store.finish_files(collection, [path])
    return [c.id for c in chunks]


def open_index(pool: Any, store: Store, stamp: Path, collection: str = "docs") -> PgVectorIndex:
    gen = store.generation(collection)
    return PgVectorIndex.open(pool, store, collection, "t_", stamp, gen)


def tables(pool: Any) -> dict[str, tuple[str, int]]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT name, table_name, dim FROM dari_vector_collections")
        return {name: (table, dim) for name, table, dim in rows}


def test_collections_of_different_dimensions_coexist(
    store: Store, pool: Any, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    narrow = add(store, "docs", "a.md", unit(rng, 5))
    store.ensure_collection("wide", "fake", 16)
    wide_vectors = rng.standard_normal((4, 16)).astype(np.float32)
    wide_vectors /= np.linalg.norm(wide_vectors, axis=1, keepdims=True)
    wide = add(store, "wide", "a.md", wide_vectors)
    a = open_index(pool, store, tmp_path / "a.json")
    b = open_index(pool, store, tmp_path / "b.json", "wide")
    assert (len(a), len(b)) == (5, 4)
    assert {c for c, _ in a.search(unit(rng, 1)[0], 10)} == set(narrow)
    assert [c for c, _ in b.search(wide_vectors[2], 1)] == [wide[2]]
    assert b.vectors_of([wide[0]]).shape == (1, 16)
    assert {n: d for n, (_, d) in tables(pool).items()} == {"t_docs": 8, "t_wide": 16}


def test_a_new_embedding_size_replaces_the_table(store: Store, pool: Any, tmp_path: Path) -> None:
    add_file(store, "a.md", unit(np.random.default_rng(1), 3))
    assert len(open_index(pool, store, tmp_path / "a.json")) == 3
    other = Store(tmp_path / "other.db")  # the same collection name, embedded at another size
    other.ensure_collection("docs", "fake", 16)
    add(other, "docs", "b.md", np.eye(16, dtype=np.float32)[:2])
    index = open_index(pool, other, tmp_path / "b.json")
    assert len(index) == 2
    assert tables(pool)["t_docs"][1] == 16
    other.close()


def test_two_replicas_see_each_others_sync(store: Store, postgres_url: str, tmp_path: Path) -> None:
    """Two processes (two pools, two index objects) over one database: what one syncs, the
    other searches at once; its own open finds nothing to change."""
    rng = np.random.default_rng(2)
    first = add_file(store, "a.md", unit(rng, 4))
    pools = [connect(postgres_url, 2, 5.0) for _ in range(2)]
    try:
        a = open_index(pools[0], store, tmp_path / "a.json")
        b = open_index(pools[1], store, tmp_path / "b.json")
        assert len(b) == 4
        assert b.sync(store, "docs") == {"added": 0, "deleted": 0, "retagged": 0}
        second = add_file(store, "b.md", unit(rng, 3))
        store.remove_files("docs", ["a.md"])
        open_index(pools[0], store, tmp_path / "a.json")  # replica A syncs the new generation
        q = unit(rng, 1)[0]
        assert {c for c, _ in b.search(q, 10)} == set(second)  # B's old object sees it
        assert not b.vectors_of([first[0]]).any()
        drop(pools[0], "t_docs")  # A deletes the collection: B reads nothing, no error
        assert (b.search(q, 10), len(b), len(a)) == ([], 0, 0)
    finally:
        for p in pools:
            p.close()


def test_processes_that_start_and_sync_at_once_take_turns(
    tmp_path: Path, postgres_url: str
) -> None:
    """Schema creation and the first sync of one collection, from four processes at once on an
    empty database: no duplicate-object error, every row once."""
    path = tmp_path / "dari.db"
    seed = Store(path)
    seed.ensure_collection("docs", "fake", DIM)
    rng = np.random.default_rng(3)
    for i in range(5):
        add_file(seed, f"f{i}.md", unit(rng, 40))
    seed.close()
    barrier, results, errors = threading.Barrier(4), [], []

    def replica() -> None:
        store = Store(path)
        try:
            barrier.wait()
            pool = connect(postgres_url, 2, 10.0)
            try:
                results.append(PgVectorIndex(pool, "t_docs").sync(store, "docs"))
            finally:
                pool.close()
        except Exception as exc:  # reported below, with the thread's error
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(r["added"] for r in results) == [0, 0, 0, 200]
    with connect(postgres_url, 1, 5.0) as pool:
        assert len(PgVectorIndex(pool, "t_docs")) == 200


def test_filtered_searches_use_the_hnsw_index_and_still_fill_k(
    store: Store, pool: Any, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    public: list[str] = []
    for d in range(30):  # 3,000 rows; every other document readable by "hr" only
        ids = add_file(store, f"f{d}.md", unit(rng, 100), acl=["hr"] if d % 2 else [])
        public += [] if d % 2 else ids
    index = open_index(pool, store, tmp_path / "s.json")
    q = unit(rng, 1)[0]
    with pool.connection() as conn:
        sql = (
            f"EXPLAIN SELECT chunk_id FROM {table_of('t_docs')} ORDER BY embedding <#> %s LIMIT 40"
        )
        plan = " ".join(r[0] for r in conn.execute(sql, (q,)))
    assert "_hnsw" in plan
    found = [c for c, _ in index.search(q, 40, ["sales"])]
    assert len(found) == 40 and set(found) <= set(public)
    exact = brute_force(store, q, set(public))[:40]
    assert len(set(found) & set(exact)) >= 38  # approximate: recall at least 0.95
    scores = [s for _, s in index.search(q, 40)]
    assert scores == sorted(scores, reverse=True)  # the relaxed order is sorted again


@pytest.mark.slow
def test_a_stopped_server_is_a_clear_error_and_its_return_is_picked_up(
    store: Store, tmp_path: Path, own_postgres: LocalPostgres
) -> None:
    """Its own server (the session's is shared): stopped, every call is a BackendError naming
    host:port; started again, the same index object answers without any restart of dari."""
    server = own_postgres
    add_file(store, "a.md", unit(np.random.default_rng(5), 3))
    pool = connect(server.url, 2, 2.0)
    index = open_index(pool, store, tmp_path / "s.json")
    q = unit(np.random.default_rng(6), 1)[0]
    assert len(index.search(q, 5)) == 3
    server.stop("fast")
    for call in (lambda: index.search(q, 5), lambda: len(index)):
        with pytest.raises(BackendError) as info:
            call()
        where = f"127.0.0.1:{server.port}/postgres"
        assert f"PostgreSQL (pgvector) at {where} failed" in str(info.value)
        assert "vectors.url" in info.value.hint
    server.start()
    assert len(index.search(q, 5)) == 3
    pool.close()


def test_errors_name_the_server_never_the_password() -> None:
    url = "postgresql://dari:s3cret@127.0.0.1:9/dari"
    assert describe(url) == "127.0.0.1:9/dari"
    assert describe("host=db user=dari password=s3cret") == "db:5432"
    with pytest.raises(BackendError) as info:
        connect(url, 1, 2.0)
    assert "127.0.0.1:9/dari" in str(info.value)
    assert "s3cret" not in str(info.value) + info.value.hint
    with pytest.raises(BackendError) as bad:
        connect("postgresql://dari:s3cret@127.0.0.1:9/dari?nonsense=1", 1, 2.0)
    assert "s3cret" not in str(bad.value)


def test_settings_extra_and_pgvector_version_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from dari.index.pgvector import _check_version

    with pytest.raises(ConfigError, match=r"store\.postgres_url"):
        connect("", 1, 2.0)
    _check_version("0.8.2", "db:5432")
    _check_version("0.10.0", "db:5432")
    with pytest.raises(BackendError, match=r"pgvector 0\.7\.4; dari needs 0\.8") as old:
        _check_version("0.7.4", "db:5432")
    assert "ALTER EXTENSION vector UPDATE" in old.value.hint
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(MissingExtra) as info:
        connect("postgresql://127.0.0.1:9/x", 1, 2.0)
    assert info.value.hint == "pip install 'dari[postgres]'"


def test_the_candidate_list_grows_with_the_collection(
    store: Store, pool: Any, tmp_path: Path
) -> None:
    """ef_search: max(200, 2k), doubled beyond 250,000 rows (bench/vectors.py: at 1M rows 200
    found 86 % of the exact top 40, 400 found 94.5 %); the row count is the planner's estimate,
    read once with the table."""
    from dari.index.pgvector import ef_search

    assert (ef_search(40), ef_search(40, 100_000), ef_search(40, 1_000_000)) == (200, 200, 400)
    assert (ef_search(300, 1_000_000), ef_search(600)) == (1000, 1000)
    rng = np.random.default_rng(3)
    add(store, "docs", "a.md", unit(rng, 30))
    index = open_index(pool, store, tmp_path / "stamp.json")
    assert index.search(unit(rng, 1)[0], 5)
    assert index._rows == 30  # analysed after the build

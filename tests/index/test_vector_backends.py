"""The same dense-search behaviour from every vector backend: exact numpy, Qdrant (tested in
qdrant-client's local mode, which speaks the server's API) and pgvector (a real PostgreSQL 18).
Ranking, ACL and metadata filters inside the search, and staying in step with the store as
documents come, go and change tags."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.index.test_pgvector import tables
from tests.index.test_vectors import (
    ACL_CASES,
    DIM,
    add_acl_groups,
    add_file,
    brute_force,
    unit,
)

from dari.errors import BackendError
from dari.index.store import Store
from dari.index.vectors import NumpyVectorIndex
from dari.protocols import VectorIndex

Opener = Callable[[], VectorIndex]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "dari.db")
    s.ensure_collection("docs", "fake", DIM)
    yield s
    s.close()


@pytest.fixture(params=["numpy", "qdrant", "pgvector"])
def opener(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Opener]:
    """Opens the collection's index as the app does: synced with the store's generation."""
    folder = tmp_path / "collection"
    if request.param == "numpy":
        yield lambda: NumpyVectorIndex.open(store, "docs", folder, store.generation("docs"))
        return
    if request.param == "pgvector":
        from dari.index.pgvector import PgVectorIndex
        from dari.index.pgvector import connect as connect_pg

        pool = connect_pg(request.getfixturevalue("postgres_url"), 4, 5.0)
        stamp, gen = folder / "pgvector.json", store.generation
        yield lambda: PgVectorIndex.open(pool, store, "docs", "t_", stamp, gen("docs"))
        pool.close()
        return
    pytest.importorskip("qdrant_client", reason="the qdrant extra is not installed")
    from dari.index.qdrant import QdrantVectorIndex, connect

    client = connect("", "", tmp_path / "qdrant")

    def open_qdrant() -> VectorIndex:
        stamp = folder / "qdrant.json"
        gen = store.generation("docs")
        return QdrantVectorIndex.open(client, store, "docs", "t_", stamp, gen, "local")

    yield open_qdrant
    client.close()


def test_top_k_matches_brute_force(store: Store, opener: Opener) -> None:
    rng = np.random.default_rng(1)
    add_file(store, "a.md", unit(rng, 30))
    add_file(store, "b.md", unit(rng, 20))
    index = opener()
    assert len(index) == 50
    for query in unit(rng, 5):
        results = index.search(query, 7)
        assert [cid for cid, _ in results] == brute_force(store, query)[:7]
        scores = [s for _, s in results]
        assert scores == sorted(scores, reverse=True)
        best = float(np.max(store.ready_vectors("docs")[2] @ query))
        assert scores[0] == pytest.approx(best, abs=1e-3)  # cosine similarity


@pytest.mark.parametrize(("acl", "visible"), ACL_CASES)
def test_acl_filters_inside_the_search(
    store: Store, opener: Opener, acl: list[str] | None, visible: set[str]
) -> None:
    groups = add_acl_groups(store)
    index = opener()
    allowed = {cid for g in visible for cid in groups[g]}
    query = unit(np.random.default_rng(5), 1)[0]
    results = index.search(query, 100, acl)
    assert [cid for cid, _ in results] == brute_force(store, query, allowed)
    assert len(index.search(query, 3, [])) == 3  # three public rows, however others score


def test_metadata_filter(store: Store, opener: Opener) -> None:
    en = add_file(store, "a.md", unit(np.random.default_rng(3), 3))
    index = opener()
    q = unit(np.random.default_rng(4), 1)[0]
    assert {c for c, _ in index.search(q, 10, where=["lang=en"])} == set(en)
    assert index.search(q, 10, where=["lang=ko"]) == []
    assert len(index.search(q, 10, where=["format=md", "lang=en"])) == 3


def test_empty_collection(opener: Opener) -> None:
    index = opener()
    assert len(index) == 0
    assert index.search(np.ones(DIM, dtype=np.float32), 5) == []
    assert index.search(np.ones(DIM, dtype=np.float32), 5, ["hr"]) == []


def test_stays_in_step_with_the_store(store: Store, opener: Opener) -> None:
    rng = np.random.default_rng(9)
    first = add_file(store, "a.md", unit(rng, 3))
    second = add_file(store, "b.md", unit(rng, 2))
    assert len(opener()) == 5
    store.remove_files("docs", ["a.md"])
    index = opener()
    q = unit(rng, 1)[0]
    assert {c for c, _ in index.search(q, 10)} == set(second)
    assert len(index) == 2
    vecs = index.vectors_of([second[0], first[0]])
    assert vecs.shape == (2, DIM)
    assert np.allclose(vecs[0], store.ready_vectors("docs")[2][0], atol=1e-3)
    assert not vecs[1].any()  # a removed chunk: zeros


def test_a_new_acl_on_the_same_chunks_is_applied(store: Store, opener: Opener) -> None:
    vectors = unit(np.random.default_rng(2), 3)
    ids = add_file(store, "a.md", vectors)
    q = vectors[0]
    assert len(opener().search(q, 10, ["hr"])) == 3
    store.remove_files("docs", ["a.md"])
    assert add_file(store, "a.md", vectors, acl=["finance"]) == ids  # same chunk ids
    index = opener()
    assert index.search(q, 10, ["hr"]) == []
    assert len(index.search(q, 10, ["finance"])) == 3


def test_a_server_that_is_down_is_a_clear_backend_error(store: Store, tmp_path: Path) -> None:
    pytest.importorskip("qdrant_client", reason="the qdrant extra is not installed")
    from dari.index.qdrant import QdrantVectorIndex, connect

    add_file(store, "a.md", unit(np.random.default_rng(1), 2))
    client = connect("http://127.0.0.1:9", "", tmp_path, timeout_s=2)
    with pytest.raises(BackendError, match=r"Qdrant at http://127.0.0.1:9 failed") as info:
        QdrantVectorIndex.open(
            client, store, "docs", "t_", tmp_path / "s.json", 1, "http://127.0.0.1:9"
        )
    assert "vectors.url" in info.value.hint
    assert not (tmp_path / "s.json").exists()  # nothing stamped: the next open syncs again


@pytest.mark.parametrize("backend", ["qdrant", "pgvector"])
def test_dari_answers_from_a_vector_server_with_acl(
    backend: str,
    tmp_path: Path,
    corpus: Path,
    analyzer: Any,
    fake_generator: Any,
    request: pytest.FixtureRequest,
) -> None:
    """The whole flow on each server backend: ingest, answer with citations, ACL, and deleting
    the collection drops its Qdrant collection or pgvector table."""
    from dari.app import Dari
    from dari.config import Settings
    from dari.testing import FakeEmbedder

    store: dict[str, str] = {}
    if backend == "qdrant":
        pytest.importorskip("qdrant_client", reason="the qdrant extra is not installed")
    else:  # vectors.url is "": the store's database
        store = {"postgres_url": request.getfixturevalue("postgres_url")}
    settings = Settings(
        home=tmp_path / "home",
        cache={"enabled": False},  # type: ignore[arg-type]
        vectors={"backend": backend},  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        retrieval={"bm25_weight": 0.0},  # type: ignore[arg-type]  # dense only: the server answers
    )
    dari = Dari(settings)
    dari.analyzer = analyzer
    dari.__dict__["embedder"] = FakeEmbedder(analyzer)
    dari.__dict__["generator"] = fake_generator

    def held() -> bool:
        if backend == "qdrant":
            return bool(dari.qdrant.collection_exists("dari_hr"))
        return "dari_hr" in tables(dari.pgvector_pool)

    try:
        dari.ingest([corpus], "hr", acl=("staff",))
        fake_generator.enqueue("Refunds can be requested within 30 days [1].")
        answer = dari.ask("How long do I have to request a refund?", "hr", acl=["staff"])
        assert answer.citations and answer.citations[0].source.endswith("refunds.md")
        if backend == "qdrant":
            assert (tmp_path / "home" / "qdrant").is_dir()
        assert len(dari.vectors("hr")) > 0
        denied = dari.ask("How long do I have to request a refund?", "hr", acl=["sales"])
        assert not denied.citations
        assert held()
        dari.delete_collection("hr")
        assert not held()
        if backend == "pgvector":
            assert tables(dari.pgvector_pool) == {}
    finally:
        dari.close()

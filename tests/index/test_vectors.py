"""Exact dense search over a real store: ranking, ACL masking, rebuild and reuse of the file."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from dari.index.store import Store
from dari.index.vectors import NumpyVectorIndex
from dari.types import Chunk, Document, Section

DIM = 8


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "dari.db")
    s.ensure_collection("docs", "fake", DIM)
    yield s
    s.close()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_file(store: Store, path: str, vectors: np.ndarray, acl: Sequence[str] = ()) -> list[str]:
    """Ingest one ready document whose chunks have the given vectors; returns the chunk ids."""
    doc_id = path.replace(".", "-")
    doc = Document(path, path, (), "md", "h", acl=tuple(acl))
    section = Section(f"{doc_id}:s0", doc_id, 0, "text")
    chunks = [Chunk(f"{doc_id}:c{i}", doc_id, section.id, i, f"t{i}") for i in range(len(vectors))]
    keys = [f"{doc_id}-{i}" for i in range(len(vectors))]
    store.put_embeddings(zip(keys, vectors, strict=True))
    store.stage_file("docs", path, "sha", 1, [(doc_id, doc, [section], chunks, keys)])
    store.finish_files("docs", [path])
    return [c.id for c in chunks]


def open_index(store: Store, folder: Path) -> NumpyVectorIndex:
    return NumpyVectorIndex.open(store, "docs", folder, store.collection("docs").generation)


def brute_force(store: Store, query: np.ndarray, allowed: set[str] | None = None) -> list[str]:
    ids, _, matrix = store.ready_vectors("docs")
    scores = matrix @ query
    order = np.argsort(-scores, kind="stable")
    return [ids[i] for i in order if allowed is None or ids[i] in allowed]


# --- ranking --------------------------------------------------------------------------------


def test_exact_top_k_order(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    add_file(store, "a.md", unit(rng, 30))
    add_file(store, "b.md", unit(rng, 20))
    index = open_index(store, tmp_path / "vec")
    assert len(index) == 50
    for query in unit(rng, 5):
        results = index.search(query, 7)
        assert [cid for cid, _ in results] == brute_force(store, query)[:7]
        scores = [s for _, s in results]
        assert scores == sorted(scores, reverse=True)


def test_scores_are_cosine_similarities(store: Store, tmp_path: Path) -> None:
    vectors = np.eye(DIM, dtype=np.float32)[:3]
    ids = add_file(store, "a.md", vectors)
    index = open_index(store, tmp_path / "vec")
    query = np.zeros(DIM, dtype=np.float32)
    query[1] = 1.0
    results = index.search(query, 3)
    assert results[0] == (ids[1], pytest.approx(1.0))
    assert [s for _, s in results[1:]] == [pytest.approx(0.0)] * 2


def test_k_larger_than_the_collection(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ids = add_file(store, "a.md", unit(rng, 4))
    results = open_index(store, tmp_path / "vec").search(unit(rng, 1)[0], 100)
    assert sorted(cid for cid, _ in results) == sorted(ids)


def test_query_as_row_vector_and_float64(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    add_file(store, "a.md", unit(rng, 10))
    index = open_index(store, tmp_path / "vec")
    query = unit(rng, 1)
    flat = index.search(query[0], 3)
    assert index.search(query, 3) == flat  # shape (1, dim)
    assert [c for c, _ in index.search(query[0].astype(np.float64), 3)] == [c for c, _ in flat]


# --- ACL ------------------------------------------------------------------------------------


ACL_CASES = [  # a reader's ACL tags, and the documents of `add_acl_groups` they may read
    (None, {"public", "hr", "fin", "both"}),
    ([], {"public"}),
    (["hr"], {"public", "hr", "both"}),
    (["finance"], {"public", "fin", "both"}),
    (["other"], {"public"}),
]


def add_acl_groups(store: Store) -> dict[str, list[str]]:
    """Four documents of six chunks: public, HR, finance, and HR + finance."""
    rng = np.random.default_rng(4)
    return {
        "public": add_file(store, "pub.md", unit(rng, 6)),
        "hr": add_file(store, "hr.md", unit(rng, 6), acl=["hr"]),
        "fin": add_file(store, "fin.md", unit(rng, 6), acl=["finance"]),
        "both": add_file(store, "both.md", unit(rng, 6), acl=["finance", "hr"]),
    }


@pytest.fixture
def acl_index(store: Store, tmp_path: Path) -> tuple[NumpyVectorIndex, dict[str, list[str]]]:
    groups = add_acl_groups(store)
    return open_index(store, tmp_path / "vec"), groups


@pytest.mark.parametrize(("acl", "visible"), ACL_CASES)
def test_acl_mask(
    store: Store,
    acl_index: tuple[NumpyVectorIndex, dict[str, list[str]]],
    acl: list[str] | None,
    visible: set[str],
) -> None:
    index, groups = acl_index
    allowed = {cid for g in visible for cid in groups[g]}
    query = unit(np.random.default_rng(5), 1)[0]
    results = index.search(query, 100, acl)
    assert {cid for cid, _ in results} == allowed
    # masking removes rows, it does not reorder or rescore the rest
    assert [cid for cid, _ in results] == brute_force(store, query, allowed)
    unmasked = dict(index.search(query, 100))
    for cid, score in results:
        assert score == unmasked[cid]


def test_acl_mask_applies_before_top_k(
    acl_index: tuple[NumpyVectorIndex, dict[str, list[str]]],
) -> None:
    index, groups = acl_index
    query = unit(np.random.default_rng(6), 1)[0]
    results = index.search(query, 3, [])
    assert len(results) == 3  # three public rows, even if others scored higher
    assert {cid for cid, _ in results} <= set(groups["public"])


def test_acl_mask_hiding_everything(store: Store, tmp_path: Path) -> None:
    add_file(store, "hr.md", unit(np.random.default_rng(7), 3), acl=["hr"])
    index = open_index(store, tmp_path / "vec")
    assert index.search(np.ones(DIM, dtype=np.float32), 5, []) == []


# --- the file on disk -----------------------------------------------------------------------


def test_build_writes_the_stamped_file(store: Store, tmp_path: Path) -> None:
    ids = add_file(store, "a.md", unit(np.random.default_rng(8), 3), acl=["hr"])
    folder = tmp_path / "vec"
    open_index(store, folder)
    meta = json.loads((folder / "vectors.json").read_text())
    assert meta["generation"] == store.collection("docs").generation
    assert meta["ids"] == ids
    assert [acl for acl, _ in meta["groups"]] == [["hr"]]
    assert np.load(folder / meta["matrix"]).shape == (3, DIM)
    assert not list(folder.glob("*.tmp"))


def test_rebuild_when_generation_changes(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    first = add_file(store, "a.md", unit(rng, 3))
    folder = tmp_path / "vec"
    assert open_index(store, folder).ids == first

    second = add_file(store, "b.md", unit(rng, 2))  # bumps the generation
    index = open_index(store, folder)
    assert index.ids == first + second
    assert json.loads((folder / "vectors.json").read_text())["generation"] == (
        store.collection("docs").generation
    )

    store.remove_files("docs", ["a.md"])
    assert open_index(store, folder).ids == second


def test_reuse_of_the_on_disk_file_when_it_matches(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_file(store, "a.md", unit(np.random.default_rng(10), 4), acl=["hr"])
    folder = tmp_path / "vec"
    built = open_index(store, folder)

    def no_rebuild(*args: object) -> object:
        raise AssertionError("the index was rebuilt although its stamp matched")

    monkeypatch.setattr(store, "ready_vectors", no_rebuild)
    reused = open_index(store, folder)
    assert reused.ids == ids
    assert isinstance(reused._matrix, np.memmap)  # memory-mapped, not read into memory
    query = np.ones(DIM, dtype=np.float32)
    assert reused.search(query, 4) == built.search(query, 4)
    assert reused.search(query, 4, []) == []
    assert reused.search(query, 4, ["hr"]) == built.search(query, 4, ["hr"])


def test_stale_file_is_not_trusted(store: Store, tmp_path: Path) -> None:
    ids = add_file(store, "a.md", unit(np.random.default_rng(11), 2))
    folder = tmp_path / "vec"
    folder.mkdir()
    np.save(folder / "vectors-old.npy", np.zeros((1, DIM), dtype=np.float32))
    (folder / "vectors.json").write_text(
        json.dumps(
            {"generation": -1, "matrix": "vectors-old.npy", "ids": ["ghost"], "groups": [[]]}
        )
    )
    assert open_index(store, folder).ids == ids


def test_missing_npy_is_rebuilt(store: Store, tmp_path: Path) -> None:
    ids = add_file(store, "a.md", unit(np.random.default_rng(12), 2))
    folder = tmp_path / "vec"
    open_index(store, folder)
    for matrix in folder.glob("vectors*.npy"):
        matrix.unlink()
    assert open_index(store, folder).ids == ids
    assert (folder / json.loads((folder / "vectors.json").read_text())["matrix"]).exists()


def test_processes_building_at_once_never_mix_their_files(store: Store, tmp_path: Path) -> None:
    """Replicas sharing a home rebuild the same collection's matrix at the same time: each build
    writes files of its own, and the stamp always names a matrix of its own rows."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(13)
    add_file(store, "a.md", unit(rng, 3))
    folder = tmp_path / "vec"
    generation = store.collection("docs").generation

    def build(_: int) -> list[str]:
        return NumpyVectorIndex.build(store, "docs", folder, generation).ids

    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(build, range(8)))
    assert all(ids == built[0] for ids in built)
    meta = json.loads((folder / "vectors.json").read_text())
    assert np.load(folder / meta["matrix"]).shape == (len(meta["ids"]), DIM)
    reopened = open_index(store, folder)
    assert reopened.ids == built[0] and isinstance(reopened._matrix, np.memmap)


# --- empty ----------------------------------------------------------------------------------


def test_empty_collection(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "vec"
    index = open_index(store, folder)
    assert len(index) == 0
    assert index.search(np.ones(DIM, dtype=np.float32), 5) == []
    assert index.search(np.ones(DIM, dtype=np.float32), 5, []) == []
    again = open_index(store, folder)  # reused from disk
    assert len(again) == 0
    assert again.search(np.ones(DIM, dtype=np.float32), 5) == []


def test_pending_documents_are_not_indexed(store: Store, tmp_path: Path) -> None:
    ready = add_file(store, "a.md", unit(np.random.default_rng(13), 2))
    doc = Document("b.md", "b", (), "md", "h")
    store.put_embeddings([("pending-key", np.ones(DIM, dtype=np.float32))])
    store.stage_file(
        "docs",
        "b.md",
        "sha",
        1,
        [
            (
                "b",
                doc,
                [Section("b:s0", "b", 0, "t")],
                [Chunk("b:c0", "b", "b:s0", 0, "t")],
                ["pending-key"],
            )
        ],
    )
    assert open_index(store, tmp_path / "vec").ids == ready


def test_metadata_filter_masks_rows_inside_the_search(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    en = add_file(store, "a.md", unit(rng, 3))
    index = open_index(store, tmp_path / "vec")
    q = np.asarray(index._matrix[0])
    assert {c for c, _ in index.search(q, 10, where=["lang=en"])} == set(en)
    assert index.search(q, 10, where=["lang=ko"]) == []
    assert index.search(q, 10, where=["format=md", "lang=en"])[0][0] == en[0]

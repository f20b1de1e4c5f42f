"""BM25 over analyzer terms: matching, ACL filtering, deletes, commits, on both lexical indexes
(tantivy per process, and the one in PostgreSQL, `store.fulltext = "postgres"`); reopening and
writer locks of tantivy; the two giving the same BM25 scores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dari.db.local_postgres import LocalPostgres
from dari.db.postgres import PostgresDatabase
from dari.errors import StoreError
from dari.index.analyzer import Analyzer
from dari.index.bm25 import TantivyIndex
from dari.index.pg_fulltext import PostgresTextIndex
from dari.index.store import IndexRow, Store
from dari.protocols import TextIndex


def r(cid: str, doc: str, text: str, acl: tuple[str, ...] = (), meta=("lang=en",)) -> IndexRow:
    return IndexRow(cid, doc, text, acl, tuple(meta))


ROWS = [
    r("ko1", "d-ko", "정규직 직원의 연차 휴가는 1년에 15일입니다.", meta=("lang=ko",)),
    r("ko2", "d-ko", "병가는 연간 최대 10일까지 유급으로 쓸 수 있습니다.", meta=("lang=ko",)),
    r("en1", "d-en", "Customers can request a refund within 30 days of purchase."),
    r("en2", "d-office", "The office opens at 8 am and closes at 6 pm."),
    r("hr1", "d-hr", "Salary advance refund rules for staff.", ("hr",)),
    r("fin1", "d-fin", "Refund approvals above the limit need the CFO.", ("finance",)),
]


KINDS = ["tantivy", "postgres"]


@contextmanager
def opened(kind: str, path: Path, analyzer: Analyzer, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """An empty index of `kind` for the collection `docs` (PostgreSQL: a fresh database)."""
    if kind == "tantivy":
        ix = TantivyIndex(path, analyzer)
        yield ix
        ix.close()
        return
    server: LocalPostgres = request.getfixturevalue("postgres_server")
    with server.fresh_database() as url:
        store = Store(PostgresDatabase(url, pool_size=2))
        store.ensure_collection("docs", "fake-hash", 4)
        yield PostgresTextIndex(store.db, "docs", analyzer)
        store.close()


@pytest.fixture(scope="module", params=KINDS)
def shared(
    tmp_path_factory: pytest.TempPathFactory, analyzer: Analyzer, request: pytest.FixtureRequest
) -> Iterator[TextIndex]:
    """One read-only index for the tests that only search (commits take ~0.2 s each)."""
    with opened(request.param, tmp_path_factory.mktemp("bm25") / "bm25", analyzer, request) as ix:
        ix.add(ROWS)
        ix.commit()
        yield ix


@pytest.fixture(params=KINDS)
def index(
    tmp_path: Path, analyzer: Analyzer, request: pytest.FixtureRequest
) -> Iterator[TextIndex]:
    """A fresh index for tests that write."""
    with opened(request.param, tmp_path / "bm25", analyzer, request) as ix:
        ix.add(ROWS)
        ix.commit()
        yield ix


def ids(results: list[tuple[str, float]]) -> list[str]:
    return [cid for cid, _ in results]


# --- matching -------------------------------------------------------------------------------


def test_korean_query_finds_korean_chunk_by_morphemes(shared: TextIndex) -> None:
    # "휴가는" in the text and "휴가를" in the question share only the morpheme 휴가
    assert ids(shared.search("연차 휴가를 며칠 쓸 수 있나요?", 10))[0] == "ko1"
    assert ids(shared.search("병가", 10)) == ["ko2"]


def test_english_stemming_matches(shared: TextIndex) -> None:
    found = ids(shared.search("refunds", 10))
    assert "en1" in found  # the text says "refund"
    assert ids(shared.search("opening", 10)) == ["en2"]  # the text says "opens"


def test_query_of_stopwords_or_particles_finds_nothing(shared: TextIndex) -> None:
    assert shared.search("what is the", 10) == []
    assert shared.search("", 10) == []
    assert shared.search_terms([], 10) == []


def test_unrelated_query_finds_nothing(shared: TextIndex) -> None:
    assert shared.search("quantum chromodynamics", 10) == []


def test_k_limits_results_and_scores_descend(shared: TextIndex) -> None:
    results = shared.search("refund", 2)
    assert len(results) == 2
    everything = shared.search("refund", 10)
    assert [s for _, s in everything] == sorted((s for _, s in everything), reverse=True)
    assert results == everything[:2]


def test_search_terms_takes_analyzed_terms(shared: TextIndex) -> None:
    assert ids(shared.search_terms(["연차"], 10)) == ["ko1"]
    assert shared.search_terms(["refunds"], 10) == []  # not analyzed: no stem matches


# --- ACL ------------------------------------------------------------------------------------


def test_acl_none_sees_everything(shared: TextIndex) -> None:
    assert set(ids(shared.search("refund", 10))) == {"en1", "hr1", "fin1"}


def test_acl_empty_sees_public_only(shared: TextIndex) -> None:
    assert ids(shared.search("refund", 10, [])) == ["en1"]


def test_acl_tag_sees_public_and_tagged(shared: TextIndex) -> None:
    assert set(ids(shared.search("refund", 10, ["hr"]))) == {"en1", "hr1"}
    assert set(ids(shared.search("refund", 10, ["hr", "finance"]))) == {"en1", "hr1", "fin1"}
    assert ids(shared.search("refund", 10, ["unknown-tag"])) == ["en1"]


def test_acl_filter_does_not_change_scores(shared: TextIndex) -> None:
    unfiltered = dict(shared.search("refund rules", 10))
    for acl in ([], ["hr"], ["finance"], ["hr", "finance"]):
        for cid, score in shared.search("refund rules", 10, acl):
            assert score == pytest.approx(unfiltered[cid])


def test_document_with_several_acl_tags(index: TextIndex) -> None:
    index.add([r("c", "d", "budget review", ("hr", "finance"))])
    index.commit()
    assert ids(index.search("budget", 10, ["finance"])) == ["c"]
    assert ids(index.search("budget", 10, ["hr"])) == ["c"]
    assert index.search("budget", 10, []) == []


# --- writes ---------------------------------------------------------------------------------


def test_uncommitted_adds_are_invisible(index: TextIndex) -> None:
    index.add([r("new1", "d-new", "Parking permits are issued by facilities.", ())])
    assert index.search("parking", 10) == []
    assert index.num_docs() == len(ROWS)
    index.commit()
    assert ids(index.search("parking", 10)) == ["new1"]
    assert index.num_docs() == len(ROWS) + 1


def test_delete_documents_then_commit_removes(index: TextIndex) -> None:
    index.delete_documents(["d-ko"])
    assert "ko1" in ids(index.search("연차", 10))  # not yet committed
    index.commit()
    assert index.search("연차", 10) == []
    assert index.search("병가", 10) == []  # every chunk of the document goes
    assert ids(index.search("refund", 10, [])) == ["en1"]
    assert index.num_docs() == len(ROWS) - 2


def test_delete_unknown_document_is_harmless(index: TextIndex) -> None:
    index.delete_documents(["nope"])
    index.commit()
    assert index.num_docs() == len(ROWS)


def test_reopening_from_disk_keeps_data(tmp_path: Path, analyzer: Analyzer) -> None:
    index = TantivyIndex(tmp_path / "bm25", analyzer)
    index.add(ROWS)
    index.commit()
    index.close()
    again = TantivyIndex(tmp_path / "bm25", analyzer)
    assert again.num_docs() == len(ROWS)
    assert ids(again.search("연차", 10)) == ["ko1"]
    assert set(ids(again.search("refund", 10, ["hr"]))) == {"en1", "hr1"}
    again.close()


def test_uncommitted_adds_are_lost_on_reopen(tmp_path: Path, analyzer: Analyzer) -> None:
    ix = TantivyIndex(tmp_path / "bm25", analyzer)
    ix.add([r("c", "d", "committed text", ())])
    ix.commit()
    ix.add([r("c2", "d2", "uncommitted text", ())])
    ix.close()
    again = TantivyIndex(tmp_path / "bm25", analyzer)
    assert ids(again.search("text", 10)) == ["c"]
    again.close()


def test_commit_without_writes_is_a_no_op(tmp_path: Path, analyzer: Analyzer) -> None:
    ix = TantivyIndex(tmp_path / "bm25", analyzer)
    ix.commit()
    assert ix.num_docs() == 0
    ix.close()


# --- errors ---------------------------------------------------------------------------------


def test_second_writer_is_store_error(tmp_path: Path, analyzer: Analyzer) -> None:
    index = TantivyIndex(tmp_path / "bm25", analyzer)
    index.add([r("x", "dx", "holding the writer", ())])
    other = TantivyIndex(tmp_path / "bm25", analyzer)
    with pytest.raises(StoreError) as info:
        other.add([r("y", "dy", "second writer", ())])
    assert "locked" in info.value.message
    assert "dari ingest" in info.value.hint


def test_unopenable_index_is_store_error(tmp_path: Path, analyzer: Analyzer) -> None:
    (tmp_path / "bm25").write_text("not a folder")
    with pytest.raises(StoreError) as info:
        TantivyIndex(tmp_path / "bm25", analyzer)
    assert "re-ingest" in info.value.hint


def test_metadata_filter_inside_the_search(shared: TextIndex) -> None:
    assert {c for c, _ in shared.search("휴가 병가", 10, where=["lang=ko"])} == {"ko1", "ko2"}
    assert shared.search("휴가 병가", 10, where=["lang=en"]) == []
    both = shared.search("refund", 10, acl=["hr"], where=["lang=en"])
    assert {c for c, _ in both} == {"en1", "hr1"}


# --- the two indexes agree -------------------------------------------------------------------


def test_postgres_gives_tantivys_bm25_scores(
    tmp_path: Path, analyzer: Analyzer, request: pytest.FixtureRequest
) -> None:
    """Same rows, same terms: the same chunks with the same scores (tantivy stores document
    lengths rounded beyond 40 terms, so long ones may differ slightly; ties may come in
    another order)."""
    rows = [*ROWS, r("long", "d-long", "refund " + "policy details and more words " * 12)]
    queries = ["refund rules", "연차 휴가를 며칠 쓸 수 있나요?", "office opens", "refund policy"]
    with (
        opened("tantivy", tmp_path / "t", analyzer, request) as tantivy,
        opened("postgres", tmp_path / "p", analyzer, request) as pg,
    ):
        for ix in (tantivy, pg):
            ix.add(rows)
            ix.commit()
        for q in queries:
            want, got = dict(tantivy.search(q, 10)), pg.search(q, 10)
            assert set(ids(got)) == set(want), q
            assert dict(got) == pytest.approx(want, rel=0.01), q
            assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_postgres_counts_stay_exact_through_repeats_deletes_and_clear(
    tmp_path: Path, analyzer: Analyzer, request: pytest.FixtureRequest
) -> None:
    """A chunk added twice (a recovery run again) counts once; deleting a document takes its
    terms out of the document frequencies, so scores match an index built without it."""
    with (
        opened("postgres", tmp_path / "a", analyzer, request) as a,
        opened("postgres", tmp_path / "b", analyzer, request) as b,
    ):
        a.add(ROWS)
        a.commit()
        a.add(ROWS[:3])  # again
        a.commit()
        assert a.num_docs() == len(ROWS)
        a.delete_documents(["d-ko", "nope"])
        a.commit()
        b.add([row for row in ROWS if row.doc_id != "d-ko"])
        b.commit()
        assert a.num_docs() == b.num_docs() == len(ROWS) - 2
        assert a.search("refund rules", 10) == b.search("refund rules", 10)
        a.clear()
        a.commit()
        assert a.num_docs() == 0 and a.search("refund", 10) == []


def test_postgres_maxscore_passes_give_the_one_pass_results(
    tmp_path: Path, analyzer: Analyzer, request: pytest.FixtureRequest, monkeypatch
) -> None:
    """Scoring the chunks with a rare term first (and widening only when the common terms could
    still reach the top k) returns exactly what scoring every matching chunk returns."""
    import dari.index.pg_fulltext as module

    words = ["policy", "refund", "office", "leave", "parking", "salary", "budget", "review"]
    rows = [
        r(f"c{i}", f"d{i}", " ".join(words[j % 8] for j in range(i % 5, i % 5 + 2 + i % 7)))
        for i in range(300)
    ]
    rows.append(r("rare", "d-rare", "policy on aardvark handling"))
    queries = ["policy aardvark", "policy refund", "office leave parking", "aardvark", "budget"]
    with opened("postgres", tmp_path, analyzer, request) as ix:
        ix.add(rows)
        ix.commit()
        for k in (1, 5, 40):
            for acl in (None, []):
                pruned = [ix.search(q, k, acl) for q in queries]
                monkeypatch.setattr(module, "_RARE", (1.0,))
                assert [ix.search(q, k, acl) for q in queries] == pruned
                monkeypatch.undo()

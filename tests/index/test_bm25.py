"""BM25 with tantivy over analyzer terms: matching, ACL filtering, deletes, commits, reopening."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dari.errors import StoreError
from dari.index.analyzer import Analyzer
from dari.index.bm25 import TantivyIndex
from dari.index.store import IndexRow


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


def build(path: Path, analyzer: Analyzer) -> TantivyIndex:
    ix = TantivyIndex(path, analyzer)
    ix.add(ROWS)
    ix.commit()
    return ix


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, analyzer: Analyzer) -> Iterator[TantivyIndex]:
    """One read-only index for the tests that only search (commits take ~0.2 s each)."""
    ix = build(tmp_path_factory.mktemp("bm25") / "bm25", analyzer)
    yield ix
    ix.close()


@pytest.fixture
def index(tmp_path: Path, analyzer: Analyzer) -> Iterator[TantivyIndex]:
    """A fresh index for tests that write."""
    ix = build(tmp_path / "bm25", analyzer)
    yield ix
    ix.close()


def ids(results: list[tuple[str, float]]) -> list[str]:
    return [cid for cid, _ in results]


# --- matching -------------------------------------------------------------------------------


def test_korean_query_finds_korean_chunk_by_morphemes(shared: TantivyIndex) -> None:
    # "휴가는" in the text and "휴가를" in the question share only the morpheme 휴가
    assert ids(shared.search("연차 휴가를 며칠 쓸 수 있나요?", 10))[0] == "ko1"
    assert ids(shared.search("병가", 10)) == ["ko2"]


def test_english_stemming_matches(shared: TantivyIndex) -> None:
    found = ids(shared.search("refunds", 10))
    assert "en1" in found  # the text says "refund"
    assert ids(shared.search("opening", 10)) == ["en2"]  # the text says "opens"


def test_query_of_stopwords_or_particles_finds_nothing(shared: TantivyIndex) -> None:
    assert shared.search("what is the", 10) == []
    assert shared.search("", 10) == []
    assert shared.search_terms([], 10) == []


def test_unrelated_query_finds_nothing(shared: TantivyIndex) -> None:
    assert shared.search("quantum chromodynamics", 10) == []


def test_k_limits_results_and_scores_descend(shared: TantivyIndex) -> None:
    results = shared.search("refund", 2)
    assert len(results) == 2
    everything = shared.search("refund", 10)
    assert [s for _, s in everything] == sorted((s for _, s in everything), reverse=True)
    assert results == everything[:2]


def test_search_terms_takes_analyzed_terms(shared: TantivyIndex) -> None:
    assert ids(shared.search_terms(["연차"], 10)) == ["ko1"]
    assert shared.search_terms(["refunds"], 10) == []  # not analyzed: no stem matches


# --- ACL ------------------------------------------------------------------------------------


def test_acl_none_sees_everything(shared: TantivyIndex) -> None:
    assert set(ids(shared.search("refund", 10))) == {"en1", "hr1", "fin1"}


def test_acl_empty_sees_public_only(shared: TantivyIndex) -> None:
    assert ids(shared.search("refund", 10, [])) == ["en1"]


def test_acl_tag_sees_public_and_tagged(shared: TantivyIndex) -> None:
    assert set(ids(shared.search("refund", 10, ["hr"]))) == {"en1", "hr1"}
    assert set(ids(shared.search("refund", 10, ["hr", "finance"]))) == {"en1", "hr1", "fin1"}
    assert ids(shared.search("refund", 10, ["unknown-tag"])) == ["en1"]


def test_acl_filter_does_not_change_scores(shared: TantivyIndex) -> None:
    unfiltered = dict(shared.search("refund rules", 10))
    for acl in ([], ["hr"], ["finance"], ["hr", "finance"]):
        for cid, score in shared.search("refund rules", 10, acl):
            assert score == pytest.approx(unfiltered[cid])


def test_document_with_several_acl_tags(tmp_path: Path, analyzer: Analyzer) -> None:
    ix = TantivyIndex(tmp_path / "bm25", analyzer)
    ix.add([r("c", "d", "budget review", ("hr", "finance"))])
    ix.commit()
    assert ids(ix.search("budget", 10, ["finance"])) == ["c"]
    assert ids(ix.search("budget", 10, ["hr"])) == ["c"]
    assert ix.search("budget", 10, []) == []
    ix.close()


# --- writes ---------------------------------------------------------------------------------


def test_uncommitted_adds_are_invisible(index: TantivyIndex) -> None:
    index.add([r("new1", "d-new", "Parking permits are issued by facilities.", ())])
    assert index.search("parking", 10) == []
    assert index.num_docs() == len(ROWS)
    index.commit()
    assert ids(index.search("parking", 10)) == ["new1"]
    assert index.num_docs() == len(ROWS) + 1


def test_delete_documents_then_commit_removes(index: TantivyIndex) -> None:
    index.delete_documents(["d-ko"])
    assert "ko1" in ids(index.search("연차", 10))  # not yet committed
    index.commit()
    assert index.search("연차", 10) == []
    assert index.search("병가", 10) == []  # every chunk of the document goes
    assert ids(index.search("refund", 10, [])) == ["en1"]
    assert index.num_docs() == len(ROWS) - 2


def test_delete_unknown_document_is_harmless(index: TantivyIndex) -> None:
    index.delete_documents(["nope"])
    index.commit()
    assert index.num_docs() == len(ROWS)


def test_reopening_from_disk_keeps_data(
    index: TantivyIndex, tmp_path: Path, analyzer: Analyzer
) -> None:
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


def test_second_writer_is_store_error(
    index: TantivyIndex, tmp_path: Path, analyzer: Analyzer
) -> None:
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


def test_metadata_filter_inside_the_search(shared: TantivyIndex) -> None:
    assert {c for c, _ in shared.search("휴가 병가", 10, where=["lang=ko"])} == {"ko1", "ko2"}
    assert shared.search("휴가 병가", 10, where=["lang=en"]) == []
    both = shared.search("refund", 10, acl=["hr"], where=["lang=en"])
    assert {c for c, _ in both} == {"en1", "hr1"}

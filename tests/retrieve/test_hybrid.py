"""Hybrid retrieval: rank fusion, context ordering, and the retriever over a real store and BM25."""

from __future__ import annotations

from pathlib import Path

import pytest

from dari.app import Dari
from dari.config import ChunkingSettings, RetrievalSettings
from dari.retrieve.hybrid import (
    HybridRetriever,
    Retrieval,
    fuse,
    fuse_linear,
    order_for_context,
)
from dari.types import Hit

# --- fuse -----------------------------------------------------------------------------------


def test_fuse_is_weighted_reciprocal_rank() -> None:
    bm25 = [("a", 9.0), ("b", 5.0)]
    dense = [("b", 0.9), ("c", 0.8)]
    fused = dict(fuse([(bm25, 1.0), (dense, 0.5)], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 0.5 / 61)
    assert fused["c"] == pytest.approx(0.5 / 62)


def test_fuse_uses_ranks_not_scores() -> None:
    one = fuse([([("a", 1000.0), ("b", 0.001)], 1.0)], k=60)
    other = fuse([([("a", 0.2), ("b", 0.1)], 1.0)], k=60)
    assert one == other


def test_fuse_doc_in_both_lists_beats_doc_in_one() -> None:
    bm25 = [("only-bm25", 1.0), ("both", 0.5)]
    dense = [("only-dense", 1.0), ("both", 0.5)]
    fused = fuse([(bm25, 1.0), (dense, 1.0)], k=60)
    assert fused[0][0] == "both"
    assert {cid for cid, _ in fused} == {"both", "only-bm25", "only-dense"}


def test_fuse_weight_decides_between_first_places() -> None:
    fused = fuse([([("lex", 1.0)], 1.0), ([("sem", 1.0)], 0.5)], k=60)
    assert [cid for cid, _ in fused] == ["lex", "sem"]
    fused = fuse([([("lex", 1.0)], 0.5), ([("sem", 1.0)], 1.0)], k=60)
    assert [cid for cid, _ in fused] == ["sem", "lex"]


def test_fuse_ties_keep_first_seen_order() -> None:
    fused = fuse([([("a", 1.0)], 1.0), ([("b", 1.0)], 1.0)], k=60)
    assert [cid for cid, _ in fused] == ["a", "b"]
    assert fused[0][1] == fused[1][1]
    fused = fuse([([("b", 1.0)], 1.0), ([("a", 1.0)], 1.0)], k=60)
    assert [cid for cid, _ in fused] == ["b", "a"]


def test_fuse_smaller_k_sharpens_rank_differences() -> None:
    ranked = [("a", 1.0), ("b", 1.0)]
    (_, a1), (_, b1) = fuse([(ranked, 1.0)], k=1)
    (_, a60), (_, b60) = fuse([(ranked, 1.0)], k=60)
    assert a1 / b1 > a60 / b60


def test_fuse_empty() -> None:
    assert fuse([], k=60) == []
    assert fuse([([], 1.0), ([], 0.5)], k=60) == []


def test_fuse_scores_descend() -> None:
    bm25 = [(f"b{i}", 0.0) for i in range(10)]
    dense = [(f"b{9 - i}", 0.0) for i in range(10)] + [("x", 0.0)]
    scores = [s for _, s in fuse([(bm25, 1.0), (dense, 0.7)], k=5)]
    assert scores == sorted(scores, reverse=True)


def test_fuse_linear_normalises_each_list() -> None:
    bm25 = [("a", 30.0), ("b", 20.0), ("c", 10.0)]
    dense = [("c", 0.9), ("a", 0.8), ("d", 0.7)]
    fused = dict(fuse_linear([(bm25, 1.0), (dense, 0.5)]))
    assert fused["a"] == pytest.approx(1.0 + 0.5 * 0.5)
    assert fused["b"] == pytest.approx(0.5)
    assert fused["c"] == pytest.approx(0.0 + 0.5 * 1.0)
    assert fused["d"] == pytest.approx(0.0)


def test_fuse_linear_uses_score_gaps_unlike_rrf() -> None:
    # "a" wins BM25 by a mile; dense barely prefers "b": linear fusion keeps "a" first.
    bm25 = [("a", 50.0), ("b", 1.0), ("c", 0.0)]
    dense = [("b", 0.81), ("a", 0.80), ("c", 0.10)]
    assert fuse_linear([(bm25, 1.0), (dense, 1.0)])[0][0] == "a"
    assert fuse_linear([([("x", 3.0)], 1.0), ([], 1.0)]) == [("x", 1.0)]
    assert fuse_linear([(bm25, 0.0)]) == []


# --- order_for_context ----------------------------------------------------------------------


def hit(name: str, score: float = 0.0) -> Hit:
    return Hit(name, f"s-{name}", "d", score, f"text {name}", "src.md", "Title")


@pytest.mark.parametrize(
    ("n", "order"),
    [
        (0, []),
        (1, [0]),
        (2, [0, 1]),
        (3, [0, 2, 1]),
        (5, [0, 2, 4, 3, 1]),
        (6, [0, 2, 4, 5, 3, 1]),
    ],
)
def test_order_for_context(n: int, order: list[int]) -> None:
    hits = [hit(str(i), 1.0 - i / 10) for i in range(n)]
    assert [h.chunk_id for h in order_for_context(hits)] == [str(i) for i in order]


def test_order_for_context_best_first_second_last() -> None:
    hits = [hit(str(i)) for i in range(4)]
    ordered = order_for_context(hits)
    assert ordered[0].chunk_id == "0"
    assert ordered[-1].chunk_id == "1"
    assert sorted(h.chunk_id for h in ordered) == ["0", "1", "2", "3"]


# --- HybridRetriever ------------------------------------------------------------------------


def retriever(dari: Dari, collection: str, **settings: object) -> HybridRetriever:
    return dari.retriever(collection, RetrievalSettings(**settings))  # type: ignore[arg-type]


def by_score(r: Retrieval) -> list[Hit]:
    return sorted(r.hits, key=lambda h: -h.score)


def test_korean_question_finds_the_korean_section(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c").retrieve("연차 휴가는 며칠인가요?")
    best = r.hits[0]
    assert best == by_score(r)[0]
    assert best.source.endswith("leave.md")
    assert best.title == "휴가 규정"
    assert "연차" in best.heading
    assert "15일" in best.text  # the parent section's text
    assert best.bm25_rank == 1
    assert best.dense_rank is not None and best.dense_score is not None
    assert not r.abstain
    assert r.coverage > 0.5


def test_english_question_finds_the_english_section(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c").retrieve("How many days do I have to request refunds?")
    assert r.hits[0].source.endswith("refunds.md")
    assert "30 days" in r.hits[0].text
    assert not r.abstain


def test_hits_are_ordered_for_context(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c", top_k=3).retrieve("refund within 30 days")
    ranked = by_score(r)
    assert len(r.hits) == 3
    assert r.hits[0] == ranked[0]
    assert r.hits[-1] == ranked[1]


def test_abstains_when_the_question_is_unrelated(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c").retrieve("What is the boiling point of mercury?")
    assert r.abstain
    assert r.coverage == 0.0
    assert r.dense_top < 0.55
    assert all(h.bm25_rank is None for h in r.hits)


def test_no_abstention_with_zero_floors(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c", min_coverage=0.0, min_dense=-1.0).retrieve("boiling point of mercury")
    assert not r.abstain


def test_top_k_respected(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c", top_k=2)
    assert len(r.retrieve("refund office 휴가").hits) == 2
    assert len(r.retrieve("refund office 휴가", k=1).hits) == 1
    assert len(r.retrieve("refund office 휴가", k=4).hits) == 4
    assert len(r.retrieve("refund office 휴가", k=50).hits) == 5  # every section of the corpus


def test_timings_present(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c").retrieve("refund")
    assert set(r.timings_ms) == {"bm25", "embed_query", "dense", "fuse_expand"}
    assert all(v >= 0 for v in r.timings_ms.values())


def test_dense_off_uses_bm25_only(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c", dense_weight=0.0).retrieve("refund")
    assert "embed_query" not in r.timings_ms
    assert r.hits and all(h.dense_rank is None and h.dense_score is None for h in r.hits)
    assert r.dense_top == 0.0
    assert {h.source.rsplit("/", 1)[-1] for h in r.hits} == {"refunds.md"}


def test_dedupe_by_section(dari: Dari, tmp_path: Path) -> None:
    folder = tmp_path / "long"
    folder.mkdir()
    sentences = " ".join(f"Refund rule number {i} applies to orders." for i in range(12))
    (folder / "rules.md").write_text(f"# Rules\n\n{sentences}\n", encoding="utf-8")
    (folder / "other.md").write_text("# Other\n\nA refund note.\n", encoding="utf-8")
    dari.settings.chunking = ChunkingSettings(chunk_tokens=16, chunk_overlap=0, section_tokens=1000)
    dari.ingest([folder], "c")
    assert dari.store.collection("c").chunks > 5

    r = retriever(dari, "c", top_k=5).retrieve("refund rule orders")
    sections = [h.section_id for h in r.hits]
    assert len(sections) == len(set(sections))
    assert len(r.hits) == 2  # one per section, although many children matched
    assert {h.source.rsplit("/", 1)[-1] for h in r.hits} == {"rules.md", "other.md"}


def test_acl_filters_hits(dari: Dari, corpus: Path, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    (private / "salary.md").write_text("# Salary\n\nRefund of salary advances.\n", encoding="utf-8")
    dari.ingest([corpus], "c")
    dari.ingest([private], "c", acl=["hr"])
    r = retriever(dari, "c", top_k=10)

    def sources(acl: list[str] | None) -> set[str]:
        return {h.source.rsplit("/", 1)[-1] for h in r.retrieve("refund", acl=acl).hits}

    assert "salary.md" in sources(None)
    assert "salary.md" in sources(["hr"])
    assert "salary.md" not in sources([])
    assert "salary.md" not in sources(["finance"])


def test_deleted_chunks_are_skipped(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    stale_vectors = dari.vectors("c")
    r = HybridRetriever(
        RetrievalSettings(top_k=5),
        dari.store,
        dari.bm25("c"),
        lambda: stale_vectors,
        dari.embedder,
        dari.analyzer,
    )
    (refunds,) = [p for p in dari.store.file_paths("c") if p.endswith("refunds.md")]
    # Gone from SQLite (the source of truth) but still in BM25 and in the stale vectors.
    dari.store.remove_files("c", [refunds])
    assert any(cid for cid, _ in dari.bm25("c").search("refund", 10))
    hits = r.retrieve("refund").hits
    assert hits
    assert not any(h.source.endswith("refunds.md") for h in hits)


def test_window_keeps_short_sections_whole() -> None:
    from dari.retrieve.hybrid import window

    assert window("Short section.", "Short section.", 100) == "Short section."


def test_window_centres_long_sections_on_the_child() -> None:
    from dari.retrieve.hybrid import window
    from dari.text import estimate_tokens

    lines = [f"Line {i} talks about item number {i} in some detail." for i in range(200)]
    section = "\n".join(lines)
    child = "Title > Heading\n" + "\n".join(lines[120:124])
    text = window(section, child, 80)
    assert "Line 120 talks" in text and "Line 123 talks" in text
    assert text.startswith("… ") and text.endswith(" …")
    assert estimate_tokens(text) <= 80 + 10
    assert "Line 10 talks" not in text


class Reverse:
    """A reranker that reverses the candidates, and records what it was given."""

    name = "reverse"

    def __init__(self) -> None:
        self.seen: list[list[Hit]] = []

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        self.seen.append(list(hits))
        return hits[::-1]


def test_reranker_sees_the_deeper_pool_and_decides_the_top_k(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    plain = retriever(dari, "c", top_k=2).retrieve("refund office 휴가", k=5)
    rev = Reverse()
    r = HybridRetriever(
        RetrievalSettings(top_k=2, rerank_depth=5),
        dari.store,
        dari.bm25("c"),
        lambda: dari.vectors("c"),
        dari.embedder,
        dari.analyzer,
        rev,
    ).retrieve("refund office 휴가")
    assert [h.chunk_id for h in rev.seen[0]] == [h.chunk_id for h in plain.ranked]
    assert [h.chunk_id for h in r.ranked] == [h.chunk_id for h in plain.ranked[::-1][:2]]
    assert "rerank" in r.timings_ms


def test_ranked_is_best_first_and_hits_are_its_prompt_order(dari: Dari, corpus: Path) -> None:
    dari.ingest([corpus], "c")
    r = retriever(dari, "c").retrieve("refund within 30 days", k=4)
    assert list(r.ranked) == by_score(r)
    assert list(r.hits) == order_for_context(r.ranked)
    assert all(
        h.child_text and h.child_text in dari.store.source_rows([h.chunk_id])[h.chunk_id].chunk_text
        for h in r.ranked
    )


def test_mmr_pushes_a_near_duplicate_down(dari: Dari, tmp_path: Path) -> None:
    folder = tmp_path / "dups"
    folder.mkdir()
    same = "Refunds are paid within 30 days of the request to the original card."
    (folder / "a.md").write_text(f"# Refunds A\n\n{same}\n")
    (folder / "b.md").write_text(f"# Refunds B\n\n{same}\n")
    (folder / "c.md").write_text("# Shipping\n\nRefund requests for shipping go to the desk.\n")
    dari.ingest([folder], "d")
    plain = retriever(dari, "d", top_k=3).retrieve("refunds paid within 30 days")
    # RRF keeps the three candidates' relevances close, so that diversity can decide.
    mmr = retriever(dari, "d", top_k=3, reranker="mmr", mmr_lambda=0.5, fusion="rrf").retrieve(
        "refunds paid within 30 days"
    )
    titles = [h.title for h in plain.ranked]
    assert set(titles[:2]) == {"Refunds A", "Refunds B"}  # the duplicates lead without MMR
    assert [h.title for h in mmr.ranked][1] == "Shipping"  # MMR puts the other source second
    assert mmr.ranked[0].title == titles[0]

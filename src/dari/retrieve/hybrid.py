"""Hybrid retrieval over one collection."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from dari.config import RetrievalSettings
from dari.index.analyzer import Analyzer
from dari.index.filters import filter_tokens
from dari.index.store import Store
from dari.protocols import Embedder, Reranker, TextIndex, VectorIndex
from dari.retrieve.transform import QueryTransformer, Variant
from dari.text import estimate_tokens
from dari.types import Hit, Retrieval


def fuse(
    ranked: Sequence[tuple[Sequence[tuple[str, float]], float]], k: int
) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion of ranked lists: Σ weight / (k + rank)."""
    scores: dict[str, float] = {}
    for results, weight in ranked:
        for rank, (cid, _) in enumerate(results, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def fuse_linear(
    ranked: Sequence[tuple[Sequence[tuple[str, float]], float]],
) -> list[tuple[str, float]]:
    """Weighted sum of scores, each list min-max normalised to [0, 1] (a single score, or all
    equal, counts as 1); an item missing from a list gets 0 from it."""
    scores: dict[str, float] = {}
    for results, weight in ranked:
        if not results or weight == 0:
            continue
        values = [score for _, score in results]
        lo, hi = min(values), max(values)
        for cid, score in results:
            norm = (score - lo) / (hi - lo) if hi > lo else 1.0
            scores[cid] = scores.get(cid, 0.0) + weight * norm
    return sorted(scores.items(), key=lambda kv: -kv[1])


def order_for_context(hits: Sequence[Hit]) -> list[Hit]:
    """Against lost-in-the-middle: the strongest first, the second strongest last, and so on
    inwards, so the weakest sources sit in the middle of the prompt."""
    front: list[Hit] = []
    back: list[Hit] = []
    for i, hit in enumerate(hits):
        (front if i % 2 == 0 else back).append(hit)
    return front + back[::-1]


class HybridRetriever:
    def __init__(
        self,
        settings: RetrievalSettings,
        store: Store,
        bm25: TextIndex,
        vectors: Callable[[], VectorIndex],
        embedder: Embedder,
        analyzer: Analyzer,
        reranker: Reranker | None = None,
        transformer: QueryTransformer | None = None,
    ) -> None:
        self._s = settings
        self._store = store
        self._bm25 = bm25
        self._vectors = vectors
        self._embedder = embedder
        self._analyzer = analyzer
        self._reranker = reranker
        self._transformer = transformer

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        acl: Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Retrieval:
        """Sources for a question. `acl`: the tags the user holds (None: no ACL check, as for an
        operator); `filters`: `key=value` metadata every source's document must have."""
        k = k or self._s.top_k
        acl_list = list(acl) if acl is not None else None
        where = filter_tokens(filters)
        timings: dict[str, float] = {}
        variants: tuple[Variant, ...] = ()
        if self._transformer is not None:
            t = time.perf_counter()
            variants = self._transformer.expand(query)
            timings["transform"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        terms = list(dict.fromkeys(self._analyzer.terms(query)))
        lexical: list[tuple[str, float]] = []
        extra: list[tuple[list[tuple[str, float]], float]] = []  # lists of the variants
        if self._s.bm25_weight > 0:
            lexical = self._bm25.search_terms(terms, self._s.candidates, acl_list, where)
            for v in variants:
                if v.lexical:
                    found = self._bm25.search(v.text, self._s.candidates, acl_list, where)
                    extra.append((found, self._s.bm25_weight))
        timings["bm25"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        dense: list[tuple[str, float]] = []
        if self._s.dense_weight > 0:
            asked = [query, *(v.text for v in variants if not v.as_passage)]
            vecs = list(self._embedder.embed_queries(asked))
            passages = [v.text for v in variants if v.as_passage]
            if passages:
                vecs.extend(self._embedder.embed_passages(passages))
            timings["embed_query"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            index = self._vectors()
            dense = index.search(vecs[0], self._s.candidates, acl_list, where)
            for v in vecs[1:]:
                found = index.search(v, self._s.candidates, acl_list, where)
                extra.append((found, self._s.dense_weight))
        timings["dense"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        lists = [(lexical, self._s.bm25_weight), (dense, self._s.dense_weight), *extra]
        fused = fuse_linear(lists) if self._s.fusion == "linear" else fuse(lists, self._s.rrf_k)
        rows = self._store.source_rows([cid for cid, _ in fused])
        bm25_rank = {cid: r for r, (cid, _) in enumerate(lexical, start=1)}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
        bm25_score, dense_score = dict(lexical), dict(dense)
        pool_size = max(k, self._s.rerank_depth) if self._reranker else k
        pool: list[Hit] = []
        seen_sections: set[str] = set()
        for cid, score in fused:
            row = rows.get(cid)
            if row is None or row.section_id in seen_sections:
                continue  # deleted since indexed, or its parent is already in
            seen_sections.add(row.section_id)
            text = window(row.section_text, row.chunk_text, self._s.context_tokens // k)
            pool.append(
                Hit(
                    chunk_id=row.chunk_id,
                    section_id=row.section_id,
                    doc_id=row.doc_id,
                    score=score,
                    text=text,
                    source=row.source,
                    title=row.title,
                    heading=row.heading,
                    page=row.page,
                    bm25_rank=bm25_rank.get(cid),
                    dense_rank=dense_rank.get(cid),
                    dense_score=dense_score.get(cid),
                    bm25_score=bm25_score.get(cid),
                    child_text=row.chunk_text,
                    flags=row.flags,
                )
            )
            if len(pool) == pool_size:
                break
        timings["fuse_expand"] = (time.perf_counter() - t) * 1000
        hits = pool[:k]
        if self._reranker is not None and len(pool) > 1:
            t = time.perf_counter()
            hits = list(self._reranker.rerank(query, pool, k))[:k]
            timings["rerank"] = (time.perf_counter() - t) * 1000
        # Coverage is judged on the matched children (short) rather than whole parent sections.
        coverage = self._coverage(terms, [h.child_text for h in hits])
        dense_top = max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
        min_dense = self._s.min_dense if self._s.min_dense is not None else self._embedder.min_dense
        abstain = not hits or (coverage < self._s.min_coverage and dense_top < min_dense)
        ordered = tuple(order_for_context(hits))
        return Retrieval(ordered, coverage, dense_top, abstain, timings, tuple(hits))

    def _coverage(self, terms: Sequence[str], texts: Sequence[str]) -> float:
        if not terms or not texts:
            return 0.0
        wanted = set(terms)
        best = 0.0
        for source_terms in self._analyzer.terms_many(list(texts)):
            best = max(best, len(wanted & set(source_terms)) / len(wanted))
        return best


def window(section: str, child: str, budget: int) -> str:
    """The parent section, or — when it is over `budget` estimated tokens — the stretch of it
    around the matched child, cut at line or sentence ends where possible."""
    total = estimate_tokens(section)
    if total <= budget:
        return section
    body = child.split("\n", 1)[1] if "\n" in child else child  # drop the header line
    at = section.find(body[:40].strip()) if body.strip() else -1
    width = max(1, len(section) * budget // total)  # characters that fit the budget
    start = max(0, min(at if at >= 0 else 0, len(section) - width) - width // 6)
    end = min(len(section), start + width)
    if start > 0:  # begin after a line or sentence break near the cut
        cut = max(
            section.rfind("\n", start, start + width // 4),
            section.rfind(". ", start, start + width // 4),
        )
        start = cut + 1 if cut >= start else start
    if end < len(section):
        cut = max(
            section.rfind("\n", end - width // 4, end), section.rfind(". ", end - width // 4, end)
        )
        end = cut + 1 if cut > start else end
    piece = section[start:end].strip()
    return ("… " if start > 0 else "") + piece + (" …" if end < len(section) else "")

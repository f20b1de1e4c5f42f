"""Second-stage rerankers over the fused candidates (the `Reranker` protocol).

- `MMRReranker`: maximal marginal relevance, for diversity among the sources given to the LLM.
- `LTRReranker` (dari.retrieve.ltr): a learned ranker over retrieval features.
- `LLMReranker` (dari.retrieve.llm_rerank): listwise reranking by the configured LLM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dari.protocols import VectorIndex
from dari.types import Hit


class MMRReranker:
    """Greedy MMR: next = argmax λ·relevance − (1−λ)·max cosine to the sources already chosen.
    Relevance is the first-stage fused score divided by the best one (fused scores are >= 0);
    similarity is between the matched child chunks' stored vectors."""

    name = "mmr"

    def __init__(self, vectors: Callable[[], VectorIndex], lam: float = 0.7) -> None:
        self._vectors = vectors
        self._lam = lam

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if len(hits) <= 1:
            return list(hits)
        scores = np.array([h.score for h in hits], dtype=np.float64)
        top = scores.max()
        rel = scores / top if top > 0 else np.ones_like(scores)
        vecs = self._vectors().vectors_of([h.chunk_id for h in hits]).astype(np.float64)
        sim = vecs @ vecs.T
        chosen: list[int] = []
        left = list(range(len(hits)))
        # Rank every candidate (not only k): the tail order still matters to evals and callers.
        while left:
            redundancy = sim[np.ix_(left, chosen)].max(axis=1) if chosen else np.zeros(len(left))
            value = self._lam * rel[left] - (1 - self._lam) * redundancy
            best = left[int(np.argmax(value))]
            chosen.append(best)
            left.remove(best)
        return [hits[i] for i in chosen]

"""Ranking metrics per query (trec_eval's definitions, through ir-measures) and bootstrap
confidence intervals for their means."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np

from dari.errors import MissingExtra

RECALL_AT = (1, 5, 10, 20)
METRICS = ("ndcg@10", *(f"recall@{k}" for k in RECALL_AT), "mrr@10")


def ranking_metrics(
    ranked: Mapping[str, Sequence[str]], gold: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, float]]:
    """metric name → query id → value, for every query in `gold` (a query that retrieved
    nothing scores 0). nDCG uses graded relevance with linear gain, as trec_eval does."""
    try:
        import ir_measures
        from ir_measures import RR, R, nDCG
    except ImportError as exc:
        raise MissingExtra("ir-measures", "eval") from exc
    measures = {"ndcg@10": nDCG @ 10, "mrr@10": RR @ 10}
    measures.update({f"recall@{k}": R @ k for k in RECALL_AT})
    by_measure = {str(m): name for name, m in measures.items()}
    qrels = [
        ir_measures.Qrel(qid, did, rel) for qid, docs in gold.items() for did, rel in docs.items()
    ]
    # Scores that keep dari's order exactly: trec_eval breaks score ties by document id.
    run = [
        ir_measures.ScoredDoc(qid, did, float(len(docs) - i))
        for qid, docs in ranked.items()
        if qid in gold
        for i, did in enumerate(docs)
    ]
    out: dict[str, dict[str, float]] = {name: dict.fromkeys(gold, 0.0) for name in measures}
    for m in ir_measures.iter_calc(list(measures.values()), qrels, run):
        out[by_measure[str(m.measure)]][m.query_id] = float(m.value)
    return out


def normalise(text: str) -> str:
    """For answer matching: NFKC, lowercase, no punctuation, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def answer_in(context: str, answers: Sequence[str]) -> bool:
    """Whether any reference answer appears in the context (after `normalise`)."""
    ctx = normalise(context)
    return any(normalise(a) and normalise(a) in ctx for a in answers)


def bootstrap_ci(
    values: Sequence[float], resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean over queries."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(resamples, arr.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def paired_delta(
    a: Sequence[float], b: Sequence[float], resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of b − a over the same queries, with its 95 % bootstrap interval: an interval
    above 0 means b is better than a on this set, beyond resampling noise."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    lo, hi = bootstrap_ci(diff.tolist(), resamples, seed)
    return (float(diff.mean()) if diff.size else 0.0, lo, hi)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else 0.0

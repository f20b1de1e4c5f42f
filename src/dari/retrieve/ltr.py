"""A learned reranker: LightGBM LambdaMART over features the first stage already has (BM25 and
dense scores and ranks, fused score, query-term coverage of the matched child and the title,
length). No text model is needed, so it runs offline and in milliseconds, in any language.

dari ships a model trained on the SciFact train split only (`dari rerank train`); train your own
on your labelled queries with the same command and point `retrieval.ltr_model` at it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dari.errors import ConfigError, MissingExtra
from dari.index.analyzer import Analyzer
from dari.text import estimate_tokens
from dari.types import Hit

FEATURES = (
    "fused_rel",  # fused score / best fused score in the pool
    "position",  # 1 / first-stage position
    "bm25_rr",  # 1 / BM25 rank of the matched child (0: not in the BM25 list)
    "dense_rr",  # 1 / dense rank (0: not in the dense list)
    "bm25_rel",  # BM25 score / best BM25 score in the pool
    "dense",  # cosine similarity to the question
    "dense_gap",  # best cosine in the pool − this cosine
    "in_both",  # found by both retrievers
    "cov_child",  # share of the question's terms in the matched child
    "cov_title",  # share of the question's terms in the title
    "log_tokens",  # log(1 + estimated tokens of the source)
)
BUNDLED = "ltr-scifact-v1.txt"


def features(terms: Sequence[str], hits: Sequence[Hit], analyzer: Analyzer) -> np.ndarray:
    """One row of FEATURES per candidate, normalised within the pool so that one model serves
    collections with different score scales."""
    n = len(hits)
    x = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return x
    wanted = set(terms)
    best_fused = max(h.score for h in hits) or 1.0
    best_bm25 = max((h.bm25_score or 0.0) for h in hits) or 1.0
    best_dense = max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
    child_terms = analyzer.terms_many([h.child_text or h.text for h in hits])
    titles = list(dict.fromkeys(h.title for h in hits))
    title_terms = dict(zip(titles, analyzer.terms_many(titles), strict=True))

    def cover(found: Sequence[str]) -> float:
        return len(wanted & set(found)) / len(wanted) if wanted else 0.0

    for i, h in enumerate(hits):
        dense = h.dense_score if h.dense_score is not None else 0.0
        x[i] = (
            h.score / best_fused,
            1.0 / (i + 1),
            1.0 / h.bm25_rank if h.bm25_rank else 0.0,
            1.0 / h.dense_rank if h.dense_rank else 0.0,
            (h.bm25_score or 0.0) / best_bm25,
            dense,
            best_dense - dense if h.dense_score is not None else 1.0,
            float(h.bm25_rank is not None and h.dense_rank is not None),
            cover(child_terms[i]),
            cover(title_terms[h.title]),
            math.log1p(estimate_tokens(h.text)),
        )
    return x


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingExtra("lightgbm", "rerank") from exc
    return lightgbm


class LTRReranker:
    name = "ltr"

    def __init__(self, analyzer: Analyzer, model: str = "", fusion: str = "") -> None:
        """`fusion`: the first stage's fusion, checked against the one the model learned from
        (its `<model>.json` card); "" skips the check."""
        self._analyzer = analyzer
        self._model = model
        self._fusion = fusion

    @cached_property
    def _booster(self) -> Any:
        lgb = _lightgbm()
        if not self._model:
            folder = resources.files("dari.retrieve").joinpath("models")
            text = folder.joinpath(BUNDLED).read_text()
            self._check(json.loads(folder.joinpath(BUNDLED + ".json").read_text()), BUNDLED)
            return lgb.Booster(model_str=text)
        path = Path(self._model).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"learned reranker model not found: {path}",
                "train one with `dari rerank train`, or set retrieval.ltr_model to '' for "
                "the bundled model",
            )
        card = path.with_name(path.name + ".json")
        if card.is_file():
            self._check(json.loads(card.read_text()), str(path))
        return lgb.Booster(model_file=str(path))

    def _check(self, card: dict[str, Any], name: str) -> None:
        """A model only ranks well on candidates like the ones it learned from."""
        if card.get("features") != list(FEATURES):
            raise ConfigError(
                f"the reranker model {name} was trained on other features than this dari uses",
                "train it again with `dari rerank train`",
            )
        if self._fusion and card.get("fusion") != self._fusion:
            raise ConfigError(
                f"the reranker model {name} was trained on candidates from "
                f"fusion = '{card.get('fusion')}', but retrieval.fusion is '{self._fusion}'",
                f"set retrieval.fusion = '{card.get('fusion')}', or train a model for "
                f"'{self._fusion}' with `dari rerank train`",
            )

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        x = features(self._analyzer.terms(query), hits, self._analyzer)
        scores = self._booster.predict(x)
        order = np.argsort(-scores, kind="stable")
        return [hits[i] for i in order]


def card(fusion: str, trained_on: str, queries: int, seed: int) -> dict[str, Any]:
    """What a model file needs beside it: the features and fusion it expects, its data."""
    return {
        "features": list(FEATURES),
        "fusion": fusion,
        "trained_on": trained_on,
        "queries": queries,
        "seed": seed,
    }


def usable(
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The queries a ranker can learn from: two or more candidates, one of them relevant."""
    return [(x, y) for x, y in groups if len(y) > 1 and y.max() > 0]


def train(groups: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 7, rounds: int = 300) -> str:
    """A LambdaMART model (as LightGBM model text) from (features, relevance labels) per query;
    queries without any relevant candidate teach nothing and are left out."""
    lgb = _lightgbm()
    kept = usable(groups)
    if not kept:
        raise ConfigError("no query has a relevant document among its candidates", "")
    data = lgb.Dataset(
        np.vstack([x for x, _ in kept]),
        label=np.concatenate([y for _, y in kept]),
        group=[len(y) for _, y in kept],
        feature_name=list(FEATURES),
    )
    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "ndcg_eval_at": [10],
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbose": -1,
    }
    booster = lgb.train(params, data, num_boost_round=rounds)
    return str(booster.model_to_string())

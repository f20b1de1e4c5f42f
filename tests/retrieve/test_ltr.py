"""The learned reranker: features, training, loading, and reranking with a trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dari.errors import ConfigError
from dari.index.analyzer import Analyzer
from dari.retrieve.ltr import FEATURES, LTRReranker, card, features, train
from dari.types import Hit


def hit(i: int, text: str, **kw: object) -> Hit:
    return Hit(f"c{i}", f"s{i}", f"d{i}", text=text, source=f"doc{i}.md", child_text=text, **kw)  # type: ignore[arg-type]


POOL = [
    hit(0, "The garage opens at 7 am.", score=0.03, title="Parking", bm25_rank=1, bm25_score=8.0),
    hit(
        1,
        "Refunds are paid within 30 days.",
        score=0.02,
        title="Refund policy",
        dense_rank=1,
        dense_score=0.9,
    ),
    hit(
        2,
        "Refund requests go to the desk.",
        score=0.01,
        title="Desk",
        bm25_rank=2,
        bm25_score=4.0,
        dense_rank=2,
        dense_score=0.8,
    ),
]


def test_features_are_normalised_within_the_pool(analyzer: Analyzer):
    x = features(analyzer.terms("refund policy days"), POOL, analyzer)
    f = {name: x[:, i] for i, name in enumerate(FEATURES)}
    assert x.shape == (3, len(FEATURES))
    assert f["fused_rel"].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert f["position"].tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert f["bm25_rr"].tolist() == [1.0, 0.0, 0.5]
    assert f["bm25_rel"].tolist() == [1.0, 0.0, 0.5]
    assert f["dense_gap"].tolist() == pytest.approx([1.0, 0.0, 0.1])
    assert f["in_both"].tolist() == [0.0, 0.0, 1.0]
    assert f["cov_title"][1] == pytest.approx(2 / 3)  # "refund", "polici" of 3 terms
    assert f["cov_child"][0] == 0.0 and f["cov_child"][1] > 0
    assert features([], [], analyzer).shape == (0, len(FEATURES))


def _groups(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic pools where relevance follows title coverage, not first-stage position."""
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(120):
        x = rng.random((10, len(FEATURES)))
        y = np.zeros(10)
        y[int(np.argmax(x[:, FEATURES.index("cov_title")]))] = 1
        groups.append((x, y))
    return groups


def test_training_learns_what_predicts_relevance(tmp_path: Path, analyzer: Analyzer):
    model = tmp_path / "ltr.txt"
    model.write_text(train(_groups(1), seed=3, rounds=60))
    assert train(_groups(1), seed=3, rounds=60) == model.read_text()  # reproducible
    reranker = LTRReranker(analyzer, str(model))
    # The second candidate is the only one whose title covers the question.
    ranked = reranker.rerank("refund policy", POOL, 3)
    assert ranked[0].chunk_id == "c1"
    assert sorted(h.chunk_id for h in ranked) == ["c0", "c1", "c2"]


def test_training_needs_a_relevant_candidate():
    with pytest.raises(ConfigError, match="no query has a relevant document"):
        train([(np.zeros((3, len(FEATURES))), np.zeros(3))])


def test_missing_model_file_is_a_config_error(tmp_path: Path, analyzer: Analyzer):
    with pytest.raises(ConfigError, match="model not found") as err:
        LTRReranker(analyzer, str(tmp_path / "nope.txt")).rerank("q", POOL, 2)
    assert "dari rerank train" in err.value.hint


def test_the_bundled_model_reranks_linear_fusion_candidates(analyzer: Analyzer):
    ranked = LTRReranker(analyzer, "", "linear").rerank("refund policy", POOL, 3)
    assert sorted(h.chunk_id for h in ranked) == ["c0", "c1", "c2"]
    with pytest.raises(ConfigError, match="fusion = 'linear'") as err:
        LTRReranker(analyzer, "", "rrf").rerank("refund policy", POOL, 3)
    assert "retrieval.fusion = 'linear'" in err.value.hint


def test_a_model_card_that_does_not_fit_is_refused(tmp_path: Path, analyzer: Analyzer):
    model = tmp_path / "m.txt"
    model.write_text(train(_groups(2), rounds=20))
    (tmp_path / "m.txt.json").write_text(json.dumps(card("rrf", "mine", 120, 7)))
    assert LTRReranker(analyzer, str(model), "rrf").rerank("q", POOL, 3)
    with pytest.raises(ConfigError, match="trained on candidates from fusion = 'rrf'"):
        LTRReranker(analyzer, str(model), "linear").rerank("q", POOL, 3)
    old = card("rrf", "mine", 120, 7) | {"features": ["bm25_rr"]}
    (tmp_path / "m.txt.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="other features"):
        LTRReranker(analyzer, str(model), "rrf").rerank("q", POOL, 3)

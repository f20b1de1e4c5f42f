"""Ranking metrics against hand-computed trec_eval values, and the bootstrap intervals."""

from __future__ import annotations

import math

import pytest

from dari.eval.metrics import answer_in, bootstrap_ci, paired_delta, ranking_metrics


def test_binary_relevance_at_rank_two():
    m = ranking_metrics({"q": ["d1", "d2", "d3"]}, {"q": {"d2": 1}})
    assert m["ndcg@10"]["q"] == pytest.approx(1 / math.log2(3))
    assert m["recall@1"]["q"] == 0.0
    assert m["recall@5"]["q"] == 1.0
    assert m["mrr@10"]["q"] == pytest.approx(0.5)


def test_graded_relevance_uses_linear_gain():
    m = ranking_metrics({"q": ["b", "a"]}, {"q": {"a": 2, "b": 1}})
    dcg = 1 + 2 / math.log2(3)
    ideal = 2 + 1 / math.log2(3)
    assert m["ndcg@10"]["q"] == pytest.approx(dcg / ideal)


def test_order_is_kept_whatever_the_document_ids():
    # trec_eval breaks score ties by document id; dari's order must survive that.
    m = ranking_metrics({"q": ["z", "a"]}, {"q": {"a": 1}})
    assert m["mrr@10"]["q"] == pytest.approx(0.5)


def test_a_query_that_retrieved_nothing_scores_zero():
    m = ranking_metrics({"q1": ["a"]}, {"q1": {"a": 1}, "q2": {"b": 1}})
    assert m["ndcg@10"] == {"q1": 1.0, "q2": 0.0}
    assert m["recall@20"]["q2"] == 0.0


def test_recall_counts_the_share_of_gold_documents():
    m = ranking_metrics({"q": ["a", "x", "b"]}, {"q": {"a": 1, "b": 1, "c": 1, "d": 1}})
    assert m["recall@1"]["q"] == pytest.approx(0.25)
    assert m["recall@5"]["q"] == pytest.approx(0.5)


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_agreement():
    values = [1.0, 0.0] * 50
    lo, hi = bootstrap_ci(values)
    assert lo < 0.5 < hi
    assert bootstrap_ci([0.7] * 40) == pytest.approx((0.7, 0.7))
    assert bootstrap_ci([]) == (0.0, 0.0)


def test_paired_delta_sees_a_consistent_gain():
    a = [0.5] * 30
    b = [0.6] * 30
    delta, lo, hi = paired_delta(a, b)
    assert delta == pytest.approx(0.1)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    delta, lo, hi = paired_delta(a, a)
    assert (delta, lo, hi) == (0.0, 0.0, 0.0)


def test_answer_in_context_ignores_case_width_and_punctuation():
    assert answer_in("The garage opens at 7 A.M. daily", ["7 a m"])
    assert answer_in("연차 휴가는 1년에 15일입니다.", ["１５일"])  # full-width digits
    assert not answer_in("The garage opens at 7 am", ["8 am"])
    assert not answer_in("anything", [""])

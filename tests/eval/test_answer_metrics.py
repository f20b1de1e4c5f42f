"""Answer metrics on known strings."""

from __future__ import annotations

import numpy as np
import pytest

from dari.eval import answer_metrics as am
from dari.guards.output import GroundednessGuard
from dari.index.analyzer import Analyzer


@pytest.fixture(scope="module")
def tok() -> am.Tokenize:
    return am.tokenizer(Analyzer().kiwi)


def test_exact_match_ignores_case_punctuation_and_citations():
    assert am.exact_match("Arthur's Magazine [1].", ["arthur s magazine"]) == 1.0
    assert am.exact_match("Arthur's Magazine was first", ["Arthur's Magazine"]) == 0.0


def test_token_f1_english(tok: am.Tokenize):
    assert am.token_f1("the cat sat", ["the cat sat"], tok) == 1.0
    # 2 common of 3 and 4 tokens: P 2/3, R 1/2 → F1 4/7
    assert am.token_f1("a cat sat", ["the cat sat down"], tok) == pytest.approx(4 / 7)
    assert am.token_f1("dog", ["the cat", "a dog"], tok) == pytest.approx(2 / 3)


def test_korean_f1_counts_morphemes_not_spaces(tok: am.Tokenize):
    answer, ref = "연차 휴가는 15일입니다", "연차 휴가 15일"
    spaces = am._f1(answer.split(), ref.split())
    morphemes = am.token_f1(answer, [ref], tok)
    assert spaces == pytest.approx(1 / 3)  # only "연차" matches word for word
    assert morphemes > 0.7  # 연차, 휴가, 15, 일 all match as morphemes
    assert "휴가" in tok("휴가는") and "는" in tok("휴가는")


def test_rouge_l_and_bleu(tok: am.Tokenize):
    assert am.rouge_l("the cat sat on the mat", ["the cat sat on the mat"], tok) == 1.0
    # LCS "cat mat" = 2 of 3 and 3 tokens
    assert am.rouge_l("cat on mat", ["cat the mat"], tok) == pytest.approx(2 / 3)
    assert am.rouge_l("연차 휴가는 15일", ["연차 휴가 15일"], tok) > 0.7
    assert am.bleu("the cat sat on the mat", ["the cat sat on the mat"], tok) == pytest.approx(1.0)
    assert 0 < am.bleu("the cat sat on a mat", ["the cat sat on the mat"], tok) < 1
    assert am.bleu("완전히 다른 말", ["연차 휴가 15일"], tok) < 0.1


def test_embedding_metrics():
    a = np.array([1.0, 0.0])
    refs = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert am.embedding_similarity(a, refs) == pytest.approx(2**-0.5)
    assert am.answer_relevance(a, a) == pytest.approx(1.0)


def test_citation_precision_recall_match_ids_or_sources():
    cited = [("docs/a.md", "A"), ("docs/b.md", "B")]
    assert am.citation_scores(cited, ["A", "C"]) == (0.5, 0.5)
    assert am.citation_scores(cited, ["docs/b.md"]) == (0.5, 1.0)
    assert am.citation_scores([], ["A"]) == (None, 0.0)
    assert am.citation_scores(cited, []) == (0.0, None)


def test_faithfulness_counts_supported_cited_sentences():
    analyzer = Analyzer()
    guard = GroundednessGuard(analyzer.terms, analyzer.sentences, 0.9)
    sources = ["Refunds are paid within 5 business days.", "The office opens at 8 am."]
    good = "Refunds are paid within 5 business days [1]. The office opens at 8 am [2]."
    half = "Refunds are paid within 5 business days [1]. The office opens at 9 am [2]."
    s_good = am.cited_sentences(guard, good, sources, "en", analyzer.sentences)
    s_half = am.cited_sentences(guard, half, sources, "en", analyzer.sentences)
    assert am.faithfulness(s_good, 0.9) == 1.0
    assert am.faithfulness(s_half, 0.9) == 0.5
    assert am.faithfulness([], 0.9) == 0.0


def test_agreement_is_mean_pairwise_f1(tok: am.Tokenize):
    assert am.agreement(["a b", "a b", "a b"], tok) == 1.0
    assert am.agreement(["alpha", "beta"], tok) == 0.0
    assert am.agreement(["only one"], tok) == 1.0

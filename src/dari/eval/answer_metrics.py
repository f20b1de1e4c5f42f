"""Answer metrics: pure functions of an answer, its references and its sources.

Text metrics compare tokens: Korean text is split into Kiwi morphemes ("휴가는" → "휴가", "는"),
not at spaces, so that particles and endings do not hide a match; English text is split into
words after `normalise` (NFKC, lowercase, no punctuation). Citation markers ([1]) are removed
first. Each metric over several references takes the best one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from dari.errors import MissingExtra
from dari.eval.metrics import normalise
from dari.guards.output import GroundednessGuard

Tokenize = Callable[[str], list[str]]

_CITE = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_CITE_ONE = re.compile(r"\[(\d{1,2})\]")


def strip_citations(text: str) -> str:
    return " ".join(_CITE.sub(" ", text).split())


def tokenizer(kiwi: Any) -> Tokenize:
    """Tokens for the text metrics: Kiwi morphemes (punctuation dropped) for text with Hangul,
    normalised words otherwise. `kiwi`: a kiwipiepy.Kiwi (dari's `Analyzer.kiwi`)."""

    def tokenize(text: str) -> list[str]:
        text = strip_citations(text)
        if not _HANGUL.search(text):
            return normalise(text).split()
        out: list[str] = []
        for tok in kiwi.tokenize(text):
            tag = str(tok.tag).split("-")[0]
            if tag.startswith("S") and tag not in ("SL", "SN", "SH"):
                continue  # punctuation and symbols
            out.extend(normalise(tok.form).split())
        return out

    return tokenize


def exact_match(answer: str, references: Sequence[str]) -> float:
    """1.0 when the answer equals a reference after normalisation (citations removed)."""
    got = normalise(strip_citations(answer))
    return float(any(got == normalise(r) for r in references))


def _f1(got: Sequence[str], want: Sequence[str]) -> float:
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or not common:
        return float(not got and not want)
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def token_f1(answer: str, references: Sequence[str], tokenize: Tokenize) -> float:
    """SQuAD-style token F1 (bag of tokens), best over the references."""
    got = tokenize(answer)
    return max((_f1(got, tokenize(r)) for r in references), default=0.0)


class _Tokens:
    """rouge-score's tokenizer interface over our tokenize function."""

    def __init__(self, tokenize: Tokenize) -> None:
        self.tokenize = tokenize


def rouge_l(answer: str, references: Sequence[str], tokenize: Tokenize) -> float:
    """ROUGE-L F-measure (longest common subsequence, rouge-score), best over the references."""
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise MissingExtra("rouge-score", "eval") from exc
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokens(tokenize))
    return max((scorer.score(r, answer)["rougeL"].fmeasure for r in references), default=0.0)


def bleu(answer: str, references: Sequence[str], tokenize: Tokenize) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) on our tokens, scaled to 0..1."""
    try:
        import sacrebleu
    except ImportError as exc:
        raise MissingExtra("sacrebleu", "eval") from exc
    if not references:
        return 0.0
    hyp = " ".join(tokenize(answer))
    refs = [" ".join(tokenize(r)) for r in references]
    return float(sacrebleu.sentence_bleu(hyp, refs, tokenize="none").score) / 100


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.asarray(a @ b.T)


def embedding_similarity(answer_vec: np.ndarray, reference_vecs: np.ndarray) -> float:
    """BERTScore-style semantic match at the sentence level: the best cosine between the
    answer's passage embedding and a reference's."""
    if len(reference_vecs) == 0:
        return 0.0
    return float(_cosine(answer_vec[None, :], reference_vecs).max())


def answer_relevance(question_vec: np.ndarray, answer_vec: np.ndarray) -> float:
    """An embedding proxy for answer relevance: the cosine of the question's query embedding
    and the answer's passage embedding (not a judgement that the answer addresses it)."""
    return float(_cosine(question_vec[None, :], answer_vec[None, :])[0, 0])


def citation_scores(
    cited: Sequence[tuple[str, ...]], gold: Sequence[str]
) -> tuple[float | None, float | None]:
    """(precision, recall) of the cited documents, each given by the names it answers to
    (source, external id, file name…), against the gold ids. None where the denominator is
    empty."""
    want = set(gold)
    docs = dict.fromkeys(cited)
    hits = [d for d in docs if want.intersection(d)]
    precision = len(hits) / len(docs) if docs else None
    found = {g for g in want if any(g in d for d in docs)}
    recall = len(found) / len(want) if want else None
    return precision, recall


def cited_sentences(
    guard: GroundednessGuard,
    text: str,
    sources: Sequence[str],
    lang: str,
    sentences: Callable[[str, str], list[str]],
) -> list[float]:
    """The groundedness guard's support of each sentence that cites a source, in order; a
    sentence made only of a marker ("[1]") belongs to the one before, as in the guard."""
    merged: list[str] = []
    for sentence in sentences(text, lang):
        if merged and not _CITE_ONE.sub("", sentence).strip(" .\n"):
            merged[-1] += sentence
        else:
            merged.append(sentence)
    out = []
    for sentence in merged:
        given = [
            sources[n - 1] for n in map(int, _CITE_ONE.findall(sentence)) if 0 < n <= len(sources)
        ]
        if given:
            out.append(guard.support(sentence, given))
    return out


def faithfulness(support: Sequence[float], min_support: float) -> float:
    """Share of the cited sentences whose support reaches the guard's threshold; 0 when nothing
    in the answer cites a source (nothing it says is backed)."""
    if not support:
        return 0.0
    return sum(s >= min_support for s in support) / len(support)


def agreement(answers: Sequence[str], tokenize: Tokenize) -> float:
    """Self-consistency: mean pairwise token F1 of sampled answers (1.0 = all the same)."""
    tokens = [tokenize(a) for a in answers]
    pairs = [_f1(a, b) for a, b in combinations(tokens, 2)]
    return float(np.mean(pairs)) if pairs else 1.0

"""Language-aware analysis into index terms: Korean by morphemes (kiwipiepy), English stemmed.

The same analyzer runs on chunks at ingest and on questions at query time, so a Korean or English
question matches a mixed corpus. Terms never contain spaces: they are fed to tantivy pre-tokenized.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Morphemes worth indexing: nouns, numerals, verb/adjective stems, roots, foreign words, hanja,
# and negation/degree adverbs ("안", "못") that change meaning.
_KEEP_TAGS = frozenset(
    {"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG", "VX"}
)
# Function words of English questions and prose (a compact, Lucene/NLTK-style list); they carry
# no topic, and counting them would make "how do I…" questions look poorly covered.
_EN_STOP = sorted(
    set(
        [
            "a",
            "about",
            "above",
            "after",
            "again",
            "against",
            "all",
            "am",
            "an",
            "and",
            "any",
            "are",
            "as",
            "at",
            "be",
            "because",
            "been",
            "before",
            "being",
            "below",
            "between",
            "both",
            "but",
            "by",
            "can",
            "could",
            "did",
            "do",
            "does",
            "doing",
            "down",
            "during",
            "each",
            "few",
            "for",
            "from",
            "further",
            "had",
            "has",
            "have",
            "having",
            "he",
            "her",
            "here",
            "hers",
            "herself",
            "him",
            "himself",
            "his",
            "how",
            "i",
            "if",
            "in",
            "into",
            "is",
            "it",
            "its",
            "itself",
            "just",
            "me",
            "more",
            "most",
            "my",
            "myself",
            "no",
            "nor",
            "not",
            "now",
            "of",
            "off",
            "on",
            "once",
            "only",
            "or",
            "other",
            "our",
            "ours",
            "ourselves",
            "out",
            "over",
            "own",
            "same",
            "she",
            "should",
            "so",
            "some",
            "such",
            "than",
            "that",
            "the",
            "their",
            "theirs",
            "them",
            "themselves",
            "then",
            "there",
            "these",
            "they",
            "this",
            "those",
            "through",
            "to",
            "too",
            "under",
            "until",
            "up",
            "very",
            "was",
            "we",
            "were",
            "what",
            "when",
            "where",
            "which",
            "while",
            "who",
            "whom",
            "why",
            "will",
            "with",
            "would",
            "you",
            "your",
            "yours",
            "yourself",
            "yourselves",
            "get",
            "got",
            "tell",
            "please",
            "many",
            "much",
            "may",
            "might",
            "must",
            "shall",
            "let",
            "lets",
            "also",
            "us",
        ]
    )
)
_KO_STOP = frozenset({"것", "수", "등", "때", "및", "이", "그", "저", "하", "되", "있", "없", "않"})


class Analyzer:
    """Turns text into index terms. Thread-safe; loads its models on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @cached_property
    def _english(self) -> Any:
        return _words(english=True)

    @cached_property
    def kiwi(self) -> Any:
        """The shared Kiwi instance (also used for Korean sentence splitting)."""
        from kiwipiepy import Kiwi

        with self._lock:
            return Kiwi(num_workers=1)

    def terms(self, text: str) -> list[str]:
        if not _HANGUL.search(text):
            return list(self._english.analyze(text))
        return self._korean_terms(self.kiwi.tokenize(text))

    def terms_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Batch form of `terms`: Korean texts go through Kiwi in one call."""
        out: list[list[str] | None] = [None] * len(texts)
        korean = [i for i, t in enumerate(texts) if _HANGUL.search(t)]
        for i, t in enumerate(texts):
            if not _HANGUL.search(t):
                out[i] = list(self._english.analyze(t))
        if korean:
            tokenized = self.kiwi.tokenize([texts[i] for i in korean])
            for i, tokens in zip(korean, tokenized, strict=True):
                out[i] = self._korean_terms(tokens)
        return [o if o is not None else [] for o in out]

    def _korean_terms(self, tokens: Iterable[Any]) -> list[str]:
        terms: list[str] = []
        for tok in tokens:
            tag = str(tok.tag).split("-")[0]  # "VV-R" -> "VV"
            if tag not in _KEEP_TAGS:
                continue
            if tag == "SL":
                terms.extend(self._english.analyze(tok.form))
            elif tok.form not in _KO_STOP:
                terms.append(tok.form.lower())
        return terms

    def sentences(self, text: str, lang: str) -> list[str]:
        """Sentences of `text` (Korean by Kiwi, others by punctuation); the last sentence of each
        line keeps a trailing newline so that lists and paragraphs survive re-joining."""
        out: list[str] = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            if lang == "ko" and _HANGUL.search(line):
                parts = [s.text for s in self.kiwi.split_into_sents(line)]
            else:
                parts = [p for p in _EN_SENT.split(line) if p.strip()]
            out.extend(p.strip() + " " for p in parts[:-1])
            out.append(parts[-1].strip() + "\n" if parts else "")
        return [s for s in out if s.strip()]


def _words(english: bool) -> Any:
    """A tantivy analyzer: words split at spaces and punctuation, lowercased; with `english`,
    also English stop words removed and stems."""
    import tantivy

    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
    )
    if english:
        builder = builder.filter(tantivy.Filter.custom_stopword(_EN_STOP)).filter(
            tantivy.Filter.stemmer("english")
        )
    return builder.build()


_EN_SENT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


class SimpleAnalyzer(Analyzer):
    """Baseline analysis for comparisons: words split at spaces and punctuation, lowercased, no
    morphemes, stems or stop words (a Korean word keeps its particles: "휴가는" ≠ "휴가")."""

    @cached_property
    def _simple(self) -> Any:
        return _words(english=False)

    def terms(self, text: str) -> list[str]:
        return list(self._simple.analyze(text))

    def terms_many(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.terms(t) for t in texts]

"""Near-duplicate texts: character shingles of the normalised text, compared by exact Jaccard.

Only pairs that can reach the threshold are compared: each shingle set, ordered rarest first, is
indexed by its prefix, and two sets with Jaccard ≥ t always share a prefix shingle (the prefix
filter of set-similarity joins). The result is the same as comparing every pair, without the cost.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence

SHINGLE_CHARS = 5  # about two Korean words or one English word
THRESHOLD = 0.9
_NOT_WORD = re.compile(r"[\W_]+")
_EPS = 1e-9  # so that 0.9 * 30 = 27.000000000000004 still counts as 27


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation and runs of space collapsed to one space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_WORD.sub(" ", folded).strip()


def shingles(text: str, n: int = SHINGLE_CHARS) -> frozenset[str]:
    """The character n-grams of the normalised text (the whole text when it is shorter)."""
    norm = normalise(text)
    if len(norm) <= n:
        return frozenset({norm})
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def distinct(texts: Sequence[str], threshold: float = THRESHOLD) -> list[bool]:
    """For each text, whether to keep it: False when an earlier kept text is a near-duplicate
    (Jaccard ≥ `threshold` over shingles). Earlier texts win, so order them by preference."""
    sets = [shingles(t) for t in texts]
    rarity = Counter(g for grams in sets for g in grams)
    index: dict[str, list[int]] = defaultdict(list)
    kept: list[bool] = []
    for i, grams in enumerate(sets):
        ordered = sorted(grams, key=lambda g: (rarity[g], g))
        prefix = ordered[: len(ordered) - math.ceil(threshold * len(ordered) - _EPS) + 1]
        candidates = {j for g in prefix for j in index.get(g, ())}
        duplicate = any(_similar(grams, sets[j], threshold) for j in candidates)
        kept.append(not duplicate)
        if not duplicate:
            for g in prefix:
                index[g].append(i)
    return kept


def _similar(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    small, large = sorted((len(a), len(b)))
    if small < threshold * large - _EPS:  # Jaccard ≤ |small| / |large|
        return False
    return jaccard(a, b) >= threshold - _EPS

"""Hashed character and word n-grams: the features of dari's text classifiers.

Deterministic on every platform (wrapping uint64 arithmetic, no Python `hash`), vectorised with
numpy so a 4,000-character text costs about a millisecond, and free of any vocabulary file: the
trained model is a weight per bucket. Character n-grams (1-5) catch obfuscated spellings and Korean
morphology without a tokenizer; word uni- and bigrams carry the phrases.
"""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np

BITS = 18
DIM = 1 << BITS
MAX_CHARS = 4000  # a longer text is scored by its start and its end (see `clip`)
CHAR_N = (1, 2, 3, 4, 5)
_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"\w+")


def clip(text: str) -> str:
    """Lower-cased, spaces collapsed, at most MAX_CHARS (the head and the tail of a long text:
    an injection hides at either end of a document more often than in the middle)."""
    text = " ".join(text.lower().split())
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + " " + text[-half:]


def _char_buckets(text: str) -> np.ndarray:
    codes = np.frombuffer(f" {text} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    out = []
    with np.errstate(over="ignore"):
        h = np.zeros(len(codes), dtype=np.uint64)
        for n in range(1, max(CHAR_N) + 1):
            # h[i] = hash of codes[i : i + n], built from the (n-1)-gram hash at i
            h = h[: len(codes) - n + 1] * _PRIME + codes[n - 1 :]
            if n in CHAR_N:
                mixed = (h + np.uint64(n)) * _MIX
                out.append((mixed >> np.uint64(64 - BITS)).astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _word_buckets(text: str) -> np.ndarray:
    words = _WORD.findall(text)
    grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return np.fromiter(
        ((zlib.crc32(b"w:" + g.encode()) * 0x9E3779B1 >> 14) % DIM for g in grams),
        dtype=np.int64,
        count=len(grams),
    )


def counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket ids, log-scaled counts) of `text` after `clip`."""
    text = clip(text)
    buckets = np.concatenate([_char_buckets(text), _word_buckets(text)])
    ids, n = np.unique(buckets, return_counts=True)
    return ids, 1.0 + np.log(n.astype(np.float64))


def vector(text: str, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse tf-idf vector of `text` (ids, L2-normalised values)."""
    ids, tf = counts(text)
    val = tf * idf[ids]
    norm = float(np.sqrt(val @ val))
    return ids, val / norm if norm else val

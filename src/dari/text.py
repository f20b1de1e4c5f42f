"""Small text facts shared by ingestion and retrieval: language, token estimates, hashing."""

from __future__ import annotations

import hashlib
import re

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# Approximates the token count of a BPE tokenizer (Qwen, Llama): a common word is one token and
# long letter runs one per 8 letters, numbers one per 3 digits, other symbols one each, and
# Hangul two tokens per three syllables (measured on docs/ko against Qwen2.5: 1.31 tokens per
# two-syllable unit).
_TOKEN = re.compile(r"[A-Za-z]{1,8}|\d{1,3}|[^\s\w]|(?![\uac00-\ud7a3])\w", re.UNICODE)
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")


def detect_lang(text: str) -> str:
    """'ko' when Hangul makes up at least a fifth of the letters, else 'en'."""
    sample = text[:20000]
    letters = len(_LETTER.findall(sample))
    if letters == 0:
        return "en"
    return "ko" if len(_HANGUL.findall(sample)) / letters >= 0.2 else "en"


def estimate_tokens(text: str) -> int:
    syllables = len(_HANGUL_SYLLABLE.findall(text))
    return len(_TOKEN.findall(text)) + (2 * syllables + 2) // 3


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def heading_below_title(title: str, heading: str) -> str:
    """A heading path without the document title it usually starts with ("Guide > Install" under
    the title "Guide" → "Install"), so the two are not shown twice."""
    return heading.removeprefix(title).removeprefix(" > ") if title else heading

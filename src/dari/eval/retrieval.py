"""`dari eval retrieval`: run an eval set's queries through several retrieval configurations
side by side, over one throw-away collection that is cached between runs by the corpus hash."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dari.app import Dari
from dari.config import RetrievalSettings, Settings
from dari.errors import InputError
from dari.eval.datasets import EvalSet
from dari.eval.metrics import answer_in, ranking_metrics
from dari.index.analyzer import Analyzer, SimpleAnalyzer
from dari.index.bm25 import TantivyIndex
from dari.ingest.ingestor import Progress
from dari.retrieve.ltr import features
from dari.types import FileStatus

# What each base configuration changes in the retrieval settings; `hybrid` is dari as configured.
BASES: dict[str, dict[str, Any]] = {
    "bm25": {"dense_weight": 0.0},
    "bm25-ws": {"dense_weight": 0.0},  # BM25 on words split at spaces: no morphemes, no stems
    "dense": {"bm25_weight": 0.0},
    "hybrid": {},
}
DEFAULT_CONFIGS = "bm25,dense,hybrid"
DEPTH = 20  # documents ranked per query: enough for recall@20
CANDIDATES = 100  # per retriever before fusion, so that 20 distinct documents come back


@dataclass(frozen=True)
class ConfigSpec:
    """`base[+reranker][:key=value]…`, e.g. `hybrid+mmr:dense_weight=0.5:rrf_k=20`."""

    label: str
    base: str
    overrides: dict[str, Any]


def parse_configs(text: str) -> list[ConfigSpec]:
    specs: list[ConfigSpec] = []
    fields = RetrievalSettings.model_fields
    for label in (part.strip() for part in text.split(",")):
        if not label:
            continue
        head, *pairs = label.split(":")
        base, _, reranker = head.partition("+")
        if base not in BASES:
            raise InputError(
                f"unknown retrieval configuration '{base}'",
                f"use one of: {', '.join(BASES)}, optionally +RERANKER and :key=value settings",
            )
        overrides: dict[str, Any] = dict(BASES[base])
        if reranker:
            overrides["reranker"] = reranker
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in fields:
                raise InputError(
                    f"bad setting '{pair}' in configuration '{label}'",
                    f"write key=value with a retrieval setting: {', '.join(fields)}",
                )
            overrides[key] = value
        try:  # validate now, not after the corpus is indexed
            RetrievalSettings(**overrides)
        except ValueError as exc:
            raise InputError(f"bad setting in configuration '{label}': {exc}", "") from exc
        specs.append(ConfigSpec(label, base, overrides))
    if not specs:
        raise InputError("no retrieval configuration given", f"e.g. --configs {DEFAULT_CONFIGS}")
    if len({s.label for s in specs}) != len(specs):
        raise InputError("a configuration is listed twice", "list each one once")
    return specs


class QueryProgress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self) -> None: ...


@dataclass
class ConfigResult:
    spec: ConfigSpec
    settings: dict[str, Any]
    ranked: dict[str, list[str]]  # query id → document ids, best first
    latency_ms: dict[str, float]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # name → qid → value
    answer_in_context: dict[str, bool] = field(default_factory=dict)  # QA sets with answers


@dataclass
class RetrievalRun:
    evalset: EvalSet
    collection: str
    documents: int
    chunks: int
    ingest_s: float
    settings: dict[str, Any]
    results: list[ConfigResult]


class RetrievalEval:
    """Evaluates retrieval configurations; indexes live under `<home>/eval`, apart from the
    user's collections."""

    def __init__(self, settings: Settings, dari: Dari | None = None) -> None:
        home = settings.home_dir / "eval"
        self._settings = settings.scratch(home)
        self._dari = dari or Dari(self._settings, models_home=settings.home_dir)
        self._prepared: dict[str, float] = {}  # collection → seconds its ingest took

    @property
    def fusion(self) -> str:
        return self._settings.retrieval.fusion

    def close(self) -> None:
        self._dari.close()

    def collection_for(self, evalset: EvalSet) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in evalset.name.lower())[:24].strip("-")
        c = self._settings.chunking  # in the name, so that chunking studies keep every index
        recipe = f"{c.chunk_tokens}x{c.chunk_overlap}x{c.section_tokens}"
        return f"{slug or 'set'}-{self._dari.embedder.name}-{evalset.fingerprint[:10]}-{recipe}"

    def prepare(self, evalset: EvalSet, progress: Progress | None = None) -> tuple[str, float]:
        """Index the corpus (a no-op when the same corpus is indexed with the same recipe)."""
        collection = self.collection_for(evalset)
        if collection in self._prepared:
            return collection, self._prepared[collection]
        size_mb = evalset.corpus.stat().st_size / 1e6
        ingest = self._settings.ingest.model_copy(
            update={"max_file_mb": max(self._settings.ingest.max_file_mb, size_mb + 1)}
        )
        self._dari.settings = self._settings.model_copy(update={"ingest": ingest})
        t = time.perf_counter()
        report = self._dari.ingest([evalset.corpus], collection, progress=progress)
        failed = [f for f in report.files if f.status is FileStatus.FAILED]
        if failed:
            raise InputError(
                f"the corpus of {evalset.name} could not be indexed: {failed[0].reason}",
                failed[0].hint or "fix the corpus file and run again",
            )
        self._prepared[collection] = time.perf_counter() - t
        return collection, self._prepared[collection]

    def run(
        self,
        evalset: EvalSet,
        specs: Sequence[ConfigSpec],
        ingest_progress: Progress | None = None,
        progress: QueryProgress | None = None,
    ) -> RetrievalRun:
        collection, ingest_s = self.prepare(evalset, ingest_progress)
        dari = self._dari
        id_of = dari.store.external_ids(collection)
        info = dari.store.collection(collection)
        results = []
        for spec in specs:
            rs = self._retrieval_settings(spec.overrides)
            if spec.base == "bm25-ws":
                simple = SimpleAnalyzer()
                bm25 = self._simple_bm25(collection, simple)
                retriever = dari.retriever(collection, rs, simple, bm25)
            else:
                retriever = dari.retriever(collection, rs)
            result = ConfigResult(spec, rs.model_dump(), {}, {})
            retriever.retrieve(evalset.queries[0].text)  # loads models and indexes: not timed
            if progress:
                progress.start(spec.label, len(evalset.queries))
            for q in evalset.queries:
                t = time.perf_counter()
                found = retriever.retrieve(q.text, k=DEPTH * 2)
                result.latency_ms[q.id] = (time.perf_counter() - t) * 1000
                docs = dict.fromkeys(id_of.get(h.source, h.source) for h in found.ranked)
                result.ranked[q.id] = list(docs)[:DEPTH]
                if q.answers:  # what the LLM would read: the top_k sources, windowed
                    context = retriever.retrieve(q.text).hits
                    result.answer_in_context[q.id] = answer_in(
                        "\n".join(h.text for h in context), q.answers
                    )
                if progress:
                    progress.advance()
            result.metrics = ranking_metrics(result.ranked, {q.id: q.gold for q in evalset.queries})
            results.append(result)
        settings = {
            "embedder": self._settings.embedder.name,
            "chunking": self._settings.chunking.model_dump(),
        }
        return RetrievalRun(
            evalset, collection, info.documents, info.chunks, ingest_s, settings, results
        )

    def training_groups(
        self, evalset: EvalSet, progress: QueryProgress | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For a learned reranker: each query's first-stage candidates (hybrid, as configured,
        to the eval depth) as feature rows, labelled with the relevance of their document."""
        collection, _ = self.prepare(evalset)
        dari = self._dari
        id_of = dari.store.external_ids(collection)
        retriever = dari.retriever(collection, self._retrieval_settings({"reranker": "none"}))
        groups = []
        if progress:
            progress.start("features", len(evalset.queries))
        for q in evalset.queries:
            pool = retriever.retrieve(q.text, k=DEPTH * 2).ranked
            labels = np.array([q.gold.get(id_of.get(h.source, h.source), 0) for h in pool])
            groups.append((features(dari.analyzer.terms(q.text), pool, dari.analyzer), labels))
            if progress:
                progress.advance()
        return groups

    def _retrieval_settings(self, overrides: dict[str, Any]) -> RetrievalSettings:
        """The configured retrieval settings with these changes, retrieving at least CANDIDATES
        per retriever (validated, since overrides come as text)."""
        base = self._settings.retrieval
        candidates = max(base.candidates, CANDIDATES)
        return RetrievalSettings(**{**base.model_dump(), "candidates": candidates, **overrides})

    def _simple_bm25(self, collection: str, analyzer: Analyzer) -> TantivyIndex:
        """A BM25 index of the collection with plain word analysis, rebuilt when the collection
        changed since it was built."""
        dari = self._dari
        folder = dari.collection_folder(collection) / "bm25-simple"
        stamp = folder / "generation.json"
        generation = dari.store.generation(collection)
        if stamp.exists() and json.loads(stamp.read_text()).get("generation") == generation:
            return TantivyIndex(folder, analyzer)
        shutil.rmtree(folder, ignore_errors=True)
        index = TantivyIndex(folder, analyzer)
        index.add(dari.store.chunks_for_docs(dari.store.ready_doc_ids(collection)))
        index.commit()
        index.close()
        stamp.write_text(json.dumps({"generation": generation}))
        return index

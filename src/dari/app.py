"""`Dari`: the Python API. The CLI (and later the server) are thin layers over this object."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dari.cache.answers import AnswerCache
from dari.cache.hook import PipelineCache
from dari.cache.meaning import MeaningParser
from dari.cache.store import CacheStore, open_postgres
from dari.config import RetrievalSettings, Settings
from dari.errors import (
    BackendError,
    ConfigError,
    DariError,
    InputError,
    StoreError,
    UnknownCollection,
)
from dari.feedback.store import Feedback, FeedbackStore
from dari.generate import models
from dari.guards.audit import Audit, AuditLog, StoreAuditLog
from dari.guards.chain import StageResult
from dari.guards.factory import GuardSet
from dari.index.analyzer import Analyzer
from dari.index.bm25 import SchemaChanged, TantivyIndex
from dari.index.embedders import QueryMemo, make_embedder
from dari.index.store import Store
from dari.index.vectors import NumpyVectorIndex
from dari.ingest.ingestor import Ingestor, Progress
from dari.ingest.splitter import ParentChildSplitter
from dari.pipeline import OnToken, Pipeline
from dari.prompts.registry import PromptRegistry
from dari.protocols import Embedder, Generator, Reranker, TextIndex, VectorIndex
from dari.retrieve.cross_encoder import CrossEncoderReranker
from dari.retrieve.hybrid import HybridRetriever
from dari.retrieve.llm_rerank import LLMReranker
from dari.retrieve.ltr import LTRReranker
from dari.retrieve.rerank import MMRReranker
from dari.retrieve.transform import QueryTransformer
from dari.types import Answer, GenerationParams, IngestReport, Stage

if TYPE_CHECKING:
    from dari.cache.redis_store import RedisCacheStore

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelChoice:
    """Which model the LLM backend serves, and why: llm.model set explicitly (dari.toml,
    DARI_LLM__MODEL, a --model flag) wins over `dari models use`, which wins over the default."""

    model: str
    source: Literal["setting", "models use", "default"]


def check_collection_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"invalid collection name '{name}'",
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


class Dari:
    """Everything under one DARI_HOME: collections, their indexes, the embedder and the LLM."""

    def __init__(self, settings: Settings, models_home: Path | None = None) -> None:
        """`models_home`: where models/ and the KV cache live, when not under DARI_HOME (an
        eval's separate store still uses the user's models)."""
        self.settings = settings
        self.home = settings.home_dir
        self._models_home = models_home or self.home
        self.analyzer = Analyzer()
        self._bm25: dict[str, TextIndex] = {}
        self._bm25_generation: dict[str, int] = {}  # generation each BM25 index was synced to
        self._vectors: dict[str, tuple[int, VectorIndex]] = {}
        self._served_names: dict[str, str] = {}

    # -- components, created on first use -------------------------------------------------
    @cached_property
    def store(self) -> Store:
        s = self.settings.store
        if s.backend == "postgres":
            from dari.db.postgres import PostgresDatabase

            return Store(PostgresDatabase(s.postgres_url, s.pool_size, s.connect_timeout_s))
        return Store(self.home / "dari.db")

    @cached_property
    def prompts(self) -> PromptRegistry:
        llm = self.settings.llm
        return PromptRegistry(self.store, llm.prompt, llm.pin_prompt)

    @cached_property
    def cache(self) -> AnswerCache:
        parser = MeaningParser(self.analyzer)
        c = self.settings.cache
        store: CacheStore | RedisCacheStore
        if c.backend == "redis":
            if not c.redis_url:
                raise ConfigError(
                    "cache.backend = 'redis' but cache.redis_url is empty",
                    "set cache.redis_url (DARI_CACHE__REDIS_URL), e.g. redis://127.0.0.1:6379/1",
                )
            from dari.cache.redis_store import RedisCacheStore

            store = RedisCacheStore(c.redis_url, c.redis_prefix)
        elif c.backend == "postgres":
            s = self.settings.store
            url = c.postgres_url or s.postgres_url
            if not url:
                raise ConfigError(
                    "cache.backend = 'postgres' but neither cache.postgres_url nor "
                    "store.postgres_url is set",
                    "set store.postgres_url (DARI_STORE__POSTGRES_URL), e.g. "
                    "postgresql://dari:secret@127.0.0.1:5432/dari",
                )
            store = open_postgres(url, min(s.pool_size, 4), s.connect_timeout_s)
        else:
            store = CacheStore(self.cache_path)
        return AnswerCache(store, self.settings.cache, parser, self.store.existing_chunks)

    @property
    def cache_path(self) -> Path:
        path = self.settings.cache.path
        return Path(path).expanduser() if path else self.home / "cache" / "answers.db"

    @cached_property
    def feedback_store(self) -> FeedbackStore:
        return FeedbackStore(self.store)

    @cached_property
    def embedder(self) -> Embedder:
        return QueryMemo(make_embedder(self.settings.embedder))

    @cached_property
    def guards(self) -> GuardSet:
        return GuardSet(
            self.settings.guards, self.analyzer, self.embedder, judge=lambda: self.judge_generator
        )

    @property
    def judge_generator(self) -> Generator:
        """The LLM behind guards.judge: its own OpenAI-compatible endpoint when one is set,
        else the answering model (under the server's lock, as answers are)."""
        return self._remote_judge if self.settings.guards.judge.base_url else self.generator

    @cached_property
    def _remote_judge(self) -> Generator:
        judge = self.settings.guards.judge
        from dari.generate.openai_compat import OpenAICompatGenerator

        llm = self.settings.llm.model_copy(
            update={
                "backend": "openai",
                "base_url": judge.base_url,
                "model": judge.model or self.settings.llm.model,
                "api_key": judge.api_key,
            }
        )
        return OpenAICompatGenerator(llm)

    @cached_property
    def audit(self) -> Audit:
        """The guard verdicts' chained log: a file under DARI_HOME, or the shared store's table
        when the store is PostgreSQL (one chain for all replicas)."""
        if self.settings.store.backend == "postgres":
            return StoreAuditLog(self.store)
        return AuditLog(self.home / "audit" / "audit.jsonl")

    @cached_property
    def generator(self) -> Generator:
        llm = self.settings.llm
        if llm.backend == "openai":
            from dari.generate.openai_compat import OpenAICompatGenerator

            return OpenAICompatGenerator(llm)
        from dari.generate.llama import LlamaCppGenerator

        model = self.model_choice.model
        served = models.served(model, self._models_dir)
        self._served_names[model] = served.name
        cache_dir = self._models_home / "cache" / "kv"
        return LlamaCppGenerator(
            served.path, llm, name=served.name, cache_dir=cache_dir, lora=served.lora
        )

    # -- which model is served ----------------------------------------------------------------
    @property
    def _models_dir(self) -> Path:
        return self._models_home / "models"

    @cached_property
    def _chosen_model(self) -> str | None:
        """The choice of `dari models use`, read once (a running server keeps its model)."""
        return models.chosen(self._models_dir)

    @property
    def model_choice(self) -> ModelChoice:
        llm = self.settings.llm
        if "model" in llm.model_fields_set:
            return ModelChoice(llm.model, "setting")
        if llm.backend == "llama" and self._chosen_model is not None:
            return ModelChoice(self._chosen_model, "models use")
        return ModelChoice(llm.model, "default")

    @property
    def model_name(self) -> str:
        """The name answers are traced and cached under: the model as set, or for a tune run
        its name and adapter hash (a tuned model never shares cache entries with its base)."""
        model = self.model_choice.model
        if self.settings.llm.backend != "llama":
            return model
        if model not in self._served_names:
            self._served_names[model] = models.served_name(model)
        return self._served_names[model]

    def use_model(self, model: str | None) -> models.Served | None:
        """Serve `model` (a name, a .gguf file or a tune run folder) from now on, for the CLI,
        the server and this object; None goes back to the default. A model that cannot be
        served raises and changes nothing. llm.model, when set explicitly, still wins."""
        served = models.choose(model, self._models_dir)
        for cached in ("_chosen_model", "generator"):
            self.__dict__.pop(cached, None)
        self._served_names.clear()
        return served

    @property
    def params(self) -> GenerationParams:
        s = self.settings.llm
        return GenerationParams(s.temperature, s.top_p, s.max_tokens, s.seed)

    def collection_folder(self, collection: str) -> Path:
        """Where a collection's derived indexes live (BM25, vectors); SQLite holds the rest."""
        return self.home / "collections" / collection

    def bm25(self, collection: str) -> TextIndex:
        if self.settings.store.fulltext == "postgres":
            return self._pg_fulltext(collection)
        index = self._bm25.get(collection)
        if index is None:
            folder = self.collection_folder(collection) / "bm25"
            try:
                index = TantivyIndex(folder, self.analyzer)
            except SchemaChanged:  # written by an older dari: rebuild it from SQLite
                shutil.rmtree(folder)
                index = TantivyIndex(folder, self.analyzer)
                index.add(self.store.chunks_for_docs(self.store.ready_doc_ids(collection)))
                index.commit()
                index.close()
            self._bm25[collection] = index
        if self.settings.store.backend == "postgres":  # other processes write the store too
            assert isinstance(index, TantivyIndex)
            self._sync_bm25(collection, index)
        return index

    def _pg_fulltext(self, collection: str) -> TextIndex:
        """BM25 in the store's PostgreSQL: one index for every process, nothing to sync. Built
        from the store the first time a process finds a collection with none (after
        `dari migrate`, or when switching from tantivy)."""
        index = self._bm25.get(collection)
        if index is None:
            from dari.index.pg_fulltext import PostgresTextIndex

            pg = PostgresTextIndex(self.store.db, collection, self.analyzer, self.store)
            pg.build_if_missing()
            self._bm25[collection] = index = pg
        return index

    def _sync_bm25(self, collection: str, index: TantivyIndex) -> None:
        """Bring this process's BM25 index in step with the shared store when its generation
        moved (one cheap query per call otherwise)."""
        try:
            generation = self.store.generation(collection)
        except UnknownCollection:  # its first ingest: nothing to catch up with
            return
        if self._bm25_generation.get(collection) != generation:
            from dari.index.bm25_sync import sync

            folder = self.collection_folder(collection) / "bm25"
            self._bm25_generation[collection] = sync(index, self.store, collection, folder)

    def vectors(self, collection: str) -> VectorIndex:
        generation = self.store.generation(collection)
        cached = self._vectors.get(collection)
        if cached is None or cached[0] != generation:
            folder = self.collection_folder(collection)
            index: VectorIndex
            if self.settings.vectors.backend == "qdrant":
                from dari.index.qdrant import QdrantVectorIndex

                v = self.settings.vectors
                where = v.url or str(self.home / "qdrant")
                stamp = folder / "qdrant.json"
                index = QdrantVectorIndex.open(
                    self.qdrant, self.store, collection, v.prefix, stamp, generation, where
                )
            elif self.settings.vectors.backend == "pgvector":
                from dari.index.pgvector import PgVectorIndex

                stamp, prefix = folder / "pgvector.json", self.settings.vectors.prefix
                index = PgVectorIndex.open(
                    self.pgvector_pool,
                    self.store,
                    collection,
                    prefix,
                    stamp,
                    generation,
                    self.settings.vectors.build_memory_mb,
                    self.settings.vectors.ef_search,
                )
            else:
                index = NumpyVectorIndex.open(self.store, collection, folder, generation)
            self._vectors[collection] = (generation, index)
        return self._vectors[collection][1]

    @cached_property
    def qdrant(self) -> Any:
        """One Qdrant client for all collections (local mode locks its folder per process)."""
        from dari.index.qdrant import connect

        v = self.settings.vectors
        return connect(v.url, v.api_key.get_secret_value(), self.home / "qdrant", v.timeout_s)

    @cached_property
    def pgvector_pool(self) -> Any:
        """One connection pool for all collections' vectors: vectors.url, else the store's."""
        from dari.index.pgvector import connect

        s, url = self.settings.store, self.settings.vectors.url
        return connect(url or s.postgres_url, s.pool_size, s.connect_timeout_s)

    def _check_embedder(self, collection: str) -> None:
        used = self.store.embedder_of(collection)  # raises UnknownCollection
        if used != self.embedder.name:
            raise ConfigError(
                f"collection '{collection}' was embedded with '{used}', "
                f"but embedder '{self.embedder.name}' is configured",
                f"set embedder.name back, or delete and re-ingest: dari collections delete "
                f"{collection}",
            )

    # -- the jobs ----------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path],
        collection: str,
        acl: Sequence[str] = (),
        prune: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        check_collection_name(collection)
        if collection in self.store.collection_names():
            self._check_embedder(collection)
        splitter = ParentChildSplitter(self.settings.chunking, self.analyzer)
        ingestor = Ingestor(
            self.settings,
            self.store,
            self.bm25(collection),
            self.embedder,
            splitter,
            self.guards.tag_section if self.settings.guards.enabled else None,
        )
        try:
            report = ingestor.run(paths, collection, tuple(sorted(set(acl))), prune, progress)
        finally:
            self.bm25(collection).close()
        self.vectors(collection)  # rebuild now so the first question is fast
        self.invalidate_cache(collection)
        return report

    def invalidate_cache(self, collection: str) -> None:
        """Cached answers citing chunks that changed or went die (after an ingest or a removal).
        A cache that is down is logged and left: serving re-checks the cited chunks anyway."""
        c = self.settings.cache
        if c.enabled and (c.backend != "sqlite" or self.cache_path.exists()):
            try:
                self.cache.invalidate(collection)
            except (BackendError, StoreError) as exc:
                log.warning("answer cache of %s not invalidated: %s", collection, exc)

    @property
    def uploads_dir(self) -> Path:
        """Where the server keeps uploaded files: server.uploads_dir, else DARI_HOME/uploads.
        Replicas with homes of their own share one (a shared volume) so that every replica sees
        the same files under the same paths."""
        folder = self.settings.server.uploads_dir
        return Path(folder).expanduser() if folder else self.home / "uploads"

    def retriever(
        self,
        collection: str,
        settings: RetrievalSettings | None = None,
        analyzer: Analyzer | None = None,
        bm25: TextIndex | None = None,
    ) -> HybridRetriever:
        """The retriever of a collection; the arguments override the configured settings, the
        analyzer and the BM25 index (evals compare configurations this way)."""
        self._check_embedder(collection)
        rs = settings or self.settings.retrieval
        return HybridRetriever(
            rs,
            self.store,
            bm25 or self.bm25(collection),
            lambda: self.vectors(collection),
            self.embedder,
            analyzer or self.analyzer,
            self._reranker(collection, rs),
            None
            if rs.query_transform == "none"
            else QueryTransformer(
                rs.query_transform, lambda: self.generator, seed=self.settings.llm.seed
            ),
        )

    def _reranker(self, collection: str, rs: RetrievalSettings) -> Reranker | None:
        if rs.reranker == "mmr":
            return MMRReranker(lambda: self.vectors(collection), rs.mmr_lambda)
        if rs.reranker == "ltr":
            return LTRReranker(self.analyzer, rs.ltr_model, rs.fusion)
        if rs.reranker == "cross-encoder":
            return CrossEncoderReranker(rs.cross_encoder_model)
        if rs.reranker == "llm":
            return LLMReranker(
                lambda: self.generator, rs.llm_rerank_window, seed=self.settings.llm.seed
            )
        return None

    def pipeline(self, collection: str) -> Pipeline:
        retriever = self.retriever(collection)
        model_name = self.model_name
        self.prompts.check()  # fails early on an unknown prompt
        return Pipeline(
            collection,
            retriever,
            lambda: self.generator,
            self.store,
            self.params,
            model_name,
            self.prompts,
            self.guards.chain(collection) if self.settings.guards.enabled else None,
            self.audit if self.settings.guards.audit else None,
            self.guards.embed_query,
            self._pipeline_cache(collection) if self.settings.cache.enabled else None,
        )

    def index_version(self, collection: str) -> str:
        """What the answer cache keys a collection's answers by besides the question: the
        configuration that shapes retrieval (and, with invalidate = "any-change", every write)."""
        s = self.settings
        shape: list[object] = [s.embedder.name, s.chunking.model_dump(), s.retrieval.model_dump()]
        if s.cache.invalidate == "any-change":
            shape.append(self.store.generation(collection))
        raw = json.dumps(shape, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def _pipeline_cache(self, collection: str) -> PipelineCache:
        return PipelineCache(
            lambda: self.cache,  # opened at the first lookup; a server down is a bypass
            collection,
            self.index_version(collection),
            self.model_name,
            self.params,
            self.guards.embed_query,
            self.settings.guards.enabled,
        )

    def feedback(
        self,
        trace_id: str,
        thumb: str | None = None,
        rating: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
        approve: bool = False,
    ) -> Feedback:
        """Record feedback on an answer; the answer cache promotes what was liked or approved
        and evicts what was disliked or corrected."""
        fb = self.feedback_store.add(trace_id, thumb, rating, comment, correction, approve)
        if self.settings.cache.enabled:
            try:
                self._cache_follows(fb)
            except (BackendError, StoreError) as exc:  # the feedback is kept; the cache is not
                log.warning("answer cache did not follow feedback on %s: %s", trace_id, exc)
        return fb

    def _cache_follows(self, fb: Feedback) -> None:
        body = self.store.trace(fb.trace_id) or {}
        use = body.get("cache") or {}
        ids = [e.id for e in self.cache.store.by_trace(fb.trace_id)]
        if isinstance(use, dict) and use.get("lookup") in ("exact", "semantic"):
            ids.append(str(use["entry"]))  # the trace was served from this entry
        if fb.negative:
            self.cache.store.delete(ids)
        elif fb.positive:
            approved = [i for i in ids if self.cache.store.approve(i)]
            if not approved and fb.approved:  # an operator approves an answer not yet cached
                self.cache.adopt(body, self.store.source_rows, self.guards.embed_query)

    def ask(
        self,
        question: str,
        collection: str,
        top_k: int | None = None,
        acl: Sequence[str] | None = None,
        on_token: OnToken | None = None,
        history: Sequence[tuple[str, str]] = (),
        filters: Mapping[str, str] | None = None,
        schema: Mapping[str, object] | None = None,
        prompt_key: str = "",
        tenant: str = "",
        caller: str = "",
    ) -> Answer:
        """`prompt_key`: who asks (a user or session id), to keep them in one A/B prompt arm;
        `tenant` (with `acl`) scopes the answer cache."""
        return self.pipeline(collection).ask(
            question, top_k, acl, on_token, history, filters, schema, prompt_key, tenant, caller
        )

    def check(
        self, text: str, stage: Stage = Stage.INPUT, collection: str = "", question: str = ""
    ) -> StageResult:
        """Run one stage of the guards on `text` under the configured policy (`dari guard
        check`). For the output stage, `question` is what the answer replies to."""
        from dari.guards.base import GuardContext
        from dari.text import detect_lang

        lang = detect_lang(question or text)
        ctx = GuardContext(
            question=question if stage == Stage.OUTPUT else text,
            lang=lang,
            system_prompt=self.prompts.template(lang, question or text).system,
            embed_query=self.guards.embed_query,
        )
        return self.guards.chain(collection).run(stage, text, ctx)

    def clear_cache(self, collection: str = "", expired: bool = False, stale: bool = False) -> int:
        """Remove answer-cache entries: all (of one collection), the expired ones, or the stale
        ones (citing chunks that re-ingest changed or removed). Returns how many went."""
        if stale:
            names = [collection] if collection else self.store.collection_names()
            return sum(self.cache.invalidate(c) for c in names)
        return self.cache.store.delete_where(collection, time.time() if expired else None)

    def delete_collection(self, collection: str) -> None:
        self.store.delete_collection(collection)
        if self.settings.cache.enabled:
            self.cache.store.delete_where(collection=collection)
        self._bm25.pop(collection, None)
        self._bm25_generation.pop(collection, None)
        self._vectors.pop(collection, None)
        if self.settings.vectors.backend == "qdrant":
            from dari.index.qdrant import drop

            drop(self.qdrant, self.settings.vectors.prefix + collection)
        elif self.settings.vectors.backend == "pgvector":
            from dari.index import pgvector

            pgvector.drop(self.pgvector_pool, self.settings.vectors.prefix + collection)
        shutil.rmtree(self.collection_folder(collection), ignore_errors=True)

    def status(self) -> dict[str, Any]:
        collections = []
        for name in self.store.collection_names():
            info = self.store.collection(name)
            folder = self.collection_folder(name)
            size = (
                sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                if folder.exists()
                else 0
            )
            collections.append(
                {
                    "name": name,
                    "files": info.files,
                    "documents": info.documents,
                    "chunks": info.chunks,
                    "embedder": info.embedder,
                    "index_bytes": size,
                }
            )
        return {
            "home": str(self.home),
            "store": self.store.db.where,
            "store_bytes": sum(self.store.sizes().values()),
            "vectors": self.settings.vectors.backend,
            "collections": collections,
            "embedder": self.settings.embedder.name,
            "llm": self.model_status(),
        }

    def model_status(self) -> dict[str, Any]:
        """The served model: `model` as chosen, `source` (setting, models use, default),
        `served` (the name answers are cached under), `file`, and `error` when it cannot be
        served."""
        llm = self.settings.llm
        out: dict[str, Any] = {"backend": llm.backend, "base_url": llm.base_url, "file": ""}
        out |= {"model": llm.model, "source": "default", "served": llm.model, "error": ""}
        try:
            choice = self.model_choice
            out |= {"model": choice.model, "source": choice.source}
            out["served"] = self.model_name
        except DariError as exc:
            out["error"] = str(exc)
            return out
        if llm.backend != "llama":
            return out
        spec = models.MODELS.get(choice.model)
        if spec is not None:
            ok = models.installed(spec, self._models_dir)
            out["file"] = spec.title if ok else f"{spec.title} (not installed)"
            return out
        try:  # a file or a tune run: only checked, nothing is assembled
            served = models.served(choice.model, self._models_dir)
        except DariError as exc:
            out["error"] = str(exc)
            return out
        if served.lora is not None:
            out["file"] = f"LoRA {served.lora.name} on {served.path.name}"
        elif served.name != choice.model:
            out["file"] = served.path.name  # a tune run's merged model
        return out

    def close(self) -> None:
        for index in self._bm25.values():
            index.close()
        if "qdrant" in self.__dict__:
            self.qdrant.close()  # local mode: releases its folder
        if "pgvector_pool" in self.__dict__:
            self.pgvector_pool.close()
        if "cache" in self.__dict__:
            self.cache.store.close()
        if "store" in self.__dict__:
            self.store.close()

"""The answer cache as one collection's pipeline sees it: a lookup before retrieval, a write after
the answer, each recorded in the trace as a `CacheUse`."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dari.cache.answers import AnswerCache, Lookup, uncacheable
from dari.cache.key import Scope, make_scope
from dari.errors import BackendError, StoreError
from dari.types import Answer, CacheUse, GenerationParams

log = logging.getLogger(__name__)
# What a cache that fails raises (its SQLite file, its server): a miss or a skipped write, never
# a failed question.
CACHE_FAILURES = (sqlite3.Error, OSError, BackendError, StoreError)


@dataclasses.dataclass(frozen=True)
class CacheRequest:
    """One question's way through the cache: its scope, and why it bypasses the cache if so."""

    scope: Scope
    question: str
    bypass: str = ""


class PipelineCache:
    def __init__(
        self,
        cache: Callable[[], AnswerCache],
        collection: str,
        index_version: str,
        model: str,
        params: GenerationParams,
        embed_query: Callable[[str], np.ndarray] | None,
        guards_on: bool,
    ) -> None:
        self._cache = cache  # opened on first use: a cache server down is a bypass, said why
        self._collection = collection
        self._index_version = index_version
        self._model = model
        self._params = params
        self._embed = embed_query
        self._guards_on = guards_on

    def request(
        self,
        question: str,
        lang: str,
        prompt_version: str,
        acl: Sequence[str] | None,
        tenant: str,
        filters: Mapping[str, str] | None,
        schema: Mapping[str, object] | None,
        top_k: int | None = None,
        bypass: str = "",
    ) -> CacheRequest:
        scope = make_scope(
            self._collection,
            self._index_version,
            prompt_version,
            self._model,
            self._params,
            lang,
            acl,
            tenant,
            filters,
            schema,
            top_k,
        )
        return CacheRequest(scope, question, bypass)

    def lookup(self, req: CacheRequest) -> tuple[Lookup, CacheUse]:
        """Never raises for the cache's sake: a cache that fails is a miss, said in the trace."""
        try:
            return self._lookup(req)
        except CACHE_FAILURES as exc:
            log.warning("answer cache lookup failed: %s", exc)
            use = CacheUse("bypass", reason=f"the cache failed: {exc}", scope=req.scope.key)
            return Lookup(None), use

    def _lookup(self, req: CacheRequest) -> tuple[Lookup, CacheUse]:
        if req.bypass:
            return Lookup(None), CacheUse("bypass", reason=req.bypass, scope=req.scope.key)
        vec = None
        cache = self._cache()
        if cache.settings.semantic and self._embed is not None:
            vec = self._embed(req.question)  # memoised: dense retrieval reuses it on a miss
        found = cache.lookup(req.scope, req.question, vec)
        if found.entry is None:
            use = CacheUse(
                "miss",
                entry=found.candidate,
                similarity=round(found.similarity, 4),
                refused_by=found.refused_by,
                scope=req.scope.key,
            )
            return found, use
        use = CacheUse(
            found.kind,
            entry=found.entry.id,
            similarity=round(found.similarity, 4),
            created_by=found.entry.trace_id,
            scope=req.scope.key,
        )
        return found, use

    def store(self, req: CacheRequest, answer: Answer, use: CacheUse, history: bool) -> CacheUse:
        """Write a clean answer; returns the trace's record of what happened."""
        if use.lookup != "miss":
            return use
        why = uncacheable(answer, self._guards_on, history)
        if why:
            return dataclasses.replace(use, reason=why)
        vec = self._embed(req.question) if self._embed is not None else None
        try:
            entry = self._cache().put(req.scope, req.question, answer, vec)
        except CACHE_FAILURES as exc:
            log.warning("answer cache write failed: %s", exc)
            return dataclasses.replace(use, reason=f"the cache failed: {exc}")
        return dataclasses.replace(use, stored=True, entry=entry)

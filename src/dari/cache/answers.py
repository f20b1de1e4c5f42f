"""The answer cache as the pipeline uses it: look up before retrieval, store after a clean answer,
react to feedback, and drop entries whose sources changed.

A semantic neighbour is served only when it is similar enough *and* no meaning check refuses it
(`dari.cache.meaning`): the threshold and the checks were tuned together on labelled paraphrase
pairs (bench/cache.py), not by hand.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dari.cache.key import Scope, normalise
from dari.cache.meaning import Meaning, MeaningParser, differs
from dari.cache.store import NEVER, CacheStore, Entry, new_id

if TYPE_CHECKING:
    from dari.cache.redis_store import RedisCacheStore
from dari.config import CacheSettings
from dari.types import Answer, Citation, Outcome, Stage

Alive = Callable[[Sequence[str]], set[str]]  # which of these chunk ids still exist


@dataclass(frozen=True)
class Lookup:
    """What the cache said about one question."""

    entry: Entry | None
    kind: str = ""  # "exact" or "semantic" when served, "" on a miss
    similarity: float = 0.0  # of the nearest neighbour looked at
    refused_by: str = ""  # the check that refused the nearest neighbour, or "similarity"
    candidate: str = ""  # that neighbour's id, for `dari cache inspect`


def judge(similarity: float, cached: Meaning, new: Meaning, settings: CacheSettings) -> str:
    """Why a cached answer to one question may not be served for another, or "" if it may."""
    if similarity < settings.threshold(new.lang):
        return "similarity"
    return differs(cached, new, settings.max_unmatched)


def uncacheable(answer: Answer, guards_on: bool, history: bool) -> str:
    """Why an answer may not be stored, or "": only clean, grounded, cited answers are."""
    if history:
        return "a follow-up in a conversation depends on earlier turns"
    if answer.outcome != Outcome.ANSWERED or not answer.citations:
        return (
            f"the outcome is {answer.outcome.value}"
            if answer.outcome != Outcome.ANSWERED
            else ("the answer cites no source")
        )
    if not guards_on:
        return "the guards are off, so the answer was not checked"
    flagged = [v for v in answer.trace.verdicts if v.flagged]
    if flagged:
        return f"the {flagged[0].guard} guard flagged it"
    checked = {v.guard for v in answer.trace.verdicts if v.stage == Stage.OUTPUT}
    if "groundedness" not in checked:
        return "its groundedness was not checked"
    return ""


class AnswerCache:
    """Lookup, write policy, feedback and invalidation over a `CacheStore`."""

    def __init__(
        self,
        store: CacheStore | RedisCacheStore,
        settings: CacheSettings,
        parser: MeaningParser,
        alive: Alive,
    ) -> None:
        self.store = store
        self.settings = settings
        self._parser = parser
        self._alive = alive

    def lookup(self, scope: Scope, question: str, vec: np.ndarray | None) -> Lookup:
        """An exact match first, then the nearest semantic neighbours that pass every check.
        An entry citing a chunk that no longer exists dies here, before it can be served."""
        now = time.time()
        self.store.count("lookups")
        entry = self.store.exact(scope.key, normalise(question), now)
        if entry is not None and self._fresh(entry):
            return self._served(entry, "exact", 1.0)
        if not self.settings.semantic or vec is None:
            return Lookup(None)
        new = self._parser.parse(question)
        first = Lookup(None)
        floor = min(
            self.settings.threshold(new.lang), 0.8
        )  # look a little below, to report refusals
        for entry_id, sim, cached in self.store.nearest(scope.key, vec, floor):
            why = judge(sim, cached, new, self.settings)
            if not why:
                found = self.store.get(entry_id)
                if found is not None and found.expires > now and self._fresh(found):
                    return self._served(found, "semantic", sim)
                continue
            if not first.refused_by:
                first = Lookup(None, "", sim, why, entry_id)
        if first.refused_by:
            self.store.count(f"refused.{first.refused_by}")
        return first

    def _fresh(self, entry: Entry) -> bool:
        chunks = entry.chunk_ids
        if set(chunks) <= self._alive(chunks):
            return True
        self.store.delete([entry.id])
        self.store.count("invalidated")
        return False

    def _served(self, entry: Entry, kind: str, sim: float) -> Lookup:
        self.store.touch(entry.id, time.time(), entry.tokens)
        self.store.count(f"hits.{kind}")
        return Lookup(entry, kind, sim)

    def put(self, scope: Scope, question: str, answer: Answer, vec: np.ndarray | None) -> str:
        """Store an answer (the caller has checked `uncacheable`); returns the entry id."""
        trace = answer.trace
        cites = tuple(dataclasses.asdict(c) for c in answer.citations)
        tokens = trace.prompt_tokens + trace.completion_tokens
        return self._put(
            scope.key,
            scope.collection,
            scope.lang,
            question,
            answer.text,
            cites,
            trace.id,
            tokens,
            vec,
            approved=False,
        )

    def adopt(
        self,
        trace: dict[str, Any],
        sources: Callable[[Sequence[str]], dict[str, Any]],
        embed: Callable[[str], np.ndarray] | None,
    ) -> str:
        """An operator approved an answer that was not cached (a guard had warned, say): store it
        from its trace, approved. Returns the entry id, or "" when the trace cannot be."""
        use, cites = trace.get("cache") or {}, trace.get("citations") or []
        if trace.get("outcome") != "answered" or not use.get("scope") or not cites:
            return ""
        rows = sources([str(c["chunk_id"]) for c in cites])
        if len(rows) < len({c["chunk_id"] for c in cites}):
            return ""  # a cited chunk changed since: nothing current to approve
        full = tuple(
            {**c, "snippet": " ".join(rows[c["chunk_id"]].section_text.split())[:240]}
            for c in cites
        )
        question = str(trace["query"])
        lang = self._parser.parse(question).lang
        tokens = int(trace.get("prompt_tokens", 0)) + int(trace.get("completion_tokens", 0))
        vec = embed(question) if embed is not None else None
        return self._put(
            str(use["scope"]),
            str(trace["collection"]),
            lang,
            question,
            str(trace["answer"]),
            full,
            str(trace["id"]),
            tokens,
            vec,
            approved=True,
        )

    def _put(
        self,
        scope: str,
        collection: str,
        lang: str,
        question: str,
        text: str,
        citations: tuple[dict[str, Any], ...],
        trace_id: str,
        tokens: int,
        vec: np.ndarray | None,
        approved: bool,
    ) -> str:
        now = time.time()
        entry = Entry(
            id=new_id(),
            scope=scope,
            collection=collection,
            question=question,
            lang=lang,
            answer=text,
            citations=citations,
            trace_id=trace_id,
            tokens=tokens,
            approved=approved,
            created=now,
            last_used=now,
            expires=NEVER if approved else now + self.settings.ttl_hours * 3600,
            hits=0,
        )
        meaning = self._parser.parse(question)
        return self.store.put(entry, normalise(question), meaning, vec, self.settings.max_entries)

    def invalidate(self, collection: str) -> int:
        """Drop the entries of a collection that cite a chunk re-ingest changed or removed."""
        dead = self.store.dead_entries(collection, self._alive)
        removed = self.store.delete(dead)
        if removed:
            self.store.count("invalidated", removed)
        return removed


def citations_of(entry: Entry) -> tuple[Citation, ...]:
    return tuple(Citation(**c) for c in entry.citations)  # type: ignore[arg-type]

"""One question, end to end: retrieve → abstain or prompt → generate → citations → trace."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

from dari.errors import InputError
from dari.generate.citations import process
from dari.generate.prompt import template_for
from dari.generate.streaming import CitationFilter
from dari.index.store import Store
from dari.protocols import Generator
from dari.retrieve.hybrid import HybridRetriever, Retrieval
from dari.text import detect_lang
from dari.types import Answer, Citation, GenerationParams, Hit, Outcome, Trace

OnToken = Callable[[str], None]
MAX_QUESTION_CHARS = 4000


class Pipeline:
    def __init__(
        self,
        collection: str,
        retriever: HybridRetriever,
        generator: Callable[[], Generator],
        store: Store,
        params: GenerationParams,
        model_name: str,
    ) -> None:
        self.collection = collection
        self._retriever = retriever
        self._generator = generator
        self._store = store
        self._params = params
        self._model_name = model_name

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        acl: Sequence[str] | None = None,
        on_token: OnToken | None = None,
        history: Sequence[tuple[str, str]] = (),
        filters: Mapping[str, str] | None = None,
    ) -> Answer:
        question = question.strip()
        if not question:
            raise InputError("the question is empty", 'ask something, e.g. dari ask "..."')
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                f"the question is {len(question)} characters long (limit {MAX_QUESTION_CHARS})",
                "shorten it; put long material into a document and ingest it",
            )
        started = time.perf_counter()
        retrieval = self._retriever.retrieve(question, top_k, acl, filters)
        if retrieval.abstain and history:  # a follow-up may need the previous question
            follow_up = f"{history[-1][0]} {question}"
            retrieval = self._retriever.retrieve(follow_up, top_k, acl, filters)
        timings = {f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()}
        timings["retrieve"] = (time.perf_counter() - started) * 1000
        template = template_for(detect_lang(question))
        if retrieval.abstain:
            if on_token:
                on_token(template.dont_know)
            return self._finish(
                question,
                template.dont_know,
                (),
                Outcome.ABSTAINED,
                retrieval,
                template.version,
                timings,
                started,
                0,
                0,
                0,
            )
        hits = retrieval.hits
        messages = template.messages(question, hits)
        if history:
            turns = [
                m
                for q, a in history[-2:]
                for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
            ]
            messages = messages[:-1] + turns + messages[-1:]
        t = time.perf_counter()
        generator = self._generator()
        timings["load_model"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        guard = CitationFilter(len(hits))
        pieces: list[str] = []
        first_token_ms = None
        fixed = 1 + 2 * len(template.demonstrations)  # system + demonstrations: cacheable
        for piece in generator.stream(messages, self._params, prefix=fixed):
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - t) * 1000
            shown = guard.feed(piece)
            pieces.append(shown)
            if on_token and shown:
                on_token(shown)
        tail = guard.flush()
        pieces.append(tail)
        if on_token and tail:
            on_token(tail)
        timings["generate"] = (time.perf_counter() - t) * 1000
        timings["first_token"] = first_token_ms or timings["generate"]
        raw = "".join(pieces).strip()
        if not raw or _is_dont_know(raw, template.dont_know):
            return self._finish(
                question,
                template.dont_know,
                (),
                Outcome.ABSTAINED,
                retrieval,
                template.version,
                timings,
                started,
                0,
                0,
                guard.invalid,
            )
        cited = process(raw, len(hits), hits)
        if cited.attached and on_token:
            on_token(f" [{cited.cited[0]}]")
        usage = getattr(generator, "last_usage", {}) or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0) or usage.get("context_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0)) or len(pieces)
        citations = tuple(_citation(n, hits[n - 1]) for n in sorted(cited.cited))
        return self._finish(
            question,
            cited.text,
            citations,
            Outcome.ANSWERED,
            retrieval,
            template.version,
            timings,
            started,
            prompt_tokens,
            completion_tokens,
            guard.invalid + cited.invalid,
        )

    def _finish(
        self,
        question: str,
        text: str,
        citations: tuple[Citation, ...],
        outcome: Outcome,
        retrieval: Retrieval,
        prompt_version: str,
        timings: dict[str, float],
        started: float,
        prompt_tokens: int,
        completion_tokens: int,
        invalid: int,
    ) -> Answer:
        timings["total"] = (time.perf_counter() - started) * 1000
        trace = Trace(
            id=uuid.uuid4().hex,
            query=question,
            collection=self.collection,
            outcome=outcome,
            hits=retrieval.hits,
            timings_ms=timings,
            model=self._model_name,
            prompt_version=prompt_version,
            params=self._params,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            invalid_citations=invalid,
        )
        body = dataclasses.asdict(trace)
        body["coverage"], body["dense_top"] = retrieval.coverage, retrieval.dense_top
        for hit in body["hits"]:
            hit.pop("text", None)  # the trace keeps ids and scores, not document text
        self._store.save_trace(trace.id, self.collection, body)
        return Answer(text=text, citations=citations, outcome=outcome, trace=trace)


def _citation(n: int, hit: Hit) -> Citation:
    snippet = " ".join(hit.text.split())
    return Citation(
        n=n,
        source=hit.source,
        title=hit.title,
        page=hit.page,
        heading=hit.heading,
        chunk_id=hit.chunk_id,
        snippet=snippet[:240],
    )


def _is_dont_know(text: str, dont_know: str) -> bool:
    core = dont_know.rstrip(".")
    return (
        text.startswith(core) or text.startswith("I don't know") or "답을 찾을 수 없" in text[:40]
    )

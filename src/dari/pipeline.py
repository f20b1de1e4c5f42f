"""One question, end to end: retrieve → abstain or prompt → generate → citations → trace."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

from dari.errors import InputError
from dari.generate.citations import process
from dari.generate.prompt import DEFAULT_VERSION, PromptTemplate, template_for
from dari.generate.streaming import CitationFilter
from dari.index.store import Store
from dari.protocols import Generator
from dari.retrieve.hybrid import HybridRetriever, Retrieval
from dari.text import detect_lang
from dari.types import Answer, Citation, GenerationParams, Hit, Outcome, Trace

OnToken = Callable[[str], None]
MAX_QUESTION_CHARS = 4000


@dataclasses.dataclass
class _Run:
    """What one question has gathered so far, on its way to an Answer."""

    question: str
    retrieval: Retrieval
    template: PromptTemplate
    started: float
    timings: dict[str, float]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    invalid: int = 0  # citation markers naming no given source, stripped


class Pipeline:
    def __init__(
        self,
        collection: str,
        retriever: HybridRetriever,
        generator: Callable[[], Generator],
        store: Store,
        params: GenerationParams,
        model_name: str,
        prompt_version: str = DEFAULT_VERSION,
    ) -> None:
        self.collection = collection
        self._prompt_version = prompt_version
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
        question = _checked(question)
        started = time.perf_counter()
        retrieval = self._retriever.retrieve(question, top_k, acl, filters)
        if retrieval.abstain and history:  # a follow-up may need the previous question
            follow_up = f"{history[-1][0]} {question}"
            retrieval = self._retriever.retrieve(follow_up, top_k, acl, filters)
        timings = {f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()}
        timings["retrieve"] = (time.perf_counter() - started) * 1000
        template = template_for(detect_lang(question), self._prompt_version)
        run = _Run(question, retrieval, template, started, timings)
        if retrieval.abstain:  # too little support: say so without asking the model
            if on_token:
                on_token(run.template.dont_know)
            return self._finish(run, run.template.dont_know, Outcome.ABSTAINED)

        raw = self._generate(run, history, on_token)
        if not raw or _is_dont_know(raw, run.template.dont_know):
            return self._finish(run, run.template.dont_know, Outcome.ABSTAINED)
        hits = retrieval.hits
        cited = process(raw, len(hits), hits)
        if cited.attached and on_token:
            on_token(f" [{cited.cited[0]}]")
        run.invalid += cited.invalid
        citations = tuple(_citation(n, hits[n - 1]) for n in sorted(cited.cited))
        return self._finish(run, cited.text, Outcome.ANSWERED, citations)

    def _generate(
        self, run: _Run, history: Sequence[tuple[str, str]], on_token: OnToken | None
    ) -> str:
        """Stream the model's answer through the citation filter; returns the filtered text."""
        messages = run.template.messages(run.question, run.retrieval.hits)
        if history:  # earlier turns go between the fixed prefix and the new question
            turns = [
                m
                for q, a in history[-2:]
                for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
            ]
            messages = messages[:-1] + turns + messages[-1:]
        t = time.perf_counter()
        generator = self._generator()
        run.timings["load_model"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        guard = CitationFilter(len(run.retrieval.hits))
        pieces: list[str] = []
        fixed = 1 + 2 * len(run.template.demonstrations)  # system + demonstrations: cacheable
        for piece in generator.stream(messages, self._params, prefix=fixed):
            if "first_token" not in run.timings:
                run.timings["first_token"] = (time.perf_counter() - t) * 1000
            shown = guard.feed(piece)
            if not any(pieces):
                shown = shown.lstrip()  # the model often opens with a space
            pieces.append(shown)
            if on_token and shown:
                on_token(shown)
        pieces.append(guard.flush())
        if on_token and pieces[-1]:
            on_token(pieces[-1])
        run.timings["generate"] = (time.perf_counter() - t) * 1000
        run.timings.setdefault("first_token", run.timings["generate"])
        run.invalid = guard.invalid
        usage = getattr(generator, "last_usage", {}) or {}
        run.prompt_tokens = int(usage.get("prompt_tokens", 0) or usage.get("context_tokens", 0))
        run.completion_tokens = int(usage.get("completion_tokens", 0)) or len(pieces) - 1
        return "".join(pieces).strip()

    def _finish(
        self, run: _Run, text: str, outcome: Outcome, citations: tuple[Citation, ...] = ()
    ) -> Answer:
        run.timings["total"] = (time.perf_counter() - run.started) * 1000
        trace = Trace(
            id=uuid.uuid4().hex,
            query=run.question,
            collection=self.collection,
            outcome=outcome,
            hits=run.retrieval.hits,
            timings_ms=run.timings,
            model=self._model_name,
            prompt_version=run.template.version,
            params=self._params,
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
            invalid_citations=run.invalid,
        )
        body = dataclasses.asdict(trace)
        body["coverage"], body["dense_top"] = run.retrieval.coverage, run.retrieval.dense_top
        for hit in body["hits"]:
            hit.pop("text", None)  # the trace keeps ids and scores, not document text
        self._store.save_trace(trace.id, self.collection, body)
        return Answer(text=text, citations=citations, outcome=outcome, trace=trace)


def _checked(question: str) -> str:
    question = question.strip()
    if not question:
        raise InputError("the question is empty", 'ask something, e.g. dari ask "..."')
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(
            f"the question is {len(question)} characters long (limit {MAX_QUESTION_CHARS})",
            "shorten it; put long material into a document and ingest it",
        )
    return question


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

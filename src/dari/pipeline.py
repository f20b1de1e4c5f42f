"""One question, end to end: retrieve → abstain or prompt → generate → citations → trace."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dari.cache.answers import citations_of
from dari.cache.hook import CacheRequest, PipelineCache
from dari.cache.store import Entry
from dari.errors import InputError
from dari.generate.citations import process
from dari.generate.prompt import PromptTemplate
from dari.generate.streaming import CitationFilter
from dari.guards.audit import Audit
from dari.guards.base import GuardContext
from dari.guards.chain import GuardChain, StageResult, refusal
from dari.guards.pii import find_pii, redact
from dari.guards.stream import STREAMED_GUARDS, SentenceGate
from dari.index.store import Store
from dari.prompts.registry import PromptRegistry
from dari.protocols import Generator
from dari.retrieve.hybrid import HybridRetriever, Retrieval
from dari.text import detect_lang
from dari.types import (
    Answer,
    CacheUse,
    Citation,
    GenerationParams,
    Hit,
    Outcome,
    Stage,
    Trace,
    Verdict,
)

OnToken = Callable[[str], None]
MAX_QUESTION_CHARS = 4000
_NOTHING = Retrieval(hits=(), coverage=0.0, dense_top=0.0, abstain=True)


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
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)
    schema: Mapping[str, object] | None = None
    logged_query: str = ""  # what the trace keeps: the question with personal data redacted
    prompt_data: str = ""  # the last user message the model saw (sources + question)
    cache: tuple[CacheRequest, CacheUse] | None = None  # the cache missed: store the answer?
    served: CacheUse | None = None  # the cache answered: from which entry
    follow_up: bool = False
    caller: str = ""  # the API key id that asked, if any


class Pipeline:
    def __init__(
        self,
        collection: str,
        retriever: HybridRetriever,
        generator: Callable[[], Generator],
        store: Store,
        params: GenerationParams,
        model_name: str,
        prompts: PromptRegistry | None = None,  # None: built-in and stored versions, defaults
        guards: GuardChain | None = None,
        audit: Audit | None = None,
        embed_query: Callable[[str], np.ndarray] | None = None,
        cache: PipelineCache | None = None,
    ) -> None:
        self._cache = cache
        self.collection = collection
        self._guards = guards
        self._audit = audit
        self._embed_query = embed_query
        self._prompts = prompts or PromptRegistry(store)
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
        schema: Mapping[str, object] | None = None,
        prompt_key: str = "",
        tenant: str = "",
        caller: str = "",
    ) -> Answer:
        """Answer `question`; with `schema` (a JSON schema) the answer is JSON that validates
        against it: checked, repaired by asking the model again once, else refused by policy.
        `prompt_key` (a user or session id; else the question) picks the A/B arm of the prompt;
        `tenant` and `acl` scope the answer cache; `caller` (an API key id) owns the trace."""
        question = _checked(question)
        started = time.perf_counter()
        lang = detect_lang(question)
        template = self._prompts.template(lang, prompt_key or question)
        ctx = GuardContext(question, lang, schema=schema, embed_query=self._embed_query)
        if schema is not None:
            on_token = None  # JSON is returned whole, not streamed
        checked = self._guard(Stage.INPUT, question, ctx)
        if checked.blocked:
            run = _Run(question, _NOTHING, template, started, {}, caller=caller)
            return self._refuse(run, checked, on_token)
        question = ctx.question = checked.text  # personal data redacted before it goes further
        cache = None
        if self._cache is not None:
            flagged = next((v.guard for v in checked.verdicts if v.flagged), "")
            bypass = "a follow-up in a conversation" if history else ""
            bypass = bypass or (f"the {flagged} guard flagged the question" if flagged else "")
            req = self._cache.request(
                question, lang, template.version, acl, tenant, filters, schema, top_k, bypass
            )
            found, use = self._cache.lookup(req)
            if found.entry is not None:
                hit = _Run(
                    question, _NOTHING, template, started, {}, verdicts=list(checked.verdicts)
                )
                hit.caller = caller
                return self._from_cache(hit, found.entry, use, on_token)
            cache = (req, use)
        t = time.perf_counter()
        retrieval = self._retriever.retrieve(question, top_k, acl, filters)
        if retrieval.abstain and history:  # a follow-up may need the previous question
            follow_up = f"{history[-1][0]} {question}"
            retrieval = self._retriever.retrieve(follow_up, top_k, acl, filters)
        timings = {f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()}
        timings["retrieve"] = (time.perf_counter() - t) * 1000
        run = _Run(question, retrieval, template, started, timings, verdicts=list(checked.verdicts))
        run.caller = caller
        run.schema, run.cache, run.follow_up = schema, cache, bool(history)
        run.logged_query = redact(question, find_pii(question))
        if not retrieval.abstain:
            run.retrieval = self._guard_sources(run, ctx)
        if run.retrieval.abstain:  # too little support: say so without asking the model
            if on_token:
                on_token(run.template.dont_know)
            return self._finish(run, run.template.dont_know, Outcome.ABSTAINED)

        return self._answer(run, ctx, history, on_token)

    def _answer(
        self,
        run: _Run,
        ctx: GuardContext,
        history: Sequence[tuple[str, str]],
        on_token: OnToken | None,
    ) -> Answer:
        """Generate (through the sentence gate when streaming), repair JSON if a schema was
        asked for, attach citations, and run the output guards."""
        schema = run.schema
        hits = run.retrieval.hits
        ctx.sources = tuple(h.text for h in hits)
        ctx.system_prompt = run.template.system
        gate = None
        if on_token is not None and self._guards is not None:
            gate = SentenceGate(
                lambda s: self._guard(Stage.OUTPUT, s, ctx, only=STREAMED_GUARDS), on_token
            )
        raw = self._generate(run, history, gate.feed if gate else on_token)
        if gate is not None:
            gate.flush()
        if schema is not None:
            raw = self._repair_json(run, history, raw, ctx)
        elif not raw or _is_dont_know(raw, run.template.dont_know):
            return self._finish(run, run.template.dont_know, Outcome.ABSTAINED)
        cited = process(raw, len(hits), hits, attach=schema is None)
        if cited.attached and on_token:
            on_token(f" [{cited.cited[0]}]")
        run.invalid += cited.invalid
        answer = self._guard(Stage.OUTPUT, cited.text, ctx)
        if answer.blocked:
            return self._refuse(run, answer, on_token)
        run.verdicts += answer.verdicts
        citations = tuple(_citation(n, hits[n - 1]) for n in sorted(cited.cited))
        return self._finish(run, answer.text, Outcome.ANSWERED, citations)

    def _repair_json(
        self, run: _Run, history: Sequence[tuple[str, str]], raw: str, ctx: GuardContext
    ) -> str:
        """One more try when the answer does not validate: the model sees its answer and the
        validation error (the usual repair loop); the output guards then judge the result."""
        first = self._guard(Stage.OUTPUT, raw, ctx, only=frozenset({"schema"}))
        problem = next((v for v in first.verdicts if v.flagged), None)
        if problem is None:
            return raw
        run.timings["schema_retries"] = 1
        fix = (
            f"That answer is not valid: {problem.detail}. Reply with only the corrected JSON."
            if run.template.lang == "en"
            else f"그 답은 올바르지 않습니다: {problem.detail}. 고친 JSON만 답하세요."
        )
        extra = ({"role": "assistant", "content": raw}, {"role": "user", "content": fix})
        return self._generate(run, history, None, extra)

    def _guard(
        self,
        stage: Stage,
        text: str,
        ctx: GuardContext,
        n: int | None = None,
        only: frozenset[str] | None = None,
    ) -> StageResult:
        if self._guards is None:
            return StageResult(text, ())
        return self._guards.run(stage, text, ctx, n, only)

    def _guard_sources(self, run: _Run, ctx: GuardContext) -> Retrieval:
        """The context guard over every source: dropped or neutralised per policy."""
        if self._guards is None or not self._guards.guards(Stage.CONTEXT):
            return run.retrieval
        t = time.perf_counter()
        kept: list[Hit] = []
        for n, hit in enumerate(run.retrieval.hits, start=1):
            checked = self._guard(Stage.CONTEXT, hit.text, ctx, n)
            run.verdicts += checked.verdicts
            if not checked.blocked:
                kept.append(dataclasses.replace(hit, text=checked.text) if checked.changed else hit)
        run.timings["guard.context"] = (time.perf_counter() - t) * 1000
        if tuple(kept) == run.retrieval.hits:
            return run.retrieval
        return dataclasses.replace(run.retrieval, hits=tuple(kept), abstain=not kept)

    def _refuse(self, run: _Run, checked: StageResult, on_token: OnToken | None) -> Answer:
        run.verdicts += checked.verdicts
        blocked = next(v for v in checked.verdicts if v.action == "block")
        text = refusal(run.template.lang, blocked)
        if on_token:
            on_token(("\n" if checked.verdicts[0].stage == Stage.OUTPUT else "") + text)
        if not run.logged_query:  # a refused question is logged redacted too
            run.logged_query = redact(run.question, find_pii(run.question))
        return self._finish(run, text, Outcome.BLOCKED)

    def _generate(
        self,
        run: _Run,
        history: Sequence[tuple[str, str]],
        on_token: OnToken | None,
        extra: Sequence[dict[str, str]] = (),
    ) -> str:
        """Stream the model's answer through the citation filter; returns the filtered text."""
        messages = run.template.messages(run.question, run.retrieval.hits)
        if run.schema is not None:
            messages[-1]["content"] += "\n\n" + _SCHEMA_ASK[run.template.lang].format(
                schema=json.dumps(run.schema, ensure_ascii=False)
            )
        if history:  # earlier turns go between the fixed prefix and the new question
            turns = [
                m
                for q, a in history[-2:]
                for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
            ]
            messages = messages[:-1] + turns + messages[-1:]
        messages += list(extra)
        run.prompt_data = messages[-1 - len(extra)]["content"]
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
            query=run.logged_query or run.question,
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
            verdicts=tuple(run.verdicts),
            cache=run.served,
            caller=run.caller,
        )
        answer = Answer(text=text, citations=citations, outcome=outcome, trace=trace)
        if run.cache is not None and self._cache is not None:
            req, use = run.cache
            use = self._cache.store(req, answer, use, run.follow_up)
            trace = dataclasses.replace(trace, cache=use)
            answer = dataclasses.replace(answer, trace=trace)
        self._save(trace, run, text, citations)
        return answer

    def _save(
        self, trace: Trace, run: _Run, text: str, citations: tuple[Citation, ...] = ()
    ) -> None:
        body = dataclasses.asdict(trace)
        body["coverage"], body["dense_top"] = run.retrieval.coverage, run.retrieval.dense_top
        for hit in body["hits"]:
            hit.pop("text", None)  # the trace keeps ids and scores, not document text
        body["answer"] = text  # as shown to the user, after the output guards
        body["citations"] = [  # what approving the answer into the cache needs (no snippet)
            {k: v for k, v in dataclasses.asdict(c).items() if k != "snippet"} for c in citations
        ]
        # The prompt as the model saw it (its question already redacted) is kept apart from the
        # trace, which holds no document text: feedback exports (SFT/DPO) read it.
        prompt = (run.template.system, run.prompt_data) if run.prompt_data else None
        self._store.save_trace(trace.id, self.collection, body, prompt)
        if self._audit is not None:
            self._audit.append(trace.id, self.collection, trace.verdicts)

    def _from_cache(
        self, run: _Run, entry: Entry, use: CacheUse, on_token: OnToken | None
    ) -> Answer:
        """A cached answer, served with its citations and a trace of its own."""
        if on_token:
            on_token(entry.answer)
        run.logged_query = redact(run.question, find_pii(run.question))
        run.served = use
        return self._finish(run, entry.answer, Outcome.ANSWERED, citations_of(entry))


_SCHEMA_ASK = {
    "en": "Answer with JSON only (no other text), valid against this JSON schema:\n{schema}",
    "ko": "다른 글 없이 JSON으로만 답하세요. 이 JSON 스키마에 맞아야 합니다:\n{schema}",
}


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

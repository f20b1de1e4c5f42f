"""`dari eval answers`: a golden set through the full pipeline, every answer scored.

Each finished item is appended to `<output>/items.jsonl` at once, so an interrupted run picks up
where it stopped: a rerun with the same output folder skips the ids already there (and refuses
when the configuration changed). The answer cache is off, so every item is really answered, and
every answer's trace is stored as usual (`dari.store.trace(trace_id)`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dari.app import Dari
from dari.config import RetrievalSettings, Settings
from dari.errors import InputError
from dari.eval import answer_metrics as am
from dari.eval.golden import GoldenItem, GoldenSet
from dari.guards.output import GroundednessGuard
from dari.types import Answer, Outcome

# Per-item metrics, in report order. None where a metric does not apply (see `score`).
METRICS = (
    "exact_match",
    "token_f1",
    "rouge_l",
    "bleu",
    "embedding_similarity",
    "citation_precision",
    "citation_recall",
    "abstention_accuracy",
    "faithfulness",
    "answer_relevance",
    "agreement",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
)
SAMPLE_TEMPERATURE = 0.7  # self-consistency samples: enough spread to show doubt
ITEMS = "items.jsonl"
RUN = "run.json"


def eval_settings(
    base: Settings,
    prompt: str | None = None,
    model: str | None = None,
    top_k: int | None = None,
    config: Sequence[str] = (),
) -> Settings:
    """`base` with the eval's overrides: prompt, model, top_k and `key=value` retrieval
    settings; the answer cache off."""
    updates: dict[str, Any] = {}
    for pair in config:
        key, sep, value = pair.partition("=")
        if not sep or key not in RetrievalSettings.model_fields:
            raise InputError(
                f"bad --config '{pair}'",
                "write key=value with a retrieval setting: "
                + ", ".join(RetrievalSettings.model_fields),
            )
        updates[key] = value
    if top_k is not None:
        updates["top_k"] = top_k
    try:
        retrieval = RetrievalSettings(**{**base.retrieval.model_dump(), **updates})
    except ValueError as exc:
        raise InputError(f"bad retrieval setting: {exc}", "check --config and --top-k") from exc
    llm = base.llm.model_copy(
        update={k: v for k, v in (("prompt", prompt), ("model", model)) if v is not None}
        | ({"pin_prompt": True} if prompt is not None else {})
    )
    cache = base.cache.model_copy(update={"enabled": False})
    return base.model_copy(update={"retrieval": retrieval, "llm": llm, "cache": cache})


class ItemProgress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self) -> None: ...


@dataclass(frozen=True)
class AnswerRun:
    config: dict[str, Any]
    started: str
    finished: str
    golden: GoldenSet
    results: list[dict[str, Any]]  # per item, in golden order
    resumed: int  # items taken from an earlier run


class Scorer:
    """Computes the per-item metrics; keeps the time each metric took (ms, summed)."""

    def __init__(self, dari: Dari) -> None:
        self._dari = dari
        self.tokenize = am.tokenizer(dari.analyzer.kiwi)
        support = dari.settings.guards.grounded_min_support
        self.guard = GroundednessGuard(dari.analyzer.terms, dari.analyzer.sentences, support)
        self.timings_ms: dict[str, float] = {}

    def _timed(self, name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        self.timings_ms[name] = self.timings_ms.get(name, 0.0) + (time.perf_counter() - t) * 1000
        return value

    def faithfulness(self, text: str, sources: Sequence[str], lang: str) -> float:
        support = am.cited_sentences(self.guard, text, sources, lang, self._dari.analyzer.sentences)
        return am.faithfulness(support, self.guard.min_support)

    def score(
        self, item: GoldenItem, answer: Answer, cited: list[tuple[str, ...]], latency_ms: float
    ) -> dict[str, float | None]:
        """Reference metrics are None on unanswerable items; faithfulness and relevance are None
        when dari did not answer; citation precision when nothing is cited, recall without gold
        ids."""
        answered = answer.outcome == Outcome.ANSWERED
        m: dict[str, float | None] = dict.fromkeys(METRICS)
        t = self._timed
        refs = item.answers
        if refs and not item.unanswerable:
            text = answer.text
            m["exact_match"] = t("exact_match", lambda: am.exact_match(text, refs))
            m["token_f1"] = t("token_f1", lambda: am.token_f1(text, refs, self.tokenize))
            m["rouge_l"] = t("rouge_l", lambda: am.rouge_l(text, refs, self.tokenize))
            m["bleu"] = t("bleu", lambda: am.bleu(text, refs, self.tokenize))
            m["embedding_similarity"] = t("embedding_similarity", lambda: self._similar(text, refs))
        if item.gold_ids:
            m["citation_precision"], m["citation_recall"] = t(
                "citation", lambda: am.citation_scores(cited, item.gold_ids)
            )
        m["abstention_accuracy"] = float(answered != item.unanswerable)
        if answered:
            sources = [h.text for h in answer.trace.hits]
            m["faithfulness"] = t(
                "faithfulness", lambda: self.faithfulness(answer.text, sources, item.lang)
            )
            m["answer_relevance"] = t(
                "answer_relevance", lambda: self._relevance(item.question, answer.text)
            )
        m["latency_ms"] = latency_ms
        m["prompt_tokens"] = float(answer.trace.prompt_tokens)
        m["completion_tokens"] = float(answer.trace.completion_tokens)
        return m

    def _similar(self, text: str, refs: Sequence[str]) -> float:
        vecs = self._dari.embedder.embed_passages([am.strip_citations(text), *refs])
        return am.embedding_similarity(vecs[0], vecs[1:])

    def _relevance(self, question: str, text: str) -> float:
        q = self._dari.embedder.embed_queries([question])[0]
        a = self._dari.embedder.embed_passages([am.strip_citations(text)])[0]
        return am.answer_relevance(q, a)


class AnswerEval:
    """Runs golden items through `dari` (whose settings are the eval's: see `eval_settings`)."""

    def __init__(self, dari: Dari, collection: str, samples: int = 1) -> None:
        if samples < 1:
            raise InputError("--samples must be at least 1", "1 = no self-consistency")
        cache = dari.settings.cache.model_copy(update={"enabled": False})
        dari.settings = dari.settings.model_copy(update={"cache": cache})
        self.dari, self.collection, self.samples = dari, collection, samples
        self.scorer = Scorer(dari)

    def config(self, golden: GoldenSet) -> dict[str, Any]:
        s = self.dari.settings
        return {
            "golden": str(golden.path.resolve()),
            "collection": self.collection,
            "model": self.dari.model_name,  # a tune run: its name and adapter hash
            "prompt": s.llm.prompt,
            "temperature": s.llm.temperature,
            "seed": s.llm.seed,
            "samples": self.samples,
            "embedder": s.embedder.name,
            "retrieval": s.retrieval.model_dump(),
        }

    def run(
        self,
        golden: GoldenSet,
        output: Path,
        progress: ItemProgress | None = None,
        limit: int | None = None,
    ) -> AnswerRun:
        """Answer and score every item not yet in `output/items.jsonl`; `limit` stops after that
        many items of the set (the rest are left for a later run)."""
        self.dari.pipeline(self.collection)  # fails early: unknown collection, prompt, embedder
        output.mkdir(parents=True, exist_ok=True)
        config = self.config(golden)
        started = _check_run(output / RUN, config)
        done = read_items(output / ITEMS)
        todo = [i for i in golden.items[:limit] if i.id not in done]
        resumed = sum(1 for i in golden.items if i.id in done)
        id_of = self.dari.store.external_ids(self.collection)
        if progress:
            progress.start("answers", len(golden.items[:limit]))
            for _ in range(len(golden.items[:limit]) - len(todo)):
                progress.advance()
        with (output / ITEMS).open("a", encoding="utf-8") as f:
            for item in todo:
                row = self.item(item, id_of)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                done[item.id] = row
                if progress:
                    progress.advance()
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        results = [done[i.id] for i in golden.items if i.id in done]
        return AnswerRun(config, started, finished, golden, results, resumed)

    def item(self, item: GoldenItem, id_of: dict[str, str]) -> dict[str, Any]:
        t = time.perf_counter()
        answer = self.dari.ask(item.question, self.collection)
        latency = (time.perf_counter() - t) * 1000
        cited = [names(c.source, id_of) for c in answer.citations]
        metrics = self.scorer.score(item, answer, cited, round(latency, 2))
        samples: list[str] = []
        if self.samples > 1:
            texts = [answer.text]
            for extra in self._sample(item.question):
                samples.append(extra.trace.id)
                texts.append(extra.text)
            metrics["agreement"] = self.scorer._timed(
                "agreement", lambda: am.agreement(texts, self.scorer.tokenize)
            )
        return {
            "id": item.id,
            "question": item.question,
            "lang": item.lang,
            "tags": list(item.tags),
            "answer": answer.text,
            "outcome": answer.outcome.value,
            "trace_id": answer.trace.id,
            "metrics": {k: (round(v, 4) if v is not None else None) for k, v in metrics.items()},
            "references": list(item.answers),
            "unanswerable": item.unanswerable,
            "gold_ids": list(item.gold_ids),
            "cited_ids": list(dict.fromkeys(c[1] for c in cited)),
            "prompt_version": answer.trace.prompt_version,
            "sample_trace_ids": samples,
        }

    def _sample(self, question: str) -> list[Answer]:
        """The other k − 1 answers of the same question, at a higher temperature and other
        seeds; the settings are put back afterwards."""
        base = self.dari.settings
        out = []
        try:
            for i in range(1, self.samples):
                llm = base.llm.model_copy(
                    update={
                        "temperature": max(base.llm.temperature, SAMPLE_TEMPERATURE),
                        "seed": base.llm.seed + i,
                    }
                )
                self.dari.settings = base.model_copy(update={"llm": llm})
                out.append(self.dari.ask(question, self.collection))
        finally:
            self.dari.settings = base
        return out


def names(source: str, id_of: dict[str, str]) -> tuple[str, ...]:
    """What a gold id may call a cited document: its source, its external id (a row's `id`
    field), its file name or the file name without extension."""
    path = Path(source.partition("#")[0])
    return tuple(dict.fromkeys((source, id_of.get(source, source), path.name, path.stem)))


def read_items(path: Path) -> dict[str, dict[str, Any]]:
    """Finished items of an earlier run by id; a line cut short by an interruption is dropped
    (that item is answered again)."""
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    text = path.read_text(encoding="utf-8")
    good: list[str] = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            done[str(row["id"])] = row
            good.append(line)
    if len(good) != len(text.splitlines()) or (text and not text.endswith("\n")):
        path.write_text("".join(g + "\n" for g in good), encoding="utf-8")  # drop the torn line
    return done


def _check_run(path: Path, config: dict[str, Any]) -> str:
    """The start time of the run in this folder; a new run records its configuration, a resumed
    one must have the same."""
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        old = before.get("config", {})
        changed = sorted(
            k for k in {*config, *old} if k != "golden" and old.get(k) != config.get(k)
        )
        if changed:
            raise InputError(
                f"{path.parent} holds a run with another configuration ({', '.join(changed)})",
                "pass a new --output folder, or delete that one to start over",
            )
        return str(before["started"])
    started = datetime.now(UTC).isoformat(timespec="seconds")
    path.write_text(
        json.dumps({"config": config, "started": started}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return started

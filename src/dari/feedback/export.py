"""Training and eval sets from feedback: SFT conversations and DPO preference pairs in trl's
conversational format, and a golden Q&A set; redacted, near-duplicates removed, written atomically.

A correction always wins: a corrected trace teaches its correction, never the model's answer.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from dari.errors import InputError
from dari.feedback.dedup import distinct, normalise
from dari.feedback.store import FeedbackStore, Rated, SourceRef
from dari.guards.pii import find_pii, redact
from dari.jsonl import check_target, write_jsonl

Row = dict[str, object]
SIGNALS_ONLY = "implicit signals only"
NOT_LIKED = "not liked, approved or corrected"
NO_PROMPT = "no stored prompt (abstained or blocked)"
BLOCKED = "blocked by a guard (the refusal is not the model's answer)"
SAME = "correction same as the answer"
NO_DISLIKED = "no disliked answer to the same question"
NO_LIKED = "no liked answer to the same question"
NO_PREFERENCE = "no preference (mixed or neutral feedback)"
NOT_GOLDEN = "not approved, or not liked without a dislike"
DUPLICATE = "near-duplicate"
_MARK = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


class ExportFormat(StrEnum):
    SFT = "sft"  # {"messages": [system, user, assistant]} for trl's SFTTrainer
    DPO = "dpo"  # {"prompt": [...], "chosen": [...], "rejected": [...]} for trl's DPOTrainer
    GOLDEN = "golden"  # {"id", "question", "answer", "collection", "sources"} for evals


@dataclass(frozen=True)
class ExportReport:
    format: ExportFormat
    path: Path
    written: int
    skipped: Mapping[str, int]  # reason → how many traces (or pairs) were left out for it


@dataclass(frozen=True)
class Example:
    """One row to write, and the text its near-duplicates are judged by."""

    key: str
    row: Row


Builder = Callable[[Sequence[Rated]], tuple[list[Example], Counter[str]]]


def export(
    feedback: FeedbackStore,
    fmt: ExportFormat | str,
    output: Path,
    force: bool = False,
    collection: str | None = None,
) -> ExportReport:
    """Write the `fmt` set built from all recorded feedback (of one collection) to `output`."""
    fmt = _format(fmt)
    check_target(output, force)
    examples, skipped = BUILDERS[fmt](feedback.rated(collection))
    keep = distinct([e.key for e in examples])
    rows = [e.row for e, kept in zip(examples, keep, strict=True) if kept]
    if len(rows) < len(examples):
        skipped[DUPLICATE] += len(examples) - len(rows)
    write_jsonl(output, rows, force)
    return ExportReport(fmt, output, len(rows), dict(skipped))


def sft_examples(rated: Sequence[Rated]) -> tuple[list[Example], Counter[str]]:
    """Liked, approved or corrected answers as [system, user, assistant] conversations."""
    examples: list[Example] = []
    skipped: Counter[str] = Counter()
    for r in _by_preference(rated):
        reason = _sft_skip(r)
        if reason or r.prompt is None:
            skipped[reason or NO_PROMPT] += 1
            continue
        messages = [*_prompt(r.prompt), _message("assistant", clean(r.target))]
        row: Row = {"messages": messages, **_about(r)}
        examples.append(Example(_question_key(r), row))
    return examples, skipped


def _sft_skip(r: Rated) -> str:
    if not r.explicit:
        return SIGNALS_ONLY
    if not (r.correction or r.good):
        return NOT_LIKED
    if r.prompt is None:
        return NO_PROMPT
    return BLOCKED if r.outcome == "blocked" and not r.correction else ""


def dpo_examples(rated: Sequence[Rated]) -> tuple[list[Example], Counter[str]]:
    """Preference pairs: a correction over the answer it corrects, and a liked answer over a
    disliked one to the same question (in the liked answer's prompt, which its citations fit).
    A guard's refusal is never a side of a pair: it is dari's text, not the model's."""
    examples: list[Example] = []
    used: set[str] = set()
    reasons: dict[str, str] = {}
    for r in _by_preference(rated):
        if not r.correction:
            continue
        reason = _correction_skip(r)
        if reason or r.prompt is None:
            reasons[r.trace_id] = reason or NO_PROMPT
            continue
        examples.append(_pair(r, r.prompt, r.correction, r.answer, "correction"))
        used.add(r.trace_id)
    for group in _same_question(rated):
        liked = [
            (r, r.prompt)
            for r in group
            if r.good and r.prompt is not None and (r.correction or r.outcome != "blocked")
        ]
        disliked = [r for r in group if r.bad and r.outcome != "blocked"]
        for i, bad in enumerate(disliked if liked else ()):
            good, prompt = liked[i % len(liked)]
            if same(good.target, bad.answer):
                reasons.setdefault(bad.trace_id, SAME)
                continue
            examples.append(_pair(good, prompt, good.target, bad.answer, "votes", bad.trace_id))
            used |= {good.trace_id, bad.trace_id}
    skipped = Counter(
        reasons.get(r.trace_id) or _dpo_skip(r) for r in rated if r.trace_id not in used
    )
    return examples, skipped


def _correction_skip(r: Rated) -> str:
    if r.prompt is None:
        return NO_PROMPT
    if r.outcome == "blocked":
        return BLOCKED
    return SAME if same(r.correction, r.answer) else ""


def _dpo_skip(r: Rated) -> str:
    if not r.explicit:
        return SIGNALS_ONLY
    if r.outcome == "blocked" and not r.correction:
        return BLOCKED
    if r.good:
        return NO_DISLIKED
    return NO_LIKED if r.bad else NO_PREFERENCE


def _pair(
    chosen: Rated,
    prompt: tuple[str, str],
    better: str,
    worse: str,
    origin: str,
    rejected_trace: str = "",
) -> Example:
    """A DPO row in `chosen`'s prompt: `better` preferred to `worse`."""
    row: Row = {
        "prompt": _prompt(prompt),
        "chosen": [_message("assistant", clean(better))],
        "rejected": [_message("assistant", clean(worse))],
        **_about(chosen),
        "rejected_trace_id": rejected_trace or chosen.trace_id,
        "origin": origin,
    }
    key = "\n".join((_question_key(chosen), better, worse))
    return Example(key, row)


def golden_examples(rated: Sequence[Rated]) -> tuple[list[Example], Counter[str]]:
    """Approved Q&A pairs, and liked ones nobody disliked, as an eval set with their sources."""
    examples: list[Example] = []
    skipped: Counter[str] = Counter()
    for r in _by_preference(rated):
        if not r.good:
            skipped[NOT_GOLDEN if r.explicit else SIGNALS_ONLY] += 1
            continue
        row: Row = {
            "id": r.trace_id,
            "question": clean(r.question),
            "answer": clean(r.target),
            "collection": r.collection,
            "sources": [{"source": s.source, "chunk_id": s.chunk_id} for s in _cited(r)],
            "outcome": r.outcome,
        }
        examples.append(Example(_question_key(r), row))
    return examples, skipped


BUILDERS: Mapping[ExportFormat, Builder] = {
    ExportFormat.SFT: sft_examples,
    ExportFormat.DPO: dpo_examples,
    ExportFormat.GOLDEN: golden_examples,
}


def clean(text: str) -> str:
    """`text` with personal data replaced by placeholders ("[PHONE]", "[EMAIL]"…)."""
    return redact(text, find_pii(text))


def same(a: str, b: str) -> bool:
    return normalise(a) == normalise(b)


def _format(fmt: ExportFormat | str) -> ExportFormat:
    try:
        return ExportFormat(fmt)
    except ValueError:
        choices = ", ".join(f.value for f in ExportFormat)
        raise InputError(f"unknown export format '{fmt}'", f"use one of: {choices}") from None


def _by_preference(rated: Sequence[Rated]) -> list[Rated]:
    """Approved first, then corrected, then liked; newest first within each: near-duplicate
    removal keeps the earliest, so the most trusted example survives."""

    def rank(r: Rated) -> tuple[int, float]:
        level = 0 if r.approved else 1 if r.correction else 2 if r.good else 3
        return level, -r.created_at

    return sorted(rated, key=rank)


def _same_question(rated: Sequence[Rated]) -> list[list[Rated]]:
    """Traces grouped by collection and normalised (redacted) question."""
    groups: dict[tuple[str, str], list[Rated]] = defaultdict(list)
    for r in _by_preference(rated):
        groups[(r.collection, normalise(r.question))].append(r)
    return list(groups.values())


def _question_key(r: Rated) -> str:
    return f"{r.collection}\n{r.question}"


def _prompt(prompt: tuple[str, str]) -> list[dict[str, str]]:
    system, user = prompt
    return [_message("system", clean(system)), _message("user", clean(user))]


def _message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _about(r: Rated) -> Row:
    return {
        "trace_id": r.trace_id,
        "collection": r.collection,
        "prompt_version": r.prompt_version,
    }


def _cited(r: Rated) -> list[SourceRef]:
    """The sources the answer cites by [n]; all it was given when it cites none; none for an
    answer that is not the model's (an abstention or a refusal)."""
    numbers = [int(n) for m in _MARK.finditer(r.target) for n in m.group(1).split(",")]
    cited = [r.sources[n - 1] for n in dict.fromkeys(numbers) if 1 <= n <= len(r.sources)]
    if cited:
        return cited
    return list(r.sources) if r.outcome == "answered" else []

"""LLM-as-judge: a written rubric per quality (G-Eval style: criteria, evaluation steps, a 1–5
scale; the judge answers a reason and a score) and pairwise comparison of two answers, asked in
both orders so that a judge's preference for the first or second position cancels out.

The judge is any `Generator`: the local model or an OpenAI-compatible endpoint. Rubrics are data
(`RUBRICS`), in English and Korean; a Korean item is judged with the Korean prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from dari.eval.rubrics import PROMPT_TEXT as _TEXT
from dari.eval.rubrics import Rubric
from dari.protocols import Generator
from dari.types import GenerationParams

JUDGE_PARAMS = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=200, seed=7)
MAX_FIELD = 6000  # characters of one answer, reference or source block shown to the judge


@dataclass(frozen=True)
class Item:
    """What the judge sees of one answer."""

    id: str
    question: str
    answer: str
    lang: str = "en"
    reference: str = ""
    sources: str = ""


@dataclass(frozen=True)
class Score:
    """The judge's verdict: `score` 1–5 or None when its output could not be read (`raw`)."""

    id: str
    score: int | None
    reason: str
    raw: str


@dataclass(frozen=True)
class PairVerdict:
    """Pairwise result: `winner` is "A", "B" or "tie"; a win needs the same answer preferred in
    both orders (`first` asked A then B, `second` asked B then A, both mapped back to A/B)."""

    id: str
    winner: str
    first: str | None
    second: str | None
    consistent: bool
    raw: tuple[str, str]


def _lang(lang: str) -> str:
    return "ko" if lang.startswith("ko") else "en"


def _rubric_block(rubric: Rubric, lang: str) -> str:
    t = _TEXT[lang]
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(rubric.steps[lang], 1))
    scale = "\n".join(f"{i}: {s}" for i, s in enumerate(rubric.scale[lang], 1))
    return (
        f"## {t['criteria']}\n{rubric.criteria[lang]}\n\n## {t['steps']}\n{steps}\n\n"
        f"## {t['scale']}\n{scale}"
    )


def _context(rubric: Rubric, item: Item, lang: str) -> str:
    t = _TEXT[lang]
    parts = [f"## {t['question']}\n{item.question}"]
    if "reference" in rubric.needs:
        parts.append(f"## {t['reference']}\n{item.reference[:MAX_FIELD]}")
    if "sources" in rubric.needs:
        parts.append(f"## {t['sources']}\n{item.sources[:MAX_FIELD]}")
    return "\n\n".join(parts)


def messages(rubric: Rubric, item: Item) -> list[dict[str, str]]:
    """The chat messages that ask the judge to score one item, in the item's language."""
    lang = _lang(item.lang)
    t = _TEXT[lang]
    user = (
        f"{_rubric_block(rubric, lang)}\n\n{_context(rubric, item, lang)}\n\n"
        f"## {t['answer']}\n{item.answer[:MAX_FIELD]}"
    )
    return [{"role": "system", "content": t["system"]}, {"role": "user", "content": user}]


def pair_messages(rubric: Rubric, item: Item, first: str, second: str) -> list[dict[str, str]]:
    lang = _lang(item.lang)
    t = _TEXT[lang]
    answers = "\n\n".join(
        f"## {t['answer_n'].format(n=n)}\n{text[:MAX_FIELD]}"
        for n, text in ((1, first), (2, second))
    )
    user = f"{_rubric_block(rubric, lang)}\n\n{_context(rubric, item, lang)}\n\n{answers}"
    return [{"role": "system", "content": t["pair_system"]}, {"role": "user", "content": user}]


def _first_object(text: str) -> dict[str, object] | None:
    """The first JSON object in `text` (models wrap it in prose or code fences)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_score(raw: str) -> tuple[int | None, str]:
    """(score 1–5, reason) from a judge's output: the first JSON object's `score`, else the first
    digit 1–5 in the text, else (None, "")."""
    obj = _first_object(raw)
    if obj is not None:
        value = obj.get("score")
        reason = str(obj.get("reason", ""))
        try:
            n = round(float(str(value)))
        except (TypeError, ValueError):
            n = 0
        if 1 <= n <= 5:
            return n, reason
    m = re.search(r"(?<![\d.])([1-5])(?![\d.])", raw)
    if m:
        return int(m.group(1)), raw.strip()[:300]
    return None, ""


def parse_winner(raw: str) -> str | None:
    """ "1", "2" or "tie" from a pairwise judge's output, None if it cannot be read."""
    obj = _first_object(raw)
    if obj is not None and "winner" in obj:
        value = str(obj["winner"]).strip().lower().strip("\"' ")
        if value in ("1", "2", "tie"):
            return value
        if value in ("answer 1", "a", "first", "답변 1"):
            return "1"
        if value in ("answer 2", "b", "second", "답변 2"):
            return "2"
    m = re.search(r"\b(tie|1|2)\b", raw.lower())
    return m.group(1) if m else None


def _ask(judge: Generator, msgs: Sequence[dict[str, str]], params: GenerationParams) -> str:
    return "".join(judge.stream(msgs, params))


def score(
    judge: Generator, rubric: Rubric, item: Item, params: GenerationParams = JUDGE_PARAMS
) -> Score:
    missing = [f for f in rubric.needs if not getattr(item, f).strip()]
    if missing:
        return Score(item.id, None, f"not judged: the item has no {', '.join(missing)}", "")
    raw = _ask(judge, messages(rubric, item), params)
    value, reason = parse_score(raw)
    return Score(item.id, value, reason, raw)


def pair(
    judge: Generator,
    rubric: Rubric,
    item: Item,
    answer_a: str,
    answer_b: str,
    params: GenerationParams = JUDGE_PARAMS,
) -> PairVerdict:
    """Ask with (A, B) and with (B, A); a side wins only if preferred in both orders."""
    raw1 = _ask(judge, pair_messages(rubric, item, answer_a, answer_b), params)
    raw2 = _ask(judge, pair_messages(rubric, item, answer_b, answer_a), params)
    w1, w2 = parse_winner(raw1), parse_winner(raw2)
    first = {"1": "A", "2": "B", "tie": "tie"}.get(w1 or "")
    second = {"1": "B", "2": "A", "tie": "tie"}.get(w2 or "")
    consistent = first is not None and first == second
    winner = first if consistent and first in ("A", "B") else "tie"
    return PairVerdict(item.id, winner or "tie", first, second, consistent, (raw1, raw2))


def pair_summary(verdicts: Iterable[PairVerdict]) -> dict[str, float | int]:
    """Wins, ties and the position-consistency rate (the share of items where both orders gave
    the same verdict: a low rate means the judge mostly follows position, not content)."""
    rows = list(verdicts)
    n = len(rows)
    wins_a = sum(v.winner == "A" for v in rows)
    wins_b = sum(v.winner == "B" for v in rows)
    return {
        "items": n,
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": n - wins_a - wins_b,
        "win_rate_b": round(wins_b / n, 4) if n else 0.0,
        "position_consistency": round(sum(v.consistent for v in rows) / n, 4) if n else 0.0,
        "unreadable": sum(v.first is None or v.second is None for v in rows),
    }


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self) -> None: ...


def item_from_report(row: Mapping[str, Any], sources: str = "") -> Item:
    """A judge item from one item of an answer-eval report.json: its references (joined, one per
    line) and its sources (the item's `sources`, else `sources` given: a trace's prompt)."""
    refs = row.get("references") or row.get("reference") or ()
    refs = [refs] if isinstance(refs, str) else [str(r) for r in refs]
    given = row.get("sources") or sources
    if isinstance(given, list):
        given = "\n\n".join(
            f"[{i}] {s.get('text', '') if isinstance(s, dict) else s}"
            for i, s in enumerate(given, 1)
        )
    return Item(
        id=str(row["id"]),
        question=str(row.get("question", "")),
        answer=str(row.get("answer", "")),
        lang=str(row.get("lang") or "en"),
        reference="\n".join(refs),
        sources=str(given or ""),
    )


def score_all(
    judge: Generator, rubric: Rubric, items: Sequence[Item], progress: Progress | None = None
) -> list[Score]:
    if progress:
        progress.start(f"judge {rubric.name}", len(items))
    out = []
    for item in items:
        out.append(score(judge, rubric, item))
        if progress:
            progress.advance()
    return out


def pair_all(
    judge: Generator,
    rubric: Rubric,
    items: Sequence[Item],
    answers_b: Sequence[str],
    progress: Progress | None = None,
) -> list[PairVerdict]:
    """Each item's `answer` is A's; `answers_b` holds B's in the same order."""
    if progress:
        progress.start(f"judge pairs {rubric.name}", len(items))
    out = []
    for item, answer_b in zip(items, answers_b, strict=True):
        out.append(pair(judge, rubric, item, item.answer, answer_b))
        if progress:
            progress.advance()
    return out


def _summary(scores: Sequence[Score]) -> dict[str, Any]:
    values = [s.score for s in scores if s.score is not None]
    skipped = sum(s.score is None and not s.raw for s in scores)
    return {
        "mean": round(sum(values) / len(values), 4) if values else None,
        "scored": len(values),
        "unreadable": len(scores) - len(values) - skipped,
        "skipped": skipped,
    }


def judged_run(
    run: Mapping[str, Any], rubric: Rubric, scores: Sequence[Score], judge_name: str
) -> dict[str, Any]:
    """A copy of the run's items with `judge_<rubric>` in their metrics (None when not judged)
    and the judge's reason and raw output next to them."""
    by_id = {s.id: s for s in scores}
    key = f"judge_{rubric.name}"
    items = []
    for row in run["items"]:
        s = by_id.get(str(row["id"]))
        if s is None:
            continue
        new = dict(row)
        new["metrics"] = {**(row.get("metrics") or {}), key: s.score}
        new["judge"] = {**(row.get("judge") or {}), rubric.name: {"reason": s.reason, "raw": s.raw}}
        items.append(new)
    return {
        "run": run.get("run", {}),
        "judges": {rubric.name: {"judge": judge_name, **_summary(scores)}},
        "items": items,
    }


def merge_judged(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """judge.json after judging another rubric: scores of both, for the items in `new`."""
    old_by_id = {str(i["id"]): i for i in old.get("items", [])}
    items = []
    for row in new["items"]:
        prev = old_by_id.get(str(row["id"]), {})
        merged = dict(row)
        merged["metrics"] = {**(prev.get("metrics") or {}), **row["metrics"]}
        merged["judge"] = {**(prev.get("judge") or {}), **row["judge"]}
        items.append(merged)
    return {**new, "judges": {**old.get("judges", {}), **new["judges"]}, "items": items}


def pair_json(
    verdicts: Sequence[PairVerdict], rubric: Rubric, runs: tuple[str, str], judge_name: str
) -> dict[str, Any]:
    return {
        "kind": "judge_pair",
        "rubric": rubric.name,
        "judge": judge_name,
        "a": runs[0],
        "b": runs[1],
        "summary": pair_summary(verdicts),
        "items": [asdict(v) for v in verdicts],
        "note": "each item asked with (A, B) and (B, A); a win counts only when both orders "
        "prefer the same answer, otherwise a tie",
    }

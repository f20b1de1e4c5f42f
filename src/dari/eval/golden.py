"""Golden answer sets: one question a line (JSONL), with its reference answer(s).

Fields: `question` (required); `answer` (a string) or `answers` (a list), required unless
`unanswerable` is true; `id` (else the line number); `gold_ids` (document ids the answer should
cite) or `sources` (as `dari feedback export --format golden` writes them: `[{"source": …}]` or
plain strings); `tags` (a list, or one string); `lang` (`en` or `ko`, detected from the question
when absent); `unanswerable` (bool: the right outcome is to abstain). A line that is not JSON, lacks
a field, names another language or has an empty reference is skipped and reported with its number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import InputError
from dari.jsonl import read_utf8
from dari.text import detect_lang

LANGS = ("en", "ko")


@dataclass(frozen=True)
class GoldenItem:
    id: str
    question: str
    answers: tuple[str, ...]  # reference answers; empty only when unanswerable
    lang: str
    tags: tuple[str, ...] = ()
    gold_ids: tuple[str, ...] = ()  # document external ids or sources
    unanswerable: bool = False
    line: int = 0


@dataclass(frozen=True)
class SkippedLine:
    line: int
    reason: str


@dataclass(frozen=True)
class GoldenSet:
    path: Path
    items: tuple[GoldenItem, ...]
    skipped: tuple[SkippedLine, ...]


class _Bad(Exception):
    """A line that cannot become an item; its message is the reason."""


def load_golden(path: Path) -> GoldenSet:
    """Read a golden JSONL file, keeping good lines and reporting bad ones (never raising on
    them); raises InputError only when the file cannot be read."""
    path = path.expanduser()
    lines = read_utf8(path, "the golden set")[1].splitlines()
    items: list[GoldenItem] = []
    skipped: list[SkippedLine] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = parse_line(line, number)
            if item.id in seen:
                raise _Bad(f"duplicate id '{item.id}'")
        except _Bad as exc:
            skipped.append(SkippedLine(number, str(exc)))
            continue
        seen.add(item.id)
        items.append(item)
    return GoldenSet(path, tuple(items), tuple(skipped))


def require_items(gold: GoldenSet, shown: int = 3) -> GoldenSet:
    """`gold`, or an InputError when not one line of it is usable: an eval of nothing says so
    instead of reporting empty figures. The message gives the count and the first reasons."""
    if gold.items:
        return gold
    if not gold.skipped:
        raise InputError(f"the golden set {gold.path} has no items", "write one JSON object a line")
    first = "; ".join(f"line {s.line}: {s.reason}" for s in gold.skipped[:shown])
    more = ", …" if len(gold.skipped) > shown else ""
    raise InputError(
        f"no usable line in the golden set {gold.path}: all {len(gold.skipped)} are bad "
        f"({first}{more})",
        "each line needs a JSON object with 'question' and 'answer' (or 'answers', or "
        '"unanswerable": true); see docs/en/evaluation.md',
    )


def parse_line(line: str, number: int) -> GoldenItem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _Bad(f"not JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(row, dict):
        raise _Bad("not a JSON object")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Bad("missing field 'question'")
    unanswerable = row.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise _Bad("'unanswerable' must be true or false")
    answers = _answers(row, unanswerable)
    lang = row.get("lang")
    if lang is None or lang == "":
        lang = detect_lang(question)
    elif lang not in LANGS:
        raise _Bad(f"unknown language '{lang}' (use en or ko)")
    raw_id = row.get("id")
    return GoldenItem(
        id=str(raw_id) if raw_id not in (None, "") else str(number),
        question=question.strip(),
        answers=answers,
        lang=str(lang),
        tags=_strings(row.get("tags"), "tags"),
        gold_ids=_gold(row),
        unanswerable=unanswerable,
        line=number,
    )


def _answers(row: dict[str, Any], unanswerable: bool) -> tuple[str, ...]:
    if "answers" in row:
        value = row["answers"]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise _Bad("'answers' must be a list of strings")
    elif "answer" in row:
        value = row["answer"]
        if not isinstance(value, str):
            raise _Bad("'answer' must be a string")
        value = [value]
    elif unanswerable:
        return ()
    else:
        raise _Bad("missing field 'answer' (or 'answers')")
    answers = tuple(a.strip() for a in value)
    if not unanswerable and (not answers or not all(answers)):
        raise _Bad("empty reference answer")
    return tuple(a for a in answers if a)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value if str(v))
    raise _Bad(f"'{name}' must be a list of strings")


def _gold(row: dict[str, Any]) -> tuple[str, ...]:
    if row.get("gold_ids") is not None:
        return _strings(row["gold_ids"], "gold_ids")
    sources = row.get("sources")
    if sources is None:
        return ()
    if not isinstance(sources, list):
        raise _Bad("'sources' must be a list")
    out: list[str] = []
    for s in sources:
        if isinstance(s, dict) and isinstance(s.get("source"), str):
            out.append(s["source"])
        elif isinstance(s, str | int):
            out.append(str(s))
        else:
            raise _Bad("'sources' entries must be strings or objects with 'source'")
    return tuple(dict.fromkeys(out))

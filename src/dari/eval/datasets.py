"""Retrieval eval sets on disk: BEIR folders and QA folders (dari's format and AutoRAG's).

BEIR: `corpus.jsonl` ({_id, title, text}), `queries.jsonl` ({_id, text}), `qrels/<split>.tsv`
(`query-id corpus-id score`, graded, with a header line).

QA: `corpus.jsonl` (rows with an id and a text field, as `dari ingest` reads them) and `qa.jsonl`,
one question per line: the question under `question` or `query`, the ids of the passages that
answer it under `gold_ids` or `gold_doc_ids`, the reference answers (optional) under `answers`,
`answer` or `generation_gt`, and an optional `id`/`qid`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dari.errors import InputError
from dari.ingest.ingestor import file_sha256
from dari.text import detect_lang

_QUESTION_KEYS = ("question", "query")
_GOLD_KEYS = ("gold_ids", "gold_doc_ids")
_ANSWER_KEYS = ("answers", "answer", "generation_gt")
_ID_KEYS = ("id", "qid", "_id")


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    gold: dict[str, int]  # document id → graded relevance (> 0)
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: str  # "beir" | "qa"
    corpus: Path  # the JSONL file `dari ingest` reads
    queries: tuple[Query, ...]
    lang: str
    fingerprint: str  # sha256 of the corpus file: the cached collection is keyed by it
    skipped: dict[str, int] = field(default_factory=dict)  # why queries were left out → count


def load_set(path: Path, split: str = "test", limit: int | None = None) -> EvalSet:
    """An eval set from a BEIR or QA folder; `limit` keeps the first N judged queries."""
    path = path.expanduser()
    if not path.is_dir():
        raise InputError(
            f"eval set not found: {path}",
            "pass a folder holding corpus.jsonl and either queries.jsonl + qrels/ (BEIR) or "
            "qa.jsonl (QA)",
        )
    corpus = path / "corpus.jsonl"
    if not corpus.is_file():
        raise InputError(f"no corpus.jsonl in {path}", "an eval set folder needs corpus.jsonl")
    if (path / "queries.jsonl").is_file() and (path / "qrels").is_dir():
        kind, queries, skipped = "beir", *_beir_queries(path, split)
    elif (path / "qa.jsonl").is_file():
        kind, queries, skipped = "qa", *_qa_queries(path / "qa.jsonl")
    else:
        raise InputError(
            f"{path} is neither a BEIR set (queries.jsonl + qrels/) nor a QA set (qa.jsonl)",
            "see `dari eval retrieval --help` for the two layouts",
        )
    if limit is not None:
        queries = queries[:limit]
    if not queries:
        raise InputError(f"no judged queries in {path} (split '{split}')", "check the qrels")
    sample = " ".join(q.text for q in queries[:200])
    return EvalSet(
        name=path.name,
        kind=kind,
        corpus=corpus,
        queries=tuple(queries),
        lang=detect_lang(sample),
        fingerprint=file_sha256(corpus)[0],
        skipped=skipped,
    )


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path} line {number}: not JSON ({exc.msg})", "fix or remove that line"
                ) from exc
            if not isinstance(row, dict):
                raise InputError(f"{path} line {number}: not a JSON object", "one object a line")
            yield number, row


def _beir_queries(path: Path, split: str) -> tuple[list[Query], dict[str, int]]:
    qrels_file = path / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        have = sorted(p.stem for p in (path / "qrels").glob("*.tsv"))
        raise InputError(
            f"no qrels for split '{split}' in {path / 'qrels'}",
            f"pass --split with one of: {', '.join(have) or 'none found'}",
        )
    gold: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # the header line, or a blank one
            if int(row[2]) > 0:
                gold.setdefault(row[0], {})[row[1]] = int(row[2])
    texts = {str(r.get("_id")): str(r.get("text", "")) for _, r in _jsonl(path / "queries.jsonl")}
    missing = [qid for qid in gold if qid not in texts]
    queries = [Query(qid, texts[qid], g) for qid, g in gold.items() if qid in texts]
    return queries, ({"no query text": len(missing)} if missing else {})


def _qa_queries(path: Path) -> tuple[list[Query], dict[str, int]]:
    queries: list[Query] = []
    skipped: dict[str, int] = {}
    for number, row in _jsonl(path):
        text = _first(row, _QUESTION_KEYS)
        gold = _first(row, _GOLD_KEYS)
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                f"{path} line {number}: no question (looked for {', '.join(_QUESTION_KEYS)})",
                "give every line a question",
            )
        if not gold:
            skipped["no gold ids"] = skipped.get("no gold ids", 0) + 1
            continue
        answers = _first(row, _ANSWER_KEYS) or ()
        if isinstance(answers, str):
            answers = (answers,)
        qid = _first(row, _ID_KEYS)
        queries.append(
            Query(
                id=str(qid) if qid is not None else str(number),
                text=text.strip(),
                gold={str(g): 1 for g in gold},
                answers=tuple(str(a) for a in answers if str(a).strip()),
            )
        )
    return queries, skipped


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if row.get(k) not in (None, "", [])), None)

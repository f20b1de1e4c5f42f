"""Training rows from public QA sets, in exactly the shape `dari feedback export` writes: the
grounded prompt dari serves (its system message, the numbered source, the question) and the
answer. For trying `dari tune` before feedback has accumulated, and for dari's own tests and
benchmarks (the sets in ../shared/data; see its README for licences).

- HaluEval QA (EN): knowledge → source [1]; SFT target = the right answer; DPO chosen = the right
  answer, rejected = the hallucinated one.
- AutoRAG (KO): the gold pages → sources; SFT target = the reference answer.
- A share of rows (`abstain`) pair a question with another row's source: the target is the
  prompt's exact "I don't know" sentence (DPO: preferred over the answer the source lacks).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import InputError
from dari.generate.prompt import PromptTemplate, template_for
from dari.types import Hit

SETS = ("halueval", "autorag")
SOURCE_CHARS = 1500  # per source: OCR'd pages run long, and a row must fit max_length


@dataclass(frozen=True)
class QA:
    id: str
    question: str
    answer: str
    sources: tuple[tuple[str, str], ...]  # (title, text)
    wrong: str = ""  # a hallucinated answer, when the set has one


def build(
    name: str,
    folder: Path,
    method: str,
    n: int = 0,
    abstain: float = 0.1,
    seed: int = 7,
    prompt: str = "grounded@2",
    demonstrations: bool = False,
) -> list[dict[str, Any]]:
    """Rows for `dari tune sft|dpo` from the set `name` found under `folder` (../shared/data)."""
    items, lang = _read(name, folder)
    rng = random.Random(seed)
    rng.shuffle(items)
    if n:
        items = items[:n]
    template = template_for(lang, prompt)
    rows: list[dict[str, Any]] = []
    for i, qa in enumerate(items):
        other = items[(i + 1) % len(items)]
        if len(items) > 1 and rng.random() < abstain:
            row = _row(template, qa.question, other.sources, template.dont_know, qa.answer, method)
        else:
            row = _row(template, qa.question, qa.sources, qa.answer, qa.wrong, method)
        if row is not None:
            if not demonstrations:
                row = _without_demonstrations(row)
            rows.append({**row, "id": qa.id, "set": name})
    return rows


def _row(
    t: PromptTemplate,
    question: str,
    sources: Sequence[tuple[str, str]],
    good: str,
    bad: str,
    method: str,
) -> dict[str, Any] | None:
    hits = [
        Hit(f"s{n}", f"s{n}", f"s{n}", 1.0, text[:SOURCE_CHARS], title, title)
        for n, (title, text) in enumerate(sources, start=1)
    ]
    messages = t.messages(question, hits)
    answer = _cited(good, t)
    if method == "sft":
        return {"messages": [*messages, {"role": "assistant", "content": answer}]}
    if not bad:
        return None
    return {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": answer}],
        "rejected": [{"role": "assistant", "content": _cited(bad, t)}],
    }


def _cited(answer: str, t: PromptTemplate) -> str:
    answer = answer.strip()
    if answer == t.dont_know or "[" in answer:
        return answer
    return answer.rstrip(".") + " [1]."


def _without_demonstrations(row: dict[str, Any]) -> dict[str, Any]:
    """Only the system message and the real turn: 4-5x fewer tokens per row to train on."""
    key = "messages" if "messages" in row else "prompt"
    msgs = row[key]
    tail = msgs[-2:] if key == "messages" else msgs[-1:]
    return {**row, key: [msgs[0], *tail]}


def _read(name: str, folder: Path) -> tuple[list[QA], str]:
    if name == "halueval":
        path = folder / "hallucination" / "halueval_qa_generation.jsonl"
        return [
            QA(
                r["id"],
                r["question"],
                r["right_answer"],
                (("Knowledge", r["knowledge"]),),
                r["hallucinated_answer"],
            )
            for r in _jsonl(path)
        ], "en"
    if name == "autorag":
        base = folder / "ko_autorag_embedding_benchmark"
        pages = {r["doc_id"]: r["contents"] for r in _jsonl(base / "corpus.jsonl")}
        items = []
        for r in _jsonl(base / "qa.jsonl"):
            ids = [i for group in r["retrieval_gt"] for i in group[:1] if i in pages]
            if ids and r["generation_gt"]:
                sources = tuple((i.rsplit("/", 1)[-1], pages[i]) for i in ids)
                items.append(QA(r["qid"], r["query"], r["generation_gt"][0], sources))
        return items, "ko"
    raise InputError(f"unknown example set '{name}'", f"choose one of: {', '.join(SETS)}")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(
            f"cannot read {path}: {exc.strerror}",
            "point --data-dir at the shared data folder (its README lists the files)",
        ) from exc
    return (json.loads(x) for x in lines if x.strip())

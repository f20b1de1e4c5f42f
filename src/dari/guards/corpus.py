"""The labelled public data the guard classifiers learn from and are measured on (../shared/data).

One place reads the files, so the trainer, the benchmark and the tests agree on what is train and
what is test: rows carry a `split` where the source has one (the prompt-injection sets were split
by a hash of the row id, so a Korean row and its English original share a split); sets without one
are split here by a hash of their id, the same way every time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import InputError


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 = attack / toxic, 0 = benign
    lang: str  # "en" | "ko"
    source: str  # data set name, e.g. "qualifire", "unsmile"
    split: str  # "train" | "test"


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise InputError(
            f"the guard training data {path} is missing",
            "point --data at the shared data folder (it holds prompt_injection/, ko_toxicity/…)",
        )
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def hashed_split(key: str, test_share: float = 0.3) -> str:
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return "test" if digest / 0xFFFFFFFF < test_share else "train"


def _split(row: dict[str, Any]) -> str:
    # unsmile and kocohub have no test split: their valid/dev rows are the held-out test.
    return "train" if row.get("split") == "train" else "test"


def injection(data: Path) -> list[Example]:
    """Attacks (jailbreaks, prompt injections, harmful requests; EN and KO) against benign prompts,
    comments and document passages."""
    pi = data / "prompt_injection"
    out = [
        Example(r["text"], int(r["is_attack"]), "en", "qualifire", _split(r))
        for r in _rows(pi / "qualifire_pi_benchmark_en.jsonl")
    ]
    out += [
        Example(r["text"], 1, "en", "giskard", _split(r))
        for r in _rows(pi / "giskard_prompt_injections_en.jsonl")
    ]
    for name in ("ko_redteam_navirocker", "ko_raccoonbench"):
        out += [
            Example(r["text"], 1, r["lang"], name.split("_")[-1], _split(r))
            for r in _rows(pi / f"{name}.jsonl")
        ]
    # Benign Korean: comments that are not hateful (the attack sets' Korean rows are requests).
    tox = data / "ko_toxicity"
    out += [
        Example(r["text"], 0, "ko", "unsmile-clean", _split(r))
        for r in _rows(tox / "unsmile.jsonl")
        if r["clean"]
    ]
    out += [
        Example(r["text"], 0, "ko", "kocohub-none", _split(r))
        for r in _rows(tox / "kocohub_korean_hate_speech.jsonl")
        if r["hate"] == "none"
    ]
    # Ordinary documents, so that retrieved passages are not mistaken for instructions: Korean
    # business documents (the PII set's texts) and English abstracts (SciFact).
    out += [
        Example(r["text"], 0, "ko", "ko-documents", hashed_split(str(r["id"])))
        for r in _rows(data / "pii" / "ko_pii_detection_test_cases.jsonl")
    ]
    # Korean sentences in many registers (news, reviews, policy questions): half of KLUE-STS by
    # pair id teaches the model that a polite request is not an attack; the other half is test.
    out += [
        Example(r[k], 0, "ko", "klue-sts", hashed_split(str(r["id"]), 0.5))
        for r in _rows(data / "paraphrase" / "klue_sts_dev_ko.jsonl")
        for k in ("sentence1", "sentence2")
    ]
    # Ordinary requests to a general assistant ("Write a poem about…", "Generate a list of…"),
    # so that an imperative is not taken for an attack: half of HaluEval's general user queries
    # by id; the other half is test (flagged share reported beside the ordinary questions).
    out += [
        Example(r["user_query"], 0, "en", "halueval-general", hashed_split(str(r["id"]), 0.5))
        for r in _rows(data / "hallucination" / "halueval_general.jsonl")
        if r["user_query"].strip()
    ]
    out += [
        Example(f"{r['title']}\n{r['text']}", 0, "en", "scifact-abstracts", "train")
        for i, r in enumerate(_rows(data / "beir_scifact" / "corpus.jsonl"))
        if i % 4 == 0
    ]
    return out


def questions(data: Path) -> list[Example]:
    """Ordinary user questions (never trained on): the false-positive rate that users feel."""
    out = [
        Example(r["query"], 0, "ko", "autorag-questions", "test")
        for r in _rows(data / "ko_autorag_embedding_benchmark" / "qa.jsonl")
    ]
    out += [
        Example(r["question"], 0, "en", "halueval-questions", "test")
        for r in _rows(data / "hallucination" / "halueval_qa_generation.jsonl")
    ]
    out += [
        Example(r["text"], 0, "en", "scifact-queries", "test")
        for r in _rows(data / "beir_scifact" / "queries.jsonl")
    ]
    return out


def toxicity(data: Path) -> list[Example]:
    """Korean hate and offensive comments (unsmile: any hate label; kocohub: offensive or hate)."""
    tox = data / "ko_toxicity"
    out = [
        Example(r["text"], 0 if r["clean"] else 1, "ko", "unsmile", _split(r))
        for r in _rows(tox / "unsmile.jsonl")
    ]
    out += [
        Example(r["text"], 0 if r["hate"] == "none" else 1, "ko", "kocohub", _split(r))
        for r in _rows(tox / "kocohub_korean_hate_speech.jsonl")
    ]
    return out

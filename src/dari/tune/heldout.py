"""A tuned model against its base on the run's held-out rows (never trained on): both answer each
held-out prompt greedily with llama.cpp, each answer is scored against the row's reference, and the
paired deltas get bootstrap 95 % intervals (the machinery of `dari eval compare`). A tuned model
whose interval lies below zero on a gated metric is flagged.

Writes `OUTPUT/base/report.json`, `OUTPUT/tuned/report.json` (answer-eval format: `dari eval
compare` reads them too) and `OUTPUT/compare.json` + `compare.html`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dari.config import LLMSettings
from dari.errors import InputError
from dari.eval import answer_metrics as am
from dari.eval import compare as cmp
from dari.generate import models
from dari.generate.llama import LlamaCppGenerator
from dari.generate.prompt import template_for
from dari.text import detect_lang
from dari.tune.data import Row, load_rows
from dari.tune.run_dir import MANIFEST, read_json
from dari.types import GenerationParams

_CITED = re.compile(r"\[\d{1,3}\]")
# Flag the tuned model when it is reliably worse than its base at matching the references.
GATES = ("token_f1.ci_high < 0", "rouge_l.ci_high < 0", "abstention_ok.ci_high < 0")


def evaluate_run(
    run: Path,
    output: Path,
    kiwi: Any,
    n: int = 0,
    data: Path | None = None,
    max_tokens: int = 128,
    gates: Sequence[str] = GATES,
    step: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    """Score base and tuned answers on the held-out rows; returns compare.json's content."""
    manifest = read_json(run / MANIFEST)
    rows = _held_out(manifest, data)[: n or None]
    if not manifest.get("base_gguf"):
        raise InputError(
            f"the run {run} has no GGUF base for llama.cpp to compare against",
            "serve it with vLLM (docs/en/fine-tuning.md) and use dari eval answers",
        )
    tuned = models.served(str(run), Path())
    settings = LLMSettings(n_ctx=4096, temperature=0.0)
    base_gen = LlamaCppGenerator(tuned.path, settings, name="base")
    tuned_gen = LlamaCppGenerator(tuned.path, settings, name=tuned.name, lora=tuned.lora)
    params = GenerationParams(0.0, 1.0, max_tokens, 7)
    tokenize = am.tokenizer(kiwi)
    items: dict[str, list[dict[str, Any]]] = {"base": [], "tuned": []}
    for i, row in enumerate(rows):
        for side, gen in (("base", base_gen), ("tuned", tuned_gen)):
            t0 = time.perf_counter()
            answer = "".join(gen.stream(row.prompt, params)).strip()
            ms = (time.perf_counter() - t0) * 1000
            items[side].append(_item(row, answer, ms, tokenize))
        step(i + 1, len(rows))
    output.mkdir(parents=True, exist_ok=True)
    runs = {}
    for side, name in (("base", base_gen.name), ("tuned", tuned_gen.name)):
        runs[side] = {"kind": "tune-heldout", "model": name, "run": str(run), "items": items[side]}
        (output / side).mkdir(exist_ok=True)
        text = json.dumps(runs[side], ensure_ascii=False, indent=2) + "\n"
        (output / side / "report.json").write_text(text, encoding="utf-8")
    comparison = cmp.compare(runs["base"], runs["tuned"], (base_gen.name, tuned_gen.name))
    checks = cmp.check(comparison, [cmp.parse_gate(g, list(comparison.deltas)) for g in gates])
    return cmp.write(comparison, output, checks)


def _held_out(manifest: dict[str, Any], data: Path | None) -> list[Row]:
    """The rows the run held out, found again by their keys in the data file."""
    path = data or Path(str(manifest.get("data", {}).get("path", "")))
    keys = set(manifest.get("held_out_keys") or [])
    if not keys:
        raise InputError(
            "the run held no rows out (train.eval_fraction = 0, or too few rows)",
            "train with a held-out share, or compare with dari eval answers on a golden set",
        )
    rows, _, _ = load_rows(path, manifest.get("method", "sft"))
    found = [r for r in rows if r.key in keys]
    if not found:
        raise InputError(
            f"none of the run's held-out rows are in {path}",
            "pass --data with the file the run was trained on",
        )
    return found


def _item(row: Row, answer: str, ms: float, tokenize: am.Tokenize) -> dict[str, Any]:
    reference = row.completion[0]["content"]
    question = row.prompt[-1]["content"].strip().splitlines()[-1]
    lang = detect_lang(question)
    dont_know = template_for(lang).dont_know
    metrics: dict[str, float] = {
        "token_f1": am.token_f1(answer, [reference], tokenize),
        "rouge_l": am.rouge_l(answer, [reference], tokenize),
        "exact_match": am.exact_match(answer, [reference]),
        "abstention_ok": float((dont_know in reference) == (dont_know in answer)),
        "cites": float(bool(_CITED.search(answer))),
        "latency_ms": round(ms, 1),
    }
    if row.rejected:
        good = metrics["token_f1"]
        bad = am.token_f1(answer, [row.rejected[0]["content"]], tokenize)
        metrics["prefers_chosen"] = 1.0 if good > bad else 0.5 if good == bad else 0.0
    return {
        "id": f"line-{row.line}",
        "question": question,
        "lang": lang,
        "tags": ["abstain" if dont_know in reference else "answer"],
        "answer": answer,
        "reference": reference,
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
    }

"""`dari cache check-pairs`: would a cached answer to sentence1 be served for sentence2? Measures
the cache's safety on any labelled pair set, with the settings in force."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dari.cache.answers import judge
from dari.cache.key import normalise
from dari.cache.meaning import MeaningParser
from dari.config import CacheSettings
from dari.errors import InputError
from dari.jsonl import check_target, write_jsonl

LABELS = ("label", "binary_label", "is_paraphrase")  # 1 = same meaning, if the file says


@dataclass
class PairReport:
    pairs: int = 0
    would_hit: int = 0
    bad_lines: list[str] = field(default_factory=list)  # "line 7: not JSON (…)"
    refused_by: dict[str, int] = field(default_factory=dict)
    labelled: dict[str, list[bool]] = field(default_factory=lambda: {"same": [], "different": []})

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pairs": self.pairs,
            "would_hit": self.would_hit,
            "bad_lines": len(self.bad_lines),
            "refused_by": dict(sorted(self.refused_by.items(), key=lambda kv: -kv[1])),
        }
        same, diff = self.labelled["same"], self.labelled["different"]
        if same:
            out["hit_rate_same_meaning"] = round(float(np.mean(same)), 4)
        if diff:
            out["false_hit_rate_different_meaning"] = round(float(np.mean(diff)), 4)
        return out


def read_pairs(path: Path, report: PairReport) -> list[tuple[int, dict[str, Any]]]:
    """The usable rows of a JSONL file; each unusable line is named in `report.bad_lines`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}", "give a JSONL file of pairs") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason})", "convert it") from None
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            report.bad_lines.append(f"line {n}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) and row[k].strip() for k in ("sentence1", "sentence2")
        ):
            report.bad_lines.append(f"line {n}: needs non-empty 'sentence1' and 'sentence2'")
            continue
        rows.append((n, row))
    return rows


def check_pairs(
    source: Path,
    output: Path,
    embed: Callable[[Sequence[str]], np.ndarray],
    parser: MeaningParser,
    settings: CacheSettings,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PairReport:
    """Judge every pair as the cache would; writes one JSON line per usable input line."""
    check_target(output, force)
    report = PairReport()
    rows = read_pairs(source, report)
    texts = sorted({r[k] for _, r in rows for k in ("sentence1", "sentence2")})
    vecs: dict[str, np.ndarray] = {}
    for i in range(0, len(texts), 32):
        part = texts[i : i + 32]
        vecs.update(zip(part, embed(part), strict=True))
        if progress:
            progress(len(part))
    out = []
    for n, row in rows:
        a, b = row["sentence1"], row["sentence2"]
        exact = normalise(a) == normalise(b)
        sim = 1.0 if exact else float(vecs[a] @ vecs[b])
        why = "" if exact else judge(sim, parser.parse(a), parser.parse(b), settings)
        _count(report, row, why)
        out.append(
            row | {"line": n, "would_hit": not why, "similarity": round(sim, 4), "refused_by": why}
        )
    write_jsonl(output, out, force)
    return report


def _count(report: PairReport, row: dict[str, Any], why: str) -> None:
    report.pairs += 1
    report.would_hit += not why
    if why:
        report.refused_by[why] = report.refused_by.get(why, 0) + 1
    label = next((row[k] for k in LABELS if k in row), None)
    if label is not None and str(label) in {"0", "1", "True", "False", "true", "false"}:
        same = str(label) in {"1", "True", "true"}
        report.labelled["same" if same else "different"].append(not why)

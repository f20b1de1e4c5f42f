"""Two answer-eval runs side by side: per-metric paired deltas (B − A) with bootstrap 95 %
intervals, per tag and language, the items that got worse, and gates for CI (`--fail-if`).

A run is a folder holding the `report.json` that `dari eval answers` writes; items are paired by
their `id`, and a metric's delta uses only the items where both runs have a value for it.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dari.errors import InputError
from dari.eval.metrics import paired_delta

RESAMPLES = 2000
SEED = 0
WORST = 10
STATS = ("delta", "ci_low", "ci_high")


def lower_is_better(metric: str) -> bool:
    """Latency, token and cost figures improve downwards; every quality score improves upwards."""
    return metric.endswith(("_ms", "_s", "_tokens", "tokens")) or "latency" in metric


@dataclass(frozen=True)
class Delta:
    """Mean of B − A over the `n` items both runs scored, with its 95 % bootstrap interval."""

    metric: str
    delta: float
    ci_low: float
    ci_high: float
    n: int
    mean_a: float
    mean_b: float


@dataclass(frozen=True)
class Change:
    """One item's value of one metric in both runs."""

    id: str
    question: str
    lang: str
    metric: str
    a: float
    b: float
    delta: float


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    paired: int
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    deltas: dict[str, Delta]
    by_tag: dict[str, dict[str, Delta]]
    by_lang: dict[str, dict[str, Delta]]
    worse: dict[str, list[Change]]
    resamples: int = RESAMPLES
    seed: int = SEED


@dataclass(frozen=True)
class Gate:
    """`METRIC[.STAT] (<|>) NUMBER`, read on a comparison's deltas; true means the gate fails."""

    expr: str
    metric: str
    stat: str
    op: str
    value: float

    def check(self, comparison: Comparison) -> GateResult:
        d = comparison.deltas.get(self.metric)
        if d is None or d.n == 0:
            return GateResult(self.expr, None, False, "no paired items with this metric")
        actual = float(getattr(d, self.stat))
        compare: Callable[[float, float], bool] = operator.lt if self.op == "<" else operator.gt
        return GateResult(self.expr, actual, compare(actual, self.value))


@dataclass(frozen=True)
class GateResult:
    expr: str
    actual: float | None
    failed: bool
    note: str = ""


@dataclass
class _Pairs:
    """Per metric: (item, a, b) for items where both values are numbers."""

    rows: dict[str, list[tuple[dict[str, Any], float, float]]] = field(default_factory=dict)


def load_run(folder: Path) -> dict[str, Any]:
    """A run's report.json (the folder, or the file itself), checked for the fields we read."""
    path = folder / "report.json" if folder.is_dir() else folder
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(
            f"no report.json in {folder}", "pass a folder written by dari eval answers --output"
        ) from exc
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}", "pass an answer-eval report.json") from exc
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        raise InputError(
            f"{path} has no list of items with ids",
            "compare answer-eval runs (dari eval answers), not retrieval runs",
        )
    return data


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value == value:  # NaN counts as missing
        return float(value)
    return None


def _pairs(a_items: Sequence[dict[str, Any]], b_items: Sequence[dict[str, Any]]) -> _Pairs:
    b_by_id = {str(i["id"]): i for i in b_items}
    out = _Pairs()
    for ia in a_items:
        ib = b_by_id.get(str(ia["id"]))
        if ib is None:
            continue
        ma, mb = ia.get("metrics") or {}, ib.get("metrics") or {}
        for name in sorted(set(ma) | set(mb)):
            va, vb = _number(ma.get(name)), _number(mb.get(name))
            out.rows.setdefault(name, [])
            if va is not None and vb is not None:
                out.rows[name].append((ib, va, vb))
    return out


def _delta(metric: str, rows: Sequence[tuple[Any, float, float]], resamples: int) -> Delta:
    a = [r[1] for r in rows]
    b = [r[2] for r in rows]
    if not rows:
        return Delta(metric, 0.0, 0.0, 0.0, 0, 0.0, 0.0)
    mean, lo, hi = paired_delta(a, b, resamples, SEED)
    return Delta(metric, mean, lo, hi, len(rows), sum(a) / len(a), sum(b) / len(b))


def _grouped(
    pairs: _Pairs, key: Callable[[dict[str, Any]], Sequence[str]], resamples: int
) -> dict[str, dict[str, Delta]]:
    groups: dict[str, dict[str, list[tuple[Any, float, float]]]] = {}
    for name, rows in pairs.rows.items():
        for row in rows:
            for g in key(row[0]):
                groups.setdefault(g, {}).setdefault(name, []).append(row)
    return {
        g: {name: _delta(name, rows, resamples) for name, rows in sorted(metrics.items())}
        for g, metrics in sorted(groups.items())
    }


def _tags(item: Mapping[str, Any]) -> list[str]:
    tags = item.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else [str(tags)]


def compare(
    run_a: Mapping[str, Any],
    run_b: Mapping[str, Any],
    names: tuple[str, str] = ("A", "B"),
    resamples: int = RESAMPLES,
) -> Comparison:
    """Deltas of run B against run A (B − A; a positive delta is an improvement unless the
    metric is one where lower is better, see `lower_is_better`)."""
    a_items, b_items = run_a["items"], run_b["items"]
    a_ids = {str(i["id"]) for i in a_items}
    b_ids = {str(i["id"]) for i in b_items}
    pairs = _pairs(a_items, b_items)
    deltas = {name: _delta(name, rows, resamples) for name, rows in pairs.rows.items()}
    worse: dict[str, list[Change]] = {}
    for name, rows in pairs.rows.items():
        sign = -1.0 if lower_is_better(name) else 1.0
        changes = [
            Change(
                str(it["id"]),
                str(it.get("question", "")),
                str(it.get("lang", "")),
                name,
                va,
                vb,
                vb - va,
            )
            for it, va, vb in rows
            if sign * (vb - va) < 0
        ]
        changes.sort(key=lambda c: (sign * c.delta, c.id))
        worse[name] = changes[:WORST]
    return Comparison(
        run_a=names[0],
        run_b=names[1],
        paired=len(a_ids & b_ids),
        only_a=tuple(sorted(a_ids - b_ids)),
        only_b=tuple(sorted(b_ids - a_ids)),
        deltas=deltas,
        by_tag=_grouped(pairs, _tags, resamples),
        by_lang=_grouped(pairs, lambda it: [str(it.get("lang") or "?")], resamples),
        worse=worse,
        resamples=resamples,
    )


_GATE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w@\-/]*?)(?:\.(?P<stat>delta|ci_low|ci_high))?\s*"
    r"(?P<op>[<>])\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


def parse_gate(expr: str, metrics: Sequence[str]) -> Gate:
    """Parse `faithfulness < -0.02` or `faithfulness.ci_high < 0` (the delta B − A, or an end of
    its 95 % interval). Raises InputError for a malformed expression or an unknown metric."""
    m = _GATE.match(expr)
    if not m:
        raise InputError(
            f"cannot read the gate '{expr}'",
            'write METRIC < NUMBER or METRIC > NUMBER, e.g. --fail-if "faithfulness < -0.02" '
            'or "faithfulness.ci_high < 0"',
        )
    metric = m["metric"]
    if metric not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        raise InputError(f"unknown metric '{metric}' in the gate '{expr}'", f"known: {known}")
    return Gate(expr.strip(), metric, m["stat"] or "delta", m["op"], float(m["value"]))


def check(comparison: Comparison, gates: Sequence[Gate]) -> list[GateResult]:
    return [g.check(comparison) for g in gates]


def _r(x: float) -> float:
    return round(x, 4)


def _delta_json(d: Delta) -> dict[str, Any]:
    return {
        "delta": _r(d.delta),
        "ci95": [_r(d.ci_low), _r(d.ci_high)],
        "n": d.n,
        "a": _r(d.mean_a),
        "b": _r(d.mean_b),
    }


def to_json(c: Comparison, gates: Sequence[GateResult] = ()) -> dict[str, Any]:
    return {
        "kind": "compare",
        "a": c.run_a,
        "b": c.run_b,
        "paired_items": c.paired,
        "only_in_a": list(c.only_a),
        "only_in_b": list(c.only_b),
        "metrics": {name: _delta_json(d) for name, d in sorted(c.deltas.items())},
        "by_tag": {g: {n: _delta_json(d) for n, d in m.items()} for g, m in c.by_tag.items()},
        "by_lang": {g: {n: _delta_json(d) for n, d in m.items()} for g, m in c.by_lang.items()},
        "worse": {
            name: [{**asdict(ch), "delta": _r(ch.delta)} for ch in rows]
            for name, rows in sorted(c.worse.items())
        },
        "gates": [asdict(g) for g in gates],
        "failed": any(g.failed for g in gates),
        "note": f"delta = B − A over items both runs scored; ci95: paired percentile bootstrap "
        f"over items, {c.resamples} resamples, seed {c.seed}; worse: the {WORST} largest drops "
        "per metric (rises for latency/token metrics)",
    }


def write(c: Comparison, output: Path, gates: Sequence[GateResult] = ()) -> dict[str, Any]:
    """compare.json and compare.html into `output`; returns the JSON."""
    from dari.eval.compare_report import to_html

    output.mkdir(parents=True, exist_ok=True)
    data = to_json(c, gates)
    (output / "compare.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (output / "compare.html").write_text(to_html(data), encoding="utf-8")
    return data

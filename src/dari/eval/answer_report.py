"""Reports of an answer eval run: `report.json` for machines (and `dari eval compare`), and one
self-contained `report.html` with plots (inline SVG).

report.json::

    {
      "kind": "answers",
      "run": {"golden", "collection", "model", "prompt", "temperature", "seed", "samples",
              "embedder", "retrieval": {...}, "prompt_versions": [...],
              "started", "finished", "items": <scored>, "resumed": <from an earlier run>,
              "skipped": [{"line": <number>, "reason": "..."}]},
      "metrics": {<name>: {"mean", "low", "high", "n"}},       # over all items
      "by_tag":  {<tag>: {<name>: {"mean", "low", "high", "n"}}},
      "by_lang": {<en|ko>: {<name>: {"mean", "low", "high", "n"}}},
      "items": [{"id", "question", "lang", "tags", "answer", "outcome", "trace_id",
                 "metrics": {<name>: <value> | null}, ...}]
    }

Every metric of `dari.eval.answers.METRICS` is always present; `mean`/`low`/`high` are null and
`n` is 0 where no item had a value (e.g. `agreement` without --samples). `low`/`high`: 95 %
percentile bootstrap interval of the mean over items (1000 resamples). Items also carry
`references`, `unanswerable`, `gold_ids`, `cited_ids`, `prompt_version`, `sample_trace_ids`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dari.eval.answers import METRICS, AnswerEval, AnswerRun, ItemProgress
from dari.eval.golden import GoldenSet
from dari.eval.metrics import bootstrap_ci
from dari.eval.report import _pyplot, _svg

# Shown in the table and plots as shares (0..1); the rest are amounts (ms, tokens).
SCORES = METRICS[:11]


def aggregate(items: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in METRICS:
        values = [i["metrics"].get(name) for i in items]
        have = [float(v) for v in values if v is not None]
        if not have:
            out[name] = {"mean": None, "low": None, "high": None, "n": 0}
            continue
        lo, hi = bootstrap_ci(have)
        mean = sum(have) / len(have)
        out[name] = {
            "mean": round(mean, 4),
            "low": round(lo, 4),
            "high": round(hi, 4),
            "n": len(have),
        }
    return out


def summary(run: AnswerRun) -> dict[str, Any]:
    items = run.results
    tags = sorted({t for i in items for t in i["tags"]})
    langs = sorted({i["lang"] for i in items})
    return {
        "kind": "answers",
        "run": {
            **run.config,
            "prompt_versions": sorted({i["prompt_version"] for i in items}),
            "started": run.started,
            "finished": run.finished,
            "items": len(items),
            "resumed": run.resumed,
            "skipped": [{"line": s.line, "reason": s.reason} for s in run.golden.skipped],
        },
        "metrics": aggregate(items),
        "by_tag": {t: aggregate([i for i in items if t in i["tags"]]) for t in tags},
        "by_lang": {lang: aggregate([i for i in items if i["lang"] == lang]) for lang in langs},
        "items": items,
    }


def write(run: AnswerRun, output: Path) -> dict[str, Any]:
    """Write report.json and report.html into `output`; returns the report."""
    output.mkdir(parents=True, exist_ok=True)
    data = summary(run)
    (output / "report.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (output / "report.html").write_text(to_html(data), encoding="utf-8")
    return data


def evaluate(
    runner: AnswerEval,
    golden: GoldenSet,
    output: Path,
    progress: ItemProgress | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Answer and score `golden` into `output` (resuming what is there) and write both reports;
    returns the report. `dari eval answers` and the server's answer runs are this call."""
    return write(runner.run(golden, output, progress, limit), output)


# -- HTML --------------------------------------------------------------------------------------


def _distributions(data: dict[str, Any]) -> str:
    plt = _pyplot()
    shown = [m for m in SCORES if data["metrics"][m]["n"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(shown) + 2), 3.8))
    if shown:
        values = [
            [i["metrics"][m] for i in data["items"] if i["metrics"].get(m) is not None]
            for m in shown
        ]
        ax.boxplot(values, tick_labels=shown, showmeans=True)
    ax.set_ylim(-0.02, 1.02)
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("Score distributions over items (box: quartiles, triangle: mean)")
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def _group_bars(groups: dict[str, Any], title: str) -> str:
    plt = _pyplot()
    shown = ["token_f1", "rouge_l", "embedding_similarity", "faithfulness", "abstention_accuracy"]
    labels = list(groups)
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(labels) + 2), 3.6))
    width = 0.8 / len(shown)
    for k, name in enumerate(shown):
        xs = [j + (k - (len(shown) - 1) / 2) * width for j in range(len(labels))]
        cells = [groups[g][name] for g in labels]
        means = [c["mean"] or 0.0 for c in cells]
        err = [
            [(c["mean"] - c["low"]) if c["n"] else 0.0 for c in cells],
            [(c["high"] - c["mean"]) if c["n"] else 0.0 for c in cells],
        ]
        ax.bar(xs, means, width, yerr=err, capsize=2, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def _latency(data: dict[str, Any]) -> str:
    plt = _pyplot()
    ms = [i["metrics"]["latency_ms"] for i in data["items"] if i["metrics"].get("latency_ms")]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist([m / 1000 for m in ms], bins=min(30, max(5, len(ms) // 2)))
    ax.set_xlabel("seconds per item (the whole pipeline)")
    ax.set_ylabel("items")
    ax.set_title("Latency")
    ax.grid(alpha=0.3)
    return _svg(fig)


def _cell(c: dict[str, Any], amount: bool) -> str:
    if not c["n"]:
        return "<td>–</td>"
    f = "{:.0f}" if amount else "{:.3f}"
    return (
        f"<td>{f.format(c['mean'])}<small> [{f.format(c['low'])}, {f.format(c['high'])}]"
        f" n={c['n']}</small></td>"
    )


def _table(groups: dict[str, dict[str, Any]], first: str) -> str:
    e = html.escape
    head = "".join(f"<th>{e(m)}</th>" for m in METRICS)
    rows = [
        f"<tr><th>{e(g)}</th>" + "".join(_cell(row[m], m not in SCORES) for m in METRICS) + "</tr>"
        for g, row in groups.items()
    ]
    return f"<table><tr><th>{e(first)}</th>{head}</tr>{''.join(rows)}</table>"


def _items_table(items: Sequence[dict[str, Any]]) -> str:
    e = html.escape
    shown = ("token_f1", "faithfulness", "citation_recall", "abstention_accuracy")
    rows = []
    for i in items:
        cells = "".join(
            "<td>–</td>" if i["metrics"].get(m) is None else f"<td>{i['metrics'][m]:.2f}</td>"
            for m in shown
        )
        rows.append(
            f"<tr><td class='l'>{e(i['id'])}</td><td class='l'>{e(i['question'])}</td>"
            f"<td class='l'>{e(i['answer'])}</td><td>{e(i['outcome'])}</td>{cells}</tr>"
        )
    head = "".join(f"<th>{m}</th>" for m in shown)
    return (
        "<table class='items'><tr><th>id</th><th>question</th><th>answer</th><th>outcome</th>"
        f"{head}</tr>{''.join(rows)}</table>"
    )


def to_html(data: dict[str, Any]) -> str:
    e = html.escape
    run = data["run"]
    skipped = "".join(f"<li>line {s['line']}: {e(s['reason'])}</li>" for s in run["skipped"])
    plots = [_distributions(data), _latency(data)]
    if data["by_tag"]:
        plots.append(_group_bars(data["by_tag"], "Per tag (mean, 95 % CI)"))
    if len(data["by_lang"]) > 1:
        plots.append(_group_bars(data["by_lang"], "Per language (mean, 95 % CI)"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dari answer eval — {e(run["collection"])}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }}
td.l {{ text-align: left; white-space: normal; max-width: 28em; }}
th {{ background: #f6f6f6; }} small {{ color: #777; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.plots svg {{ max-width: 100%; height: auto; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
</style></head><body>
<h1>Answer eval: {e(run["collection"])}</h1>
<p>{run["items"]} items from <code>{e(run["golden"])}</code> ({run["resumed"]} resumed),
model <code>{e(run["model"])}</code>, prompt <code>{e(", ".join(run["prompt_versions"]))}</code>,
top_k {run["retrieval"]["top_k"]}, samples {run["samples"]}, embedder
<code>{e(run["embedder"])}</code>. Started {e(run["started"])}, finished {e(run["finished"])}.</p>
<p>Skipped lines: {len(run["skipped"])}</p><ul>{skipped}</ul>
<h2>Overall</h2>{_table({"all": data["metrics"]}, "")}
<h2>By language</h2>{_table(data["by_lang"], "lang")}
<h2>By tag</h2>{_table(data["by_tag"], "tag") if data["by_tag"] else "<p>no tags</p>"}
<p><small>mean [95 % bootstrap interval] n = items with a value. answer_relevance is an
embedding proxy (cosine of question and answer); faithfulness is the share of cited sentences
the groundedness guard finds supported by their source.</small></p>
<div class="plots">{"".join(plots)}</div>
<h2>Items</h2>{_items_table(data["items"])}
</body></html>
"""

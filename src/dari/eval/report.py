"""Reports of a retrieval eval run: a JSON summary for machines, per-query JSONL, and one
self-contained HTML page with plots (inline SVG)."""

from __future__ import annotations

import html
import io
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dari.errors import MissingExtra
from dari.eval.metrics import METRICS, RECALL_AT, bootstrap_ci, paired_delta, percentile
from dari.eval.retrieval import ConfigResult, RetrievalRun


def summary(run: RetrievalRun) -> dict[str, Any]:
    """Metrics per configuration under their names (`ndcg@10`, `recall@5`, …), each with a 95 %
    bootstrap interval under `ci95`, and the paired difference to the first configuration."""
    base = run.results[0]
    qids = [q.id for q in run.evalset.queries]
    configs: dict[str, Any] = {}
    for r in run.results:
        row: dict[str, Any] = {}
        ci: dict[str, list[float]] = {}
        vs: dict[str, Any] = {}
        for name in METRICS:
            values = [r.metrics[name][q] for q in qids]
            row[name] = round(sum(values) / len(values), 4)
            ci[name] = [round(x, 4) for x in bootstrap_ci(values)]
            if r is not base:
                delta, lo, hi = paired_delta([base.metrics[name][q] for q in qids], values)
                vs[name] = {"delta": round(delta, 4), "ci95": [round(lo, 4), round(hi, 4)]}
        if r.answer_in_context:
            hits = [float(r.answer_in_context[q]) for q in qids if q in r.answer_in_context]
            row["answer_in_context"] = round(sum(hits) / len(hits), 4)
            ci["answer_in_context"] = [round(x, 4) for x in bootstrap_ci(hits)]
        lat = list(r.latency_ms.values())
        row["latency_ms_p50"] = round(percentile(lat, 50), 2)
        row["latency_ms_p95"] = round(percentile(lat, 95), 2)
        row["ci95"] = ci
        if vs:
            row["vs_" + base.spec.label] = vs
        row["settings"] = {k: r.settings[k] for k in sorted(r.settings)}
        configs[r.spec.label] = row
    es = run.evalset
    return {
        "kind": "retrieval",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "name": es.name,
            "path": str(es.corpus.parent),
            "format": es.kind,
            "lang": es.lang,
            "queries": len(es.queries),
            "skipped_queries": es.skipped,
            "documents": run.documents,
            "chunks": run.chunks,
            "corpus_sha256": es.fingerprint,
        },
        "collection": run.collection,
        "ingest_s": round(run.ingest_s, 2),
        "index": run.settings,
        "baseline": base.spec.label,
        "configs": configs,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "note": "metrics are means over queries (trec_eval definitions, documents ranked by "
        "their best section); ci95: percentile bootstrap over queries, 1000 resamples; "
        "vs_<baseline>: paired difference to the first configuration",
    }


def per_query(run: RetrievalRun) -> list[dict[str, Any]]:
    rows = []
    for r in run.results:
        for q in run.evalset.queries:
            row: dict[str, Any] = {"config": r.spec.label, "query_id": q.id}
            row.update({name: round(r.metrics[name][q.id], 4) for name in METRICS})
            row["latency_ms"] = round(r.latency_ms[q.id], 2)
            if q.id in r.answer_in_context:
                row["answer_in_context"] = r.answer_in_context[q.id]
            row["ranked"] = r.ranked[q.id][:10]
            row["gold"] = sorted(q.gold)
            rows.append(row)
    return rows


def write(run: RetrievalRun, output: Path) -> dict[str, Any]:
    """Write report.json, per_query.jsonl and report.html into `output`; returns the summary."""
    output.mkdir(parents=True, exist_ok=True)
    data = summary(run)
    (output / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    with (output / "per_query.jsonl").open("w", encoding="utf-8") as f:
        for row in per_query(run):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (output / "report.html").write_text(to_html(data, run), encoding="utf-8")
    return data


# -- HTML --------------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtra("matplotlib", "eval") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]  # drop the XML prolog and doctype: inline in HTML


def _metric_bars(data: dict[str, Any]) -> str:
    plt = _pyplot()
    labels = list(data["configs"])
    shown = ["ndcg@10", "recall@5", "mrr@10"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(labels) + 2), 3.6))
    width = 0.8 / len(shown)
    for i, name in enumerate(shown):
        xs = [j + (i - (len(shown) - 1) / 2) * width for j in range(len(labels))]
        rows = [data["configs"][c] for c in labels]
        means = [row[name] for row in rows]
        lows = [row[name] - row["ci95"][name][0] for row in rows]
        highs = [row["ci95"][name][1] - row[name] for row in rows]
        ax.bar(xs, means, width, yerr=[lows, highs], capsize=3, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_title("Quality per configuration (bars: mean, whiskers: 95 % bootstrap CI)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def _recall_curve(data: dict[str, Any]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, row in data["configs"].items():
        ax.plot(RECALL_AT, [row[f"recall@{k}"] for k in RECALL_AT], marker="o", label=label)
    ax.set_xticks(RECALL_AT)
    ax.set_xlabel("k (documents)")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.set_title("Recall at k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _svg(fig)


def _latency(results: list[ConfigResult]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(results) + 2), 3.6))
    ax.boxplot(
        [list(r.latency_ms.values()) for r in results],
        tick_labels=[r.spec.label for r in results],
        showfliers=False,
    )
    ax.set_ylabel("ms per query")
    ax.set_title("Retrieval latency (box: quartiles, whiskers: 1.5 IQR)")
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def to_html(data: dict[str, Any], run: RetrievalRun) -> str:
    e = html.escape
    ds = data["dataset"]
    has_answers = any("answer_in_context" in row for row in data["configs"].values())
    head = ["configuration", *METRICS, *(["answer in context"] if has_answers else [])]
    head += ["p50 ms", "p95 ms", f"Δ nDCG@10 vs {data['baseline']}"]
    rows = []
    for label, row in data["configs"].items():
        cells = [f"<th>{e(label)}</th>"]
        for name in (*METRICS, *(["answer_in_context"] if has_answers else [])):
            if name not in row:
                cells.append("<td>–</td>")
                continue
            lo, hi = row["ci95"][name]
            cells.append(f"<td>{row[name]:.3f}<small> [{lo:.3f}, {hi:.3f}]</small></td>")
        cells.append(f"<td>{row['latency_ms_p50']:.1f}</td><td>{row['latency_ms_p95']:.1f}</td>")
        vs = row.get("vs_" + data["baseline"], {}).get("ndcg@10")
        if vs:
            lo, hi = vs["ci95"]
            tone = "up" if lo > 0 else "down" if hi < 0 else ""
            cells.append(
                f'<td class="{tone}">{vs["delta"]:+.3f}<small> [{lo:+.3f}, {hi:+.3f}]</small></td>'
            )
        else:
            cells.append("<td>baseline</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    skipped = ", ".join(f"{n} {why}" for why, n in ds["skipped_queries"].items()) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dari retrieval eval — {e(ds["name"])}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }}
th {{ background: #f6f6f6; }} small {{ color: #777; }}
td.up {{ background: #e7f6e7; }} td.down {{ background: #fbe9e9; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.plots svg {{ max-width: 100%; height: auto; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
</style></head><body>
<h1>Retrieval eval: {e(ds["name"])}</h1>
<p>{ds["queries"]} queries ({e(ds["format"])}, language {e(ds["lang"])};
skipped: {e(skipped)}) over {ds["documents"]} documents / {ds["chunks"]} chunks,
embedder <code>{e(data["index"]["embedder"])}</code>,
collection <code>{e(data["collection"])}</code>. Created {e(data["created"])}.</p>
<table><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr>
{"".join(rows)}</table>
<p><small>{e(data["note"])}. Green: better than the baseline beyond noise; red: worse.</small></p>
<div class="plots">{_metric_bars(data)}{_recall_curve(data)}{_latency(run.results)}</div>
</body></html>
"""

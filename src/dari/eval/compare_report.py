"""The comparison of two answer-eval runs as one self-contained HTML page (inline SVG plots)."""

from __future__ import annotations

import html
from typing import Any

from dari.eval.compare import lower_is_better
from dari.eval.report import _pyplot, _svg


def _tone(name: str, row: dict[str, Any]) -> str:
    lo, hi = row["ci95"]
    better, worse = (hi < 0, lo > 0) if lower_is_better(name) else (lo > 0, hi < 0)
    return "up" if better else "down" if worse else ""


def _delta_bars(data: dict[str, Any]) -> str:
    plt = _pyplot()
    names = [n for n, row in data["metrics"].items() if row["n"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 3.6))
    rows = [data["metrics"][n] for n in names]
    colours = [
        {"up": "#3a9a3a", "down": "#c43c3c"}.get(_tone(n, r), "#8a8a8a")
        for n, r in zip(names, rows, strict=True)
    ]
    ax.bar(
        range(len(names)),
        [r["delta"] for r in rows],
        yerr=[[r["delta"] - r["ci95"][0] for r in rows], [r["ci95"][1] - r["delta"] for r in rows]],
        capsize=4,
        color=colours,
    )
    ax.axhline(0, color="#333", linewidth=0.8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("B − A")
    ax.set_title("Delta per metric (bars: mean, whiskers: 95 % paired bootstrap CI)")
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def _group_bars(groups: dict[str, dict[str, Any]], title: str) -> str:
    plt = _pyplot()
    labels = list(groups)
    names = sorted({n for m in groups.values() for n, r in m.items() if r["n"]})
    if not labels or not names:
        return ""
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(labels) * len(names) + 2), 3.6))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(labels))]
        rows = [groups[g].get(name, {"delta": 0.0, "ci95": [0.0, 0.0]}) for g in labels]
        ax.bar(
            xs,
            [r["delta"] for r in rows],
            width,
            yerr=[
                [r["delta"] - r["ci95"][0] for r in rows],
                [r["ci95"][1] - r["delta"] for r in rows],
            ],
            capsize=2,
            label=name,
        )
    ax.axhline(0, color="#333", linewidth=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("B − A")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def _table(groups: dict[str, dict[str, Any]], first: str) -> str:
    e = html.escape
    names = sorted({n for m in groups.values() for n in m})
    head = "".join(f"<th>{e(h)}</th>" for h in (first, *names))
    body = []
    for label, metrics in groups.items():
        cells = [f"<th>{e(label)}</th>"]
        for name in names:
            row = metrics.get(name)
            if not row or not row["n"]:
                cells.append("<td>–</td>")
                continue
            lo, hi = row["ci95"]
            cells.append(
                f'<td class="{_tone(name, row)}">{row["delta"]:+.3f}'
                f"<small> [{lo:+.3f}, {hi:+.3f}] n={row['n']}</small></td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _worse(data: dict[str, Any]) -> str:
    e = html.escape
    parts = []
    for name, rows in data["worse"].items():
        if not rows:
            continue
        trs = "".join(
            f"<tr><td>{e(r['id'])}</td><td>{e(r['lang'])}</td>"
            f'<td class="q">{e(r["question"][:160])}</td>'
            f"<td>{r['a']:.3f}</td><td>{r['b']:.3f}</td>"
            f'<td class="down">{r["delta"]:+.3f}</td></tr>'
            for r in rows
        )
        parts.append(
            f"<h3>{e(name)}</h3><table><tr><th>id</th><th>lang</th><th>question</th>"
            f"<th>A</th><th>B</th><th>Δ</th></tr>{trs}</table>"
        )
    return "".join(parts) or "<p>No item got worse on any metric.</p>"


def _gates(data: dict[str, Any]) -> str:
    e = html.escape
    if not data["gates"]:
        return ""
    rows = "".join(
        f'<tr><td class="q"><code>{e(g["expr"])}</code></td>'
        f"<td>{'–' if g['actual'] is None else format(g['actual'], '+.4f')}</td>"
        f'<td class="{"down" if g["failed"] else "up"}">{"FAIL" if g["failed"] else "pass"}'
        f"{(' (' + e(g['note']) + ')') if g['note'] else ''}</td></tr>"
        for g in data["gates"]
    )
    return (
        "<h2>Gates</h2><table><tr><th>fails if</th><th>value</th><th>result</th></tr>"
        f"{rows}</table>"
    )


def to_html(data: dict[str, Any]) -> str:
    e = html.escape
    overall = {"all items": data["metrics"]}
    unpaired = len(data["only_in_a"]) + len(data["only_in_b"])
    plots = _delta_bars(data) + _group_bars(data["by_tag"], "Delta per tag (95 % CI)")
    plots += _group_bars(data["by_lang"], "Delta per language (95 % CI)")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dari eval compare — {e(data["a"])} vs {e(data["b"])}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }}
td.q {{ text-align: left; white-space: normal; max-width: 520px; }}
th {{ background: #f6f6f6; }} small {{ color: #777; }}
td.up {{ background: #e7f6e7; }} td.down {{ background: #fbe9e9; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.plots svg {{ max-width: 100%; height: auto; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
</style></head><body>
<h1>Answer eval: B = <code>{e(data["b"])}</code> against A = <code>{e(data["a"])}</code></h1>
<p>{data["paired_items"]} items in both runs; {unpaired} in only one of them (left out).</p>
{_gates(data)}
<h2>Deltas (B − A)</h2>
{_table(overall, "")}
<div class="plots">{plots}</div>
<h2>Per tag</h2>{_table(data["by_tag"], "tag")}
<h2>Per language</h2>{_table(data["by_lang"], "lang")}
<h2>Items that got worse</h2>{_worse(data)}
<p><small>{e(data["note"])}. Green: better beyond resampling noise; red: worse.</small></p>
</body></html>
"""

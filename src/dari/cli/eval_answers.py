"""`dari eval answers`: a golden set through the full pipeline, scored and reported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dari.cli import render


def eval_answers(
    golden: Annotated[
        Path,
        typer.Option(
            "--golden",
            "-g",
            help="JSONL, one item a line: question, answer or answers, optional id, gold_ids "
            "(or sources), tags, lang (en/ko), unanswerable. `dari feedback export --format "
            "golden` writes one.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Folder for items.jsonl, report.json and report.html; rerun with the same "
            "folder to resume.",
        ),
    ],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name.")] = (
        "default"
    ),
    prompt: Annotated[str | None, typer.Option(help="Prompt, NAME or NAME@VERSION.")] = None,
    model: Annotated[str | None, typer.Option(help="LLM: default, small, ci or a path.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", help="Sources to use.")] = None,
    config: Annotated[
        list[str] | None,
        typer.Option("--config", help="A retrieval setting, KEY=VALUE (repeatable)."),
    ] = None,
    samples: Annotated[
        int,
        typer.Option(help="Answers per question for self-consistency (agreement); 1 = off."),
    ] = 1,
    limit: Annotated[int | None, typer.Option(help="Only the first N items.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Answer a golden set with the full pipeline and score every answer: exact match, token
    F1, ROUGE-L, BLEU, embedding similarity, citation precision/recall, abstention accuracy,
    faithfulness, answer relevance, latency and tokens, with 95 % bootstrap intervals."""
    from dari.app import Dari
    from dari.config import load_settings
    from dari.eval import answer_report
    from dari.eval.answers import AnswerEval, eval_settings
    from dari.eval.golden import load_golden, require_items

    base = load_settings()
    settings = eval_settings(base, prompt, model, top_k, config or [])
    gold = require_items(load_golden(golden))
    console = Console(stderr=json_out, highlight=False)
    for s in gold.skipped:
        console.print(f"[yellow]skipped[/] line {s.line}: {escape(s.reason)}", highlight=False)
    dari = Dari(settings)
    try:
        runner = AnswerEval(dari, collection, samples)
        with render.QueryBar(console, disable=json_out, unit="items") as bar:
            data = answer_report.evaluate(runner, gold, output, bar, limit)
    finally:
        dari.close()
    if json_out:
        print(render.to_json({k: v for k, v in data.items() if k != "items"}))
    else:
        show(console, data, output)


def show(console: Console, data: dict[str, Any], output: Path) -> None:
    """The aggregate table: one row per metric, overall and per language."""
    run = data["run"]
    langs = list(data["by_lang"])
    table = Table(
        title=f"answer eval: {escape(run['collection'])} ({run['items']} items, "
        f"{len(run['skipped'])} lines skipped, model {escape(run['model'])})"
    )
    table.add_column("metric", no_wrap=True)
    for head in ("all", *langs):
        table.add_column(head, justify="right", no_wrap=True)
    for name, cell in data["metrics"].items():
        cells = [_fmt(cell, name)] + [_fmt(data["by_lang"][g][name], name) for g in langs]
        table.add_row(name, *cells)
    console.print(table)
    console.print(f"report: {escape(str(output / 'report.html'))} (and report.json)")


def _fmt(cell: dict[str, Any], name: str) -> str:
    if not cell["n"]:
        return "[dim]–[/]"
    amount = name in ("latency_ms", "prompt_tokens", "completion_tokens")
    half = (cell["high"] - cell["low"]) / 2
    if amount:
        return f"{cell['mean']:.0f}[dim]±{half:.0f}[/]"
    return f"{cell['mean']:.3f}[dim]±{half:.2f} n={cell['n']}[/]"

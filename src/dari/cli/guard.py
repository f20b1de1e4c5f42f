"""`dari guard`: check a text or a file with the guards, train their models, read the audit log."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from dari.app import Dari
from dari.cli import render
from dari.config import load_settings
from dari.errors import InputError
from dari.guards.batch import score_file, summary
from dari.types import Stage

guard_app = typer.Typer(no_args_is_help=True, help="Guardrails: check, train, audit.")

StageOpt = Annotated[
    Stage,
    typer.Option(
        "--stage", "-s", help="input (a question), context (a source), output (an answer)."
    ),
]


@guard_app.command("check")
def check(
    text: Annotated[str | None, typer.Argument(help="The text to check.")] = None,
    stage: StageOpt = Stage.INPUT,
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Use this collection's policy.")
    ] = "",
    question: Annotated[
        str, typer.Option(help="Output stage: the question the answer replies to.")
    ] = "",
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="A JSONL file, one text per line.")
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where --input's scored lines go.")
    ] = None,
    field: Annotated[str, typer.Option(help="The JSONL field holding the text.")] = "text",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    judge: Annotated[
        str,
        typer.Option(
            help="Ask the LLM judge about questions: uncertain (where the classifier is unsure), "
            "always, or off; default guards.judge.mode."
        ),
    ] = "",
) -> None:
    """Explain what the guards make of TEXT, or score every line of --input into --output."""
    settings = load_settings()
    if judge:
        try:
            guards = settings.guards.with_judge(judge)
        except ValidationError:
            raise InputError(
                f"unknown --judge mode {judge!r}", "use uncertain, always or off"
            ) from None
        settings = settings.model_copy(update={"guards": guards})
    dari = Dari(settings)
    console = Console(stderr=json_out, highlight=False)
    if input_file is not None:
        if output_file is None:
            raise InputError("--input needs --output", "add --output scored.jsonl")
        if not input_file.is_file():
            raise InputError(f"the input file {input_file} does not exist", "check the path")
        with input_file.open(encoding="utf-8", errors="replace") as f:
            total = sum(1 for line in f if line.strip())
        with render.QueryBar(console, disable=json_out, unit="lines", prefix="") as bar:
            bar.start("guard check", total)
            counts = score_file(
                lambda t, s: dari.check(t, s, collection),
                input_file,
                output_file,
                stage,
                field,
                bar.advance,
            )
        if json_out:
            print(json.dumps(dict(counts)))
        else:
            console.print(
                f"[green]ok[/] {sum(counts.values())} lines → {output_file}: {dict(counts)}"
            )
        return
    if text is None:
        raise InputError("nothing to check", 'give a text (dari guard check "...") or --input FILE')
    result = dari.check(text, stage, collection, question)
    if json_out:
        verdicts = [dataclasses.asdict(v) for v in result.verdicts]
        print(render.to_json({**summary(result), "text": result.text, "verdicts": verdicts}))
        return
    table = Table(
        "guard", "flagged", "action", "score", "rule", "detail", "ms", title=f"{stage} guards"
    )
    for v in result.verdicts:
        style = "red" if v.action == "block" else ("yellow" if v.flagged else "")
        table.add_row(
            v.guard,
            "yes" if v.flagged else "no",
            str(v.action),
            f"{v.score:.3f}",
            v.rule,
            v.detail,
            f"{v.ms:.1f}",
            style=style,
        )
    console.print(table)
    decided = summary(result)
    console.print(
        f"verdict: [bold]{decided['verdict']}[/]"
        + (f" ({decided['guard']})" if decided["guard"] else "")
    )
    if result.changed:
        console.print(f"after redaction: {result.text}")


@guard_app.command("train")
def train(
    data: Annotated[
        Path,
        typer.Option(
            "--data", "-d", help="The shared data folder (prompt_injection/, ko_toxicity/…)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the model files.")],
    embeddings: Annotated[
        bool,
        typer.Option(
            help="Also train the n-gram + e5 injection model (embeds ~19k texts once, cached)."
        ),
    ] = True,
) -> None:
    """Train the injection and toxicity classifiers from public labelled data, reproducibly.
    Use them with guards.models_dir = OUTPUT (the bundled ones were made by this command)."""
    from dari.guards.train import train_all

    settings = load_settings()
    console = Console(highlight=False)
    with render.QueryBar(console, unit="rows", prefix="") as bar:
        cards = train_all(data, output, settings.home_dir / "guard-train", embeddings, bar)
    for name, card in cards.items():
        console.print(f"[green]ok[/] {name}: {json.dumps(card.get('test', {}))}")


@guard_app.command("audit")
def audit(
    verify: Annotated[bool, typer.Option(help="Check the hash chain of the whole log.")] = False,
    last: Annotated[int, typer.Option(help="Show the last N flagged verdicts.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show recent flagged verdicts from the audit log, or verify that it was not edited."""
    dari = Dari(load_settings())
    log = dari.audit
    console = Console(highlight=False)
    if verify:
        lines, broken = log.verify()
        if json_out:
            print(json.dumps({"lines": lines, "broken_at": broken}))
        elif broken is None:
            console.print(f"[green]ok[/] {lines} lines, hash chain intact ({log.where})")
        else:
            console.print(f"[red]broken[/] at line {broken} of {lines} ({log.where})")
        if broken is not None:
            raise typer.Exit(65)
        return
    flagged = [r for r in log.records() if r.get("flagged")][-last:]
    if json_out:
        print(json.dumps(flagged, ensure_ascii=False))
        return
    table = Table("time", "trace", "stage", "guard", "action", "rule", "score", title=log.where)
    for r in flagged:
        table.add_row(
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"])),
            r["trace"][:8],
            r["stage"],
            r["guard"],
            r["action"],
            r["rule"],
            f"{r['score']:.3f}",
        )
    console.print(table)

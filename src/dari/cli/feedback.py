"""`dari feedback`: record 👍/👎, ratings, comments, corrections, approvals and signals on answers;
list them; export SFT, DPO and golden sets; report how answers are received."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dari.app import Dari
from dari.cli import render
from dari.config import load_settings
from dari.errors import InputError
from dari.feedback.export import ExportFormat, ExportReport, export
from dari.feedback.report import TOP_DISLIKED, FeedbackReport, Share, report
from dari.feedback.store import Feedback, FeedbackStore, Signal, Thumb

feedback_app = typer.Typer(
    no_args_is_help=True, help="Feedback on answers: record, list, export, report."
)

TraceId = Annotated[str, typer.Argument(help="The trace_id that dari ask --json prints.")]
OnlyCollection = Annotated[
    str | None, typer.Option("--collection", "-c", help="Only this collection.")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_MARKS = {"up": "👍", "down": "👎", "approve": "✅"}


@contextmanager
def _feedback() -> Iterator[FeedbackStore]:
    dari = Dari(load_settings())
    try:
        yield FeedbackStore(dari.store)
    finally:
        dari.close()


@feedback_app.command("add")
def add(
    trace_id: TraceId,
    up: Annotated[bool, typer.Option("--up", help="👍 the answer was good.")] = False,
    down: Annotated[bool, typer.Option("--down", help="👎 the answer was bad.")] = False,
    rating: Annotated[
        int | None, typer.Option("--rating", "-r", help="1 (bad) to 5 (excellent).")
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", "-m", help="A remark.")] = None,
    correction: Annotated[
        str | None, typer.Option("--correction", help="The answer as it should have been.")
    ] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Operator approval: the answer may be reused.")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Record explicit feedback on one answer (personal data in texts is redacted)."""
    if up and down:
        raise InputError("--up and --down contradict each other", "give one of them")
    thumb = Thumb.UP if up else Thumb.DOWN if down else None
    dari = Dari(load_settings())
    try:  # through Dari, so the answer cache follows (promote on 👍/approve, evict on 👎)
        item = dari.feedback(trace_id, thumb, rating, comment, correction, approve)
    finally:
        dari.close()
    _recorded(item, json_out)


@feedback_app.command("signal")
def signal(
    trace_id: TraceId,
    kind: Annotated[Signal, typer.Argument(help="What the reader did.")],
    json_out: JsonOut = False,
) -> None:
    """Record an implicit signal: the answer was copied, regenerated, or the question rephrased."""
    with _feedback() as store:
        item = store.signal(trace_id, kind)
    _recorded(item, json_out)


@feedback_app.command("list")
def list_feedback(
    collection: OnlyCollection = None,
    trace: Annotated[str | None, typer.Option("--trace", help="Only this trace id.")] = None,
    limit: Annotated[int, typer.Option(help="Show the newest N.")] = 20,
    json_out: JsonOut = False,
) -> None:
    """Recorded feedback, newest first."""
    with _feedback() as store:
        items = store.entries(collection, trace, limit)
    if json_out:
        print(render.to_json([i.to_dict() for i in items]))
        return
    table = Table("#", "time", "trace", "collection", "kind", "rating", "comment / correction")
    for i in items:
        text = " · ".join(t for t in (i.comment, i.correction and f"→ {i.correction}") if t)
        table.add_row(
            str(i.id),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(i.created_at)),
            i.trace_id[:8],
            escape(i.collection),
            _label(i),
            str(i.rating or ""),
            escape(text if len(text) <= 80 else text[:79] + "…"),
        )
    Console(highlight=False).print(table)


@feedback_app.command("export")
def export_set(
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="sft (trl SFTTrainer), dpo (DPOTrainer) or golden."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The JSONL file to write.")],
    force: Annotated[bool, typer.Option(help="Replace the output if it exists.")] = False,
    collection: OnlyCollection = None,
    json_out: JsonOut = False,
) -> None:
    """Export liked, approved and corrected answers as a training or eval set.

    Personal data is redacted, near-duplicates are removed, and the file is written atomically.
    """
    with _feedback() as store:
        result = export(store, fmt, output, force, collection)
    if json_out:
        print(render.to_json(result))
        return
    _exported(Console(highlight=False), result)


@feedback_app.command("report")
def report_cmd(
    collection: OnlyCollection = None,
    top: Annotated[int, typer.Option(help="How many disliked questions to show.")] = TOP_DISLIKED,
    json_out: JsonOut = False,
) -> None:
    """Feedback rate, likes per collection and prompt version, most disliked questions.

    Also counts the implicit signals: copies, regenerations and rephrased questions.
    """
    with _feedback() as store:
        data = report(store, collection, top)
    if json_out:
        print(render.to_json(data.to_dict()))
        return
    _report(Console(highlight=False), data)


def _recorded(item: Feedback, json_out: bool) -> None:
    if json_out:
        print(render.to_json(item.to_dict()))
        return
    Console(highlight=False).print(
        f"[green]ok[/] recorded {_label(item)} on trace {item.trace_id[:8]} "
        f"({escape(item.collection)}, feedback #{item.id})"
    )


def _label(item: Feedback) -> str:
    return f"{_MARKS.get(item.kind.value, '')} {item.kind.value}".strip()


def _exported(console: Console, result: ExportReport) -> None:
    console.print(
        f"[green]ok[/] wrote {result.written} {result.format.value} rows → "
        f"{escape(str(result.path))}"
    )
    for reason, count in sorted(result.skipped.items(), key=lambda kv: -kv[1]):
        console.print(f"  skipped {count}: {escape(reason)}")
    if not result.written:
        console.print(
            "[yellow]nothing to export yet:[/] record feedback with dari feedback add TRACE_ID"
        )


def _report(console: Console, data: FeedbackReport) -> None:
    mean = f"{data.mean_rating:.2f}" if data.mean_rating is not None else "–"
    console.print(
        f"[bold]{data.traces}[/] answers · {data.with_feedback} with feedback "
        f"({data.feedback_rate:.1%}) · {data.with_explicit} explicit ({data.explicit_rate:.1%}) "
        f"· mean rating {mean} ({data.ratings} ratings)"
    )
    if not data.with_feedback:
        console.print("[yellow]no feedback yet:[/] record some with dari feedback add TRACE_ID")
        return
    console.print(_shares("👍 share by collection", "collection", data.by_collection))
    console.print(_shares("👍 share by prompt version", "prompt version", data.by_prompt_version))
    disliked = Table("question", "collection", "👎", "👍", "asked", title="most disliked questions")
    for d in data.most_disliked:
        disliked.add_row(
            escape(d.question), escape(d.collection), str(d.down), str(d.up), str(d.traces)
        )
    console.print(disliked)
    signals = Table(*data.signals, title="implicit signals")
    signals.add_row(*(str(n) for n in data.signals.values()))
    console.print(signals)


def _shares(title: str, what: str, shares: tuple[Share, ...]) -> Table:
    table = Table(what, "👍", "👎", "share", title=title)
    for s in shares:
        share = f"{s.share:.1%}" if s.share is not None else "–"
        table.add_row(escape(s.name), str(s.up), str(s.down), share)
    return table

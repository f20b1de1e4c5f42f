"""How the CLI shows things: reports, answers, status. Pure functions over values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dari.text import heading_below_title
from dari.types import Answer, FileResult, FileStatus, IngestReport

_STYLE = {
    FileStatus.ADDED: "green",
    FileStatus.UPDATED: "cyan",
    FileStatus.UNCHANGED: "dim",
    FileStatus.REMOVED: "yellow",
    FileStatus.FAILED: "bold red",
}


def to_json(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _progress(console: Console, unit: str, disable: bool, *extra: TextColumn) -> Progress:
    """A transient bar with count, elapsed time and ETA; off when not on a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        *extra,
        console=console,
        transient=True,
        disable=disable or not console.is_terminal,
    )


class IngestBar:
    """A rich progress bar with ETA that the ingestor advances file by file."""

    def __init__(self, console: Console, collection: str, disable: bool = False) -> None:
        current = TextColumn("{task.fields[current]}", style="dim")
        self._bar = _progress(console, "files", disable, current)
        self._task = self._bar.add_task(f"ingest → {collection}", total=None, current="")

    def __enter__(self) -> IngestBar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)

    def advance(self, result: FileResult) -> None:
        moved = 0 if result.status == FileStatus.REMOVED else 1
        self._bar.update(self._task, advance=moved, current=Path(result.path).name)


class QueryBar:
    """A rich progress bar over items in steps: the queries of each configuration in an eval run,
    the lines of a file the guards score, the rows a guard model trains on."""

    def __init__(
        self, console: Console, disable: bool = False, unit: str = "queries", prefix: str = "eval "
    ) -> None:
        self._bar = _progress(console, unit, disable)
        self._task: Any = None
        self._prefix = prefix

    def __enter__(self) -> QueryBar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, label: str, total: int) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(f"{self._prefix}{label}", total=total)

    def advance(self, n: int = 1) -> None:
        self._bar.update(self._task, advance=n)


def retrieval_eval(console: Console, data: dict[str, Any], output: Path | None) -> None:
    """The metric table of a retrieval eval: means ± half their 95 % interval, and the paired
    difference to the baseline (green/red when its interval excludes 0)."""
    ds = data["dataset"]
    table = Table(
        title=f"retrieval eval: {escape(ds['name'])} ({ds['queries']} queries, "
        f"{ds['documents']} documents, {ds['lang']})"
    )
    table.add_column("config", no_wrap=True)
    columns = {"ndcg@10": "nDCG@10", "recall@1": "R@1", "recall@5": "R@5", "recall@10": "R@10"}
    columns |= {"recall@20": "R@20", "mrr@10": "MRR@10"}
    if any("answer_in_context" in row for row in data["configs"].values()):
        columns["answer_in_context"] = "ans∈ctx"
    for title in columns.values():
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("p50/p95 ms", justify="right", no_wrap=True)
    table.add_column(f"ΔnDCG vs {escape(data['baseline'])}", justify="right", no_wrap=True)
    for label, row in data["configs"].items():
        cells = [escape(label)]
        for name in columns:
            lo, hi = row["ci95"][name]
            cells.append(f"{row[name]:.3f}[dim]±{(hi - lo) / 2:.2f}[/]")
        cells.append(f"{row['latency_ms_p50']:.0f}/{row['latency_ms_p95']:.0f}")
        vs = row.get("vs_" + data["baseline"], {}).get("ndcg@10")
        if vs is None:
            cells.append("[dim]baseline[/]")
        else:
            lo, hi = vs["ci95"]
            tone = "green" if lo > 0 else "red" if hi < 0 else "dim"
            cells.append(f"[{tone}]{vs['delta']:+.3f}±{(hi - lo) / 2:.3f}[/]")
        table.add_row(*cells)
    console.print(table)
    if output is not None:
        console.print(f"report: {escape(str(output / 'report.html'))} (and report.json)")


def ingest_report(console: Console, report: IngestReport, verbose: bool = False) -> None:
    interesting = [f for f in report.files if verbose or f.status != FileStatus.UNCHANGED]
    if interesting:
        table = Table(title=f"ingest → {report.collection}", show_lines=False)
        table.add_column("file", overflow="fold")
        table.add_column("result")
        table.add_column("docs", justify="right")
        table.add_column("chunks", justify="right")
        table.add_column("reason / hint", overflow="fold")
        for f in interesting:
            why = f"{f.reason} — {f.hint}" if f.hint else f.reason
            table.add_row(
                escape(_short(f.path)),
                f"[{_STYLE[f.status]}]{f.status.value}[/]",
                str(f.documents or ""),
                str(f.chunks or ""),
                escape(why),
            )
        console.print(table)
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in FileStatus if report.count(s))
    t = report.timings_s
    console.print(
        f"[bold]{len(report.files)} files[/]: {counts or 'nothing to do'} in {report.seconds:.1f}s"
        f" (parse {t.get('parse', 0):.1f}s, embed {t.get('embed', 0):.1f}s, "
        f"index {t.get('index', 0):.1f}s)"
    )


def sources(console: Console, answer: Answer) -> None:
    for warning in answer.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    use = answer.trace.cache
    if use is not None and use.lookup in ("exact", "semantic"):
        console.print(
            f"[dim]from the answer cache ({use.lookup} match, similarity {use.similarity:.3f}; "
            f"first answered in trace {use.created_by[:12]})[/]"
        )
    if not answer.citations:
        return
    console.print()
    for c in answer.citations:
        where = []
        heading = heading_below_title(c.title, c.heading)
        if heading:
            where.append(heading)
        if c.page:
            where.append(f"p. {c.page}")
        extra = f" — {' · '.join(where)}" if where else ""
        console.print(
            f"[bold cyan]\\[{c.n}][/] {escape(c.title)}{escape(extra)}  [dim]{escape(c.source)}[/]"
        )


def answer_json(answer: Answer) -> str:
    return to_json(
        {
            "answer": answer.text,
            "outcome": answer.outcome.value,
            "citations": [dataclasses.asdict(c) for c in answer.citations],
            "trace_id": answer.trace.id,
            "timings_ms": dict(answer.trace.timings_ms),
            "invalid_citations": answer.trace.invalid_citations,
            "warnings": list(answer.warnings),
            "cache": dataclasses.asdict(answer.trace.cache) if answer.trace.cache else None,
            "guards": [
                {"stage": v.stage, "guard": v.guard, "action": v.action, "rule": v.rule}
                for v in answer.trace.verdicts
                if v.flagged
            ],
        }
    )


_WHY = {"setting": "llm.model", "models use": "dari models use"}  # why a model is served


def status(console: Console, data: dict[str, Any]) -> None:
    table = Table(title=f"dari — {data['home']}")
    for col in ("collection", "files", "documents", "chunks", "embedder", "index size"):
        table.add_column(
            col, justify="right" if col in ("files", "documents", "chunks") else "left"
        )
    for c in data["collections"]:
        table.add_row(
            c["name"],
            str(c["files"]),
            str(c["documents"]),
            str(c["chunks"]),
            c["embedder"],
            _size(c["index_bytes"]),
        )
    console.print(table)
    llm = data["llm"]
    model = llm.get("served") or llm["model"]
    model += f" — {llm['file']}" if llm["file"] else ""
    model += f" ({_WHY[llm['source']]})" if llm.get("source") in _WHY else ""
    where = f" at {llm['base_url']}" if llm["backend"] == "openai" else ""
    console.print(
        f"store: {escape(data['store'])} ({_size(data['store_bytes'])})   "
        f"vectors: {data['vectors']}   embedder: {data['embedder']}   "
        f"llm: {llm['backend']}{where} · {escape(model)}"
    )
    if llm.get("error"):
        console.print(f"[bold red]model unusable:[/] {escape(llm['error'])}", highlight=False)


def _short(path: str) -> str:
    """A path relative to the current folder when it is under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)

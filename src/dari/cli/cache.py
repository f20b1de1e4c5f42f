"""`dari cache`: what the answer cache holds and saves, clear it, inspect entries, and measure its
safety on a labelled pair file."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dari.app import Dari
from dari.cache.meaning import MeaningParser
from dari.cache.pairs import check_pairs
from dari.cache.store import NEVER, Entry
from dari.cli import render
from dari.config import load_settings
from dari.errors import InputError

cache_app = typer.Typer(no_args_is_help=True, help="Answer cache: stats, clear, inspect, check.")
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OnlyCollection = Annotated[str, typer.Option("--collection", "-c", help="Only this collection.")]


def _when(t: float) -> str:
    return "never" if t >= NEVER else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


@cache_app.command("stats")
def stats(json_out: JsonOut = False) -> None:
    """Entries per collection, lookups, hits, refusals by check, and LLM tokens saved."""
    dari = Dari(load_settings())
    try:
        store = dari.cache.store
        counters, rows, size = store.counters(), store.summary(), store.size_bytes()
    finally:
        dari.close()
    lookups = counters.get("lookups", 0)
    hits = counters.get("hits.exact", 0) + counters.get("hits.semantic", 0)
    figures: dict[str, Any] = {
        "path": str(store.path),
        "bytes": size,
        "collections": [
            {"collection": c, "entries": n, "approved": a, "hits": h} for c, n, a, h in rows
        ],
        "lookups": int(lookups),
        "hits": {
            "exact": int(counters.get("hits.exact", 0)),
            "semantic": int(counters.get("hits.semantic", 0)),
        },
        "hit_rate": round(hits / lookups, 4) if lookups else 0.0,
        "refused_by": {
            k.split(".", 1)[1]: int(v) for k, v in counters.items() if k.startswith("refused.")
        },
        "invalidated": int(counters.get("invalidated", 0)),
        "tokens_saved": int(counters.get("tokens_saved", 0)),
    }
    if json_out:
        print(render.to_json(figures))
        return
    console = Console(highlight=False)
    table = Table(
        "collection", "entries", "approved", "hits", title=f"answer cache {figures['path']}"
    )
    for r in figures["collections"]:
        table.add_row(
            escape(r["collection"]), str(r["entries"]), str(r["approved"]), str(r["hits"])
        )
    console.print(table)
    console.print(
        f"lookups {figures['lookups']} · hits {hits:.0f} ({figures['hit_rate']:.1%}: exact "
        f"{figures['hits']['exact']}, semantic {figures['hits']['semantic']}) · "
        f"refused {figures['refused_by'] or '{}'} · invalidated {figures['invalidated']} · "
        f"LLM tokens saved {figures['tokens_saved']} · {size / 1e6:.1f} MB"
    )


@cache_app.command("clear")
def clear(
    collection: OnlyCollection = "",
    expired: Annotated[bool, typer.Option(help="Only entries past their time to live.")] = False,
    stale: Annotated[
        bool, typer.Option(help="Only entries citing chunks that re-ingest changed or removed.")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Remove entries: all, one collection's, the expired ones or the stale ones."""
    dari = Dari(load_settings())
    try:
        removed = dari.clear_cache(collection, expired, stale)
    finally:
        dari.close()
    if json_out:
        print(json.dumps({"removed": removed}))
    else:
        Console(highlight=False).print(f"removed {removed} cache entries")


@cache_app.command("inspect")
def inspect(
    entry_id: Annotated[str | None, typer.Argument(help="An entry id; none lists entries.")] = None,
    collection: OnlyCollection = "",
    trace: Annotated[str, typer.Option("--trace", help="Entries made from this trace.")] = "",
    limit: Annotated[int, typer.Option(help="List the N most recently used.")] = 20,
    json_out: JsonOut = False,
) -> None:
    """Entries with their provenance: the question and trace that created each one."""
    dari = Dari(load_settings())
    try:
        store = dari.cache.store
        if entry_id:
            found = store.get(entry_id)
            if found is None:
                raise InputError(
                    f"no cache entry '{entry_id}'", "list the entries: dari cache inspect"
                )
            entries = [found]
        else:
            entries = store.by_trace(trace) if trace else store.entries(collection, limit)
    finally:
        dari.close()
    if json_out:
        print(render.to_json([dataclasses.asdict(e) for e in entries]))
    elif entry_id:
        _show(entries[0])
    else:
        _list(entries)


def _list(entries: list[Entry]) -> None:
    table = Table("entry", "collection", "question", "hits", "approved", "last used", "trace")
    for e in entries:
        q = e.question if len(e.question) <= 60 else e.question[:59] + "…"
        table.add_row(
            e.id,
            escape(e.collection),
            escape(q),
            str(e.hits),
            "yes" if e.approved else "",
            _when(e.last_used),
            e.trace_id[:12],
        )
    Console(highlight=False).print(table)


def _show(e: Entry) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]{escape(e.question)}[/]")
    console.print(escape(e.answer))
    for c in e.citations:
        console.print(
            f"  [{c.get('n')}] {escape(str(c.get('source')))} · chunk {c.get('chunk_id')}"
        )
    console.print(
        f"entry {e.id} · collection {escape(e.collection)} · created by trace {e.trace_id} · "
        f"created {_when(e.created)} · expires {_when(e.expires)} · hits {e.hits} · "
        f"{'approved' if e.approved else 'not approved'} · saves {e.tokens} LLM tokens a hit"
    )


@cache_app.command("check-pairs")
def check_pairs_cmd(
    source: Annotated[Path, typer.Argument(help="JSONL with sentence1/sentence2 (and a label).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The JSONL to write.")],
    force: Annotated[bool, typer.Option(help="Replace the output if it exists.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Would a cached answer to sentence1 be served for sentence2? Per pair: would_hit,
    similarity and the check that refused it; with labels, the hit and false-hit rates."""
    settings = load_settings()
    dari = Dari(settings)
    console = Console(stderr=json_out, highlight=False)
    try:
        with render.QueryBar(console, disable=json_out, unit="texts", prefix="") as bar:
            bar.start("embedding", 0)

            def advance(n: int) -> None:
                for _ in range(n):
                    bar.advance()

            report = check_pairs(
                source,
                output,
                dari.embedder.embed_queries,
                MeaningParser(dari.analyzer),
                settings.cache,
                force,
                advance,
            )
    finally:
        dari.close()
    figures = report.figures() | {"output": str(output)}
    if json_out:
        print(render.to_json(figures))
    else:
        for line in report.bad_lines[:20]:
            console.print(f"[yellow]skipped[/] {line}")
        console.print(render.to_json(figures))

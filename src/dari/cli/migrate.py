"""`dari migrate`: move the embedded store under DARI_HOME into PostgreSQL (dari.db.move)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dari.cli import render
from dari.config import load_settings
from dari.db.move import move
from dari.db.postgres import PostgresDatabase, describe
from dari.errors import InputError
from dari.index.store import Store


def migrate(
    to: Annotated[
        str,
        typer.Option("--to", help="PostgreSQL URL of the target; default: store.postgres_url."),
    ] = "",
    source: Annotated[
        Path | None,
        typer.Option("--from", help="The SQLite store to move; default: DARI_HOME/dari.db."),
    ] = None,
    collections: Annotated[
        list[str],
        typer.Option("--collection", "-c", help="Move only this collection (repeatable)."),
    ] = [],  # noqa: B006
    replace: Annotated[
        bool, typer.Option(help="Overwrite collections the target already has.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Copy collections, traces, feedback, prompts and keys into PostgreSQL, all or nothing.

    Then set store.backend = "postgres" (DARI_STORE__BACKEND=postgres): BM25 and vectors are
    rebuilt from it on first use. Interrupted, it leaves the target as it was: run it again."""
    settings = load_settings()
    path = (source or settings.home_dir / "dari.db").expanduser()
    if not path.is_file():
        raise InputError(
            f"no embedded store at {path}",
            "point --from (or DARI_HOME) at the home whose store you want to move",
        )
    url = to or settings.store.postgres_url
    if not url:
        raise InputError(
            "no target: give --to postgresql://… or set store.postgres_url",
            "e.g. dari migrate --to postgresql://dari:secret@db:5432/dari",
        )
    console = Console(stderr=json_out, highlight=False)
    s = settings.store
    target = Store(PostgresDatabase(url, s.pool_size, s.connect_timeout_s))
    origin = Store(path)
    bar = render.QueryBar(console, disable=json_out, unit="rows", prefix="copy ")
    shown: dict[str, int] = {}  # table → rows shown as copied

    def progress(table: str, done: int, total: int) -> None:
        if table not in shown:
            shown[table] = 0
            bar.start(table, total)
        bar.advance(done - shown[table])
        shown[table] = done

    try:
        with bar:
            report = move(origin, target, collections, replace, progress)
    finally:
        origin.close()
        target.close()
    if json_out:
        print(render.to_json(report.to_dict() | {"target": describe(url)}))
        return
    table = Table(title=f"migrated {path} → {describe(url)} in {report.seconds:.1f} s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in report.rows.items():
        table.add_row(name, str(n))
    console.print(table)
    if report.replaced:
        console.print(f"replaced on the target: {', '.join(report.replaced)}")
    console.print(
        'next: set store.backend = "postgres" and store.postgres_url (dari.toml or '
        "DARI_STORE__BACKEND / DARI_STORE__POSTGRES_URL) on every dari process"
    )

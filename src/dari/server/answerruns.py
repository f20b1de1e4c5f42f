"""Answer eval runs started through the API: a golden JSONL file on the server answered over one
of the server's collections by the code of `dari eval answers` (`answer_report.evaluate`), with
the server's store, indexes, embedder and LLM; and the comparison of two such runs, as
`dari eval compare` makes it. `EvalRuns` (evalruns.py) starts, keeps and lists them."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.app import Dari
from dari.config import Settings
from dari.errors import ConfigError, InputError, NotFound
from dari.eval import answer_report
from dari.eval import compare as cmp
from dari.eval.answers import AnswerEval, ItemProgress, eval_settings
from dari.eval.golden import GoldenSet, load_golden, require_items
from dari.index.embedders import QueryMemo
from dari.server.locked import LockedGenerator

# The figures a list of runs shows (mean, 95 % interval and n of each).
HEADLINE = (
    "token_f1",
    "faithfulness",
    "citation_precision",
    "citation_recall",
    "abstention_accuracy",
)


@dataclass(frozen=True)
class AnswerRequest:
    golden: Path  # a JSONL file on the server
    collection: str
    model: str | None = None  # None: the server's
    prompt: str | None = None  # NAME or NAME@VERSION; None: the server's default
    top_k: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class AnswerJob:
    """A checked request: its golden set, read, and the runner over the eval's Dari."""

    runner: AnswerEval
    golden: GoldenSet
    limit: int | None

    def run(self, output: Path, progress: ItemProgress) -> None:
        answer_report.evaluate(self.runner, self.golden, output, progress, self.limit)


def prepare(server: Dari, settings: Settings, request: AnswerRequest) -> AnswerJob:
    """Check what can be checked before the run starts: the golden file (there, readable, with
    usable lines), the prompt, the model and the collection (with its embedder). Raises
    NotFound or InputError naming what is wrong."""
    golden = _golden(request.golden)
    dari = eval_dari(server, eval_settings(settings, request.prompt, request.model, request.top_k))
    if request.prompt is not None:
        try:
            dari.prompts.get(request.prompt)
        except ConfigError as exc:  # right for a setting; a request's name is not found
            raise NotFound(exc.message, "GET /api/prompts lists them") from exc
    if request.model is not None:
        error = dari.model_status()["error"]
        if error:
            raise InputError(
                f"the model '{request.model}' cannot be served: {error}",
                "name an installed model (dari models list), a .gguf file or a tune run",
            )
    runner = AnswerEval(dari, request.collection)
    dari.pipeline(request.collection)  # 404 for an unknown collection, or another embedder
    return AnswerJob(runner, golden, request.limit)


def _golden(path: Path) -> GoldenSet:
    if not path.exists():
        raise NotFound(
            f"golden set not found: {path}", "give the full path of a JSONL file on the server"
        )
    if path.is_dir():
        raise InputError(f"the golden set {path} is a folder", "give the JSONL file's path")
    return require_items(load_golden(path))  # InputError: unreadable, or no usable line


def resume_hint(request: AnswerRequest, output: Path) -> str:
    """How to finish an interrupted run: its items so far are kept in `output`, and
    `dari eval answers` with that output folder answers only the rest."""
    argv = ["dari", "eval", "answers", "--golden", str(request.golden)]
    argv += ["--collection", request.collection, "--output", str(output)]
    for flag, value in (("--model", request.model), ("--prompt", request.prompt)):
        argv += [flag, value] if value is not None else []
    for flag, number in (("--top-k", request.top_k), ("--limit", request.limit)):
        argv += [flag, str(number)] if number is not None else []
    return f"start it again, or finish it with the server's settings: {shlex.join(argv)}"


def eval_dari(server: Dari, settings: Settings) -> Dari:
    """A Dari over the server's DARI_HOME under the eval's settings (prompt, model, top_k, no
    answer cache) that borrows the server's store, collection indexes, analyzer, embedder,
    guards and audit log, so nothing is opened or loaded twice; and its LLM, behind the
    server's lock, unless the eval names another model (loaded on first use, beside it).
    Never closed: what it holds is the server's."""
    dari = Dari(settings)
    dari.analyzer = server.analyzer
    embedder = server.embedder
    dari.__dict__.update(
        store=server.store,
        # Its own query memo, so the eval's questions do not push the users' out of the server's.
        embedder=QueryMemo(embedder.inner) if isinstance(embedder, QueryMemo) else embedder,
        guards=server.guards,
        audit=server.audit,
        _chosen_model=server._chosen_model,  # read once, as the server did
    )
    dari._bm25, dari._vectors = server._bm25, server._vectors
    if dari.model_choice.model == server.model_choice.model:
        dari.__dict__["generator"] = server.generator
        dari._served_names = server._served_names
    else:
        dari.__dict__["generator"] = LockedGenerator.around(dari)
    return dari


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The figures a list of runs shows: what was asked, how many items, the main metrics."""
    run = data.get("run", {})
    metrics = data.get("metrics", {})
    return {
        "golden": Path(str(run.get("golden", ""))).name,
        "collection": run.get("collection"),
        "model": run.get("model"),
        "prompt_versions": run.get("prompt_versions", []),
        "items": run.get("items"),
        "skipped": len(run.get("skipped", [])),
        "metrics": {name: metrics[name] for name in HEADLINE if name in metrics},
    }


def compare(a: Path, b: Path, names: tuple[str, str], output: Path) -> dict[str, Any]:
    """Run B (its report folder) against run A, written into `output` as compare.json and
    compare.html, as `dari eval compare A B --output OUTPUT` does; returns compare.json."""
    return cmp.write(cmp.compare(cmp.load_run(a), cmp.load_run(b), names), output)

"""The native API's operator endpoints (admin keys): feedback as `dari feedback list` and
`dari feedback report --json` show it, and eval runs started on the server (retrieval and
answers) with the comparison of two answer runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from dari.errors import AccessError, InputError
from dari.eval.retrieval import DEFAULT_CONFIGS
from dari.feedback.report import TOP_DISLIKED, report
from dari.server.answerruns import AnswerRequest
from dari.server.auth import admin, check_collection, dari_of
from dari.server.evalruns import EvalRequest, EvalRuns
from dari.server.keys import ApiKey

router = APIRouter()
Admin = Annotated[ApiKey, Depends(admin)]

# An eval report is a page of its own: inline styles and SVG plots, never a script (`sandbox`
# also gives it an origin of its own, away from the API keys kept by /admin).
_REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)


class EvalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description="A BEIR or QA folder on the server, as an absolute path.",
    )
    configs: str = Field(DEFAULT_CONFIGS, min_length=1, max_length=2000)
    split: str = Field("test", min_length=1, max_length=100, description="BEIR qrels split.")
    limit: int | None = Field(None, ge=1, description="Only the first N queries.")


class AnswerEvalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    golden: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description="A golden JSONL file on the server, as an absolute path.",
    )
    collection: str = Field(..., min_length=1, max_length=64)
    model: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="LLM: default, small, ci, a .gguf file or a tune run; null: the server's.",
    )
    prompt: str | None = Field(
        None, min_length=1, max_length=200, description="NAME or NAME@VERSION; null: the default."
    )
    top_k: int | None = Field(None, ge=1, le=50, description="Sources per answer.")
    limit: int | None = Field(None, ge=1, description="Only the first N items.")


class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: str = Field(..., min_length=1, max_length=64, description="The answer run compared against.")
    b: str = Field(..., min_length=1, max_length=64, description="The answer run compared.")


async def _runs(request: Request) -> EvalRuns:
    """The app's eval runs, made on first use (on the event loop's one thread: never twice)."""
    state = request.app.state
    runs: EvalRuns | None = getattr(state, "eval_runs", None)
    if runs is None:
        runs = state.eval_runs = EvalRuns(state.dari, state.settings)
    return runs


Runs = Annotated[EvalRuns, Depends(_runs)]


# -- feedback -------------------------------------------------------------------------------------
@router.get("/api/feedback", tags=["feedback"])
def feedback_entries(
    request: Request,
    key: Admin,
    collection: str | None = None,
    trace: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Recorded feedback, newest first, with the question it is about (redacted, as the trace
    keeps it); optionally of one collection or one trace."""
    dari = dari_of(request)
    items = dari.feedback_store.entries(collection, trace, limit)
    ids = sorted({item.trace_id for item in items})
    marks = ",".join("?" * len(ids))
    query = dari.store.db.json_text("body", "query")
    sql = f"SELECT id, {query} FROM traces WHERE id IN ({marks})"
    rows = dari.store.rows(sql, ids) if ids else []
    questions = {str(trace_id): str(question or "") for trace_id, question in rows}
    return [item.to_dict() | {"question": questions.get(item.trace_id, "")} for item in items]


@router.get("/api/feedback/report", tags=["feedback"])
def feedback_report(
    request: Request,
    key: Admin,
    collection: str | None = None,
    top: Annotated[int, Query(ge=0, le=100)] = TOP_DISLIKED,
) -> dict[str, object]:
    """Feedback rate, likes per collection and prompt version, the most disliked questions and
    the implicit signals: the figures of `dari feedback report --json`."""
    return report(dari_of(request).feedback_store, collection, top).to_dict()


# -- eval runs ------------------------------------------------------------------------------------
@router.post("/api/evals/retrieval", tags=["evals"], status_code=202)
def start_eval(body: EvalIn, key: Admin, runs: Runs) -> dict[str, Any]:
    """Start a retrieval eval over a BEIR or QA folder on the server, as `dari eval retrieval`
    (one at a time: 409 while one runs). Poll GET /api/evals/{id} until it is done or failed."""
    path = _absolute(
        body.dataset, "dataset", "the folder's full path on the server, e.g. /data/evals/scifact"
    )
    run = runs.start(EvalRequest(path, body.configs, body.split, body.limit))
    return runs.view(run)


@router.post("/api/evals/answers", tags=["evals"], status_code=202)
def start_answer_eval(
    body: AnswerEvalIn, request: Request, key: Admin, runs: Runs
) -> dict[str, Any]:
    """Answer a golden set on the server over a collection and score every answer, as `dari eval
    answers` (one run at a time: 409 while one runs). Bad lines of the set are skipped and
    counted; a set with no usable line is refused. Poll GET /api/evals/{id}."""
    path = _absolute(
        body.golden, "golden", "the file's full path on the server, e.g. /data/golden/hr.jsonl"
    )
    check_collection(key, body.collection, dari_of(request).store.collection_names())
    asked = AnswerRequest(path, body.collection, body.model, body.prompt, body.top_k, body.limit)
    return runs.view(runs.start(asked))


@router.post("/api/evals/compare", tags=["evals"])
def compare_evals(body: CompareIn, key: Admin, runs: Runs) -> dict[str, Any]:
    """Answer run `b` against answer run `a`, both done, as `dari eval compare`: per-metric
    deltas b − a with paired bootstrap 95 % intervals, per tag and language, the items that got
    worse; the content of compare.json, with a `report_url` that opens compare.html."""
    return runs.compare(body.a, body.b)


def _absolute(given: str, field: str, hint: str) -> Path:
    path = Path(given).expanduser()
    if not path.is_absolute():
        raise InputError(f"the {field} path '{given}' is not absolute", f"give {hint}")
    return path


@router.get("/api/evals", tags=["evals"])
def eval_runs(
    key: Admin, runs: Runs, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """Eval runs, newest first: state (running, done, failed), progress, summary figures, the
    error of a failed run, and a link that opens the HTML report for an hour."""
    return runs.runs(limit)


@router.get("/api/evals/{run_id}", tags=["evals"])
def eval_run(run_id: str, key: Admin, runs: Runs) -> dict[str, Any]:
    """One run, with its whole report.json under `report` once it is done."""
    return runs.get(run_id)


@router.get("/api/evals/{run_id}/report.html", tags=["evals"])
def eval_report(
    run_id: str, request: Request, runs: Runs, exp: int = 0, sig: str = ""
) -> FileResponse:
    """The run's HTML report with its plots; with an admin key, or through the signed
    `report_url` that the run's listing gives (a browser tab cannot send a key)."""
    _may_open(request, runs, run_id, exp, sig)
    return _page(runs.report_html(run_id))


@router.get("/api/evals/{name}/compare.html", tags=["evals"])
def compare_report(
    name: str, request: Request, runs: Runs, exp: int = 0, sig: str = ""
) -> FileResponse:
    """A comparison's HTML page (`name`: compare-<a>-<b>); with an admin key, or through the
    signed `report_url` that POST /api/evals/compare gives."""
    _may_open(request, runs, name, exp, sig)
    return _page(runs.compare_html(name))


def _may_open(request: Request, runs: EvalRuns, name: str, exp: int, sig: str) -> None:
    if not sig:
        admin(request)
    elif not runs.link_ok(name, exp, sig):
        raise AccessError(
            "the report link has expired or is not valid",
            "open the report again from /admin, or send an admin key",
        )


def _page(path: Path) -> FileResponse:
    headers = {
        "Content-Security-Policy": _REPORT_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-cache",
    }
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers)

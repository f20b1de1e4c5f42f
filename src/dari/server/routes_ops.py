"""The native API's operator endpoints (admin keys): feedback as `dari feedback list` and
`dari feedback report --json` show it, and retrieval eval runs started on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from dari.errors import AccessError, InputError
from dari.eval.retrieval import DEFAULT_CONFIGS
from dari.feedback.report import TOP_DISLIKED, report
from dari.server.auth import admin, dari_of
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
    sql = f"SELECT id, json_extract(body, '$.query') FROM traces WHERE id IN ({marks})"
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
    path = Path(body.dataset).expanduser()
    if not path.is_absolute():
        raise InputError(
            f"the dataset path '{body.dataset}' is not absolute",
            "give the folder's full path on the server, e.g. /data/evals/scifact",
        )
    run = runs.start(EvalRequest(path, body.configs, body.split, body.limit))
    return runs.view(run)


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
    if sig:
        if not runs.link_ok(run_id, exp, sig):
            raise AccessError(
                "the report link has expired or is not valid",
                "open the report again from /admin, or send an admin key",
            )
    else:
        admin(request)
    headers = {
        "Content-Security-Policy": _REPORT_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-cache",
    }
    return FileResponse(
        runs.report_html(run_id), media_type="text/html; charset=utf-8", headers=headers
    )

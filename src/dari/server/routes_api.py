"""The native API under /api, plus /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from dari.app import Dari
from dari.errors import DariError, UnknownTrace
from dari.server.answering import Emit, in_thread, record
from dari.server.auth import admin, caller, check_collection, dari_of
from dari.server.keys import ApiKey
from dari.server.schemas import FeedbackIn, QueryIn, answer_body
from dari.types import Answer

router = APIRouter()
Caller = Annotated[ApiKey, Depends(caller)]
Admin = Annotated[ApiKey, Depends(admin)]


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
def readyz(request: Request, response: Response) -> dict[str, Any]:
    """The store answers and the configured model is there: ready for questions."""
    dari = dari_of(request)
    try:
        names = dari.store.collection_names()
    except DariError as exc:
        response.status_code = 503
        return {"status": "unavailable", "reason": exc.message}
    status = dari.status()
    model = status["llm"]
    if "(not installed)" in str(model.get("file", "")):
        response.status_code = 503
        return {"status": "unavailable", "reason": f"model {model['model']} is not installed"}
    if model.get("error"):
        response.status_code = 503
        return {"status": "unavailable", "reason": model["error"]}
    return {"status": "ready", "collections": len(names)}


@router.get("/metrics", tags=["operations"])
def metrics(request: Request, key: Admin) -> Response:
    """Prometheus metrics (an admin key: scrape with a bearer token)."""
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4")


@router.get("/api/collections", tags=["collections"])
def collections(request: Request, key: Caller) -> list[dict[str, Any]]:
    """The collections this key may use, with their sizes."""
    dari = dari_of(request)
    out = []
    for name in dari.store.collection_names():
        if key.may_use(name):
            info = dari.store.collection(name)
            out.append(
                {
                    "name": name,
                    "files": info.files,
                    "documents": info.documents,
                    "chunks": info.chunks,
                    "embedder": info.embedder,
                }
            )
    return out


@router.delete("/api/collections/{name}", tags=["collections"])
def delete_collection(name: str, request: Request, key: Admin) -> dict[str, str]:
    dari = dari_of(request)
    check_collection(key, name, dari.store.collection_names())
    dari.delete_collection(name)
    shutil.rmtree(dari.uploads_dir / name, ignore_errors=True)  # its uploaded files
    return {"deleted": name}


def _ask(request: Request, key: ApiKey, body: QueryIn, on_token: Any = None) -> Answer:
    dari = dari_of(request)
    check_collection(key, body.collection, dari.store.collection_names())
    started = time.time_ns()
    answer = dari.ask(
        body.question,
        body.collection,
        top_k=body.top_k,
        acl=key.acl,
        on_token=on_token,
        history=[tuple(h) for h in body.history],  # type: ignore[misc]
        filters=body.filters,
        prompt_key=body.session or key.id,
        caller=key.id,
    )
    record(request, answer, started)
    return answer


@router.post("/api/query", tags=["questions"])
def query(body: QueryIn, request: Request, key: Caller) -> dict[str, Any]:
    """Answer a question from a collection, with citations and the trace id."""
    return answer_body(_ask(request, key, body))


@router.post("/api/query/stream", tags=["questions"])
def query_stream(body: QueryIn, request: Request, key: Caller) -> StreamingResponse:
    """The same, as server-sent events: `token` events with text as it is generated (after
    the guards' sentence gate), then one `answer` event with the whole answer, or `error`."""
    # unknown collections and keys without access fail here, before the stream starts
    check_collection(key, body.collection, dari_of(request).store.collection_names())
    return StreamingResponse(
        _events(lambda emit: answer_body(_ask(request, key, body, emit))),
        media_type="text/event-stream",
    )


def _events(run: Callable[[Emit], Any]) -> Iterator[str]:
    """The pipeline's tokens and its answer (or error) as server-sent events."""
    for kind, data in in_thread(run):
        event = "answer" if kind == "done" else kind
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/api/feedback", tags=["feedback"])
def feedback(body: FeedbackIn, request: Request, key: Caller) -> dict[str, Any]:
    """Feedback on an answer this key received (an approval needs an admin key)."""
    dari = dari_of(request)
    _own_trace(dari, key, body.trace_id)
    if body.approve and not key.admin:
        from dari.errors import AccessError

        raise AccessError("approving an answer needs an admin key", "", 403)
    if body.signal:
        item = dari.feedback_store.signal(body.trace_id, body.signal)
    else:
        item = dari.feedback(
            body.trace_id, body.thumb, body.rating, body.comment, body.correction, body.approve
        )
    return item.to_dict()


def _own_trace(dari: Dari, key: ApiKey, trace_id: str) -> dict[str, Any]:
    """A trace this key may read: its own, or any for an admin. Others are 404, as if absent."""
    body = dari.store.trace(trace_id)
    if body is None or not (key.admin or body.get("caller") == key.id):
        raise UnknownTrace(trace_id)
    return body


@router.get("/api/traces/{trace_id}", tags=["traces"])
def trace(trace_id: str, request: Request, key: Caller) -> dict[str, Any]:
    """One trace: retrieval, timings, guard verdicts, cache, prompt version, tokens."""
    return _own_trace(dari_of(request), key, trace_id)


@router.get("/api/traces", tags=["traces"])
def traces(
    request: Request,
    key: Caller,
    collection: str | None = None,
    outcome: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Recent traces, newest first, each with its `created_at` (Unix time): this key's own
    (an admin sees all)."""
    store = dari_of(request).store
    sql, args = "SELECT body, created_at FROM traces WHERE 1=1", []
    if collection:
        sql, args = sql + " AND collection = ?", [collection]
    if outcome:
        sql, args = sql + f" AND {store.db.json_text('body', 'outcome')} = ?", [*args, outcome]
    if not key.admin:
        sql, args = sql + f" AND {store.db.json_text('body', 'caller')} = ?", [*args, key.id]
    rows = store.rows(sql + " ORDER BY created_at DESC LIMIT ?", [*args, limit])
    return [json.loads(str(r[0])) | {"created_at": r[1]} for r in rows]


@router.get("/api/cache/stats", tags=["cache"])
def cache_stats(request: Request, key: Admin) -> dict[str, Any]:
    store = dari_of(request).cache.store
    return {
        "counters": store.counters(),
        "bytes": store.size_bytes(),
        "collections": [
            {"collection": c, "entries": n, "approved": a, "hits": h}
            for c, n, a, h in store.summary()
        ],
    }

"""The native API's management endpoints: collections and their documents (upload, list, delete,
re-ingest), the answer cache's entries, and prompt versions. Writes need an admin key; reads
are filtered by the key's collections and ACL tags."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from dari.app import Dari
from dari.errors import ConfigError, InputError, NotFound
from dari.filelock import file_turn
from dari.prompts.parts import PromptVersion
from dari.prompts.registry import PromptRegistry, describe
from dari.server import documents, uploads
from dari.server.auth import admin, caller, check_collection, dari_of
from dari.server.keys import ApiKey
from dari.types import FileStatus, IngestReport

router = APIRouter()
Caller = Annotated[ApiKey, Depends(caller)]
Admin = Annotated[ApiKey, Depends(admin)]
T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionIn(_Body):
    name: str = Field(..., min_length=1, max_length=64)


class DefaultIn(_Body):
    ref: str | None = Field(..., description="NAME@VERSION (or NAME); null: the llm.prompt setting")


class SplitIn(_Body):
    arms: dict[str, int] | None = Field(None, description='e.g. {"grounded@2": 90, "my@1": 10}')
    clear: bool = False


async def _write(request: Request, work: Callable[[], T]) -> T:
    """Run `work` in a worker thread, one write to the indexes at a time (uploads, deletes and
    re-ingests share a collection's BM25 writer, which tantivy lends to one writer at a time, and
    its upload folder), in this process and among the processes sharing its uploads folder
    (replicas on one machine, or on a shared volume). The thread lock is made on first use; this
    runs on the event loop's one thread, so it is never made twice."""
    lock: threading.Lock | None = getattr(request.app.state, "write_lock", None)
    if lock is None:
        lock = request.app.state.write_lock = threading.Lock()
    shared = dari_of(request).uploads_dir

    def locked() -> T:
        with lock, file_turn(shared / ".write.lock"):
            return work()

    return await run_in_threadpool(locked)


# -- collections and documents ------------------------------------------------------------------
@router.post("/api/collections", tags=["collections"], status_code=201)
async def create_collection(body: CollectionIn, request: Request, key: Admin) -> dict[str, Any]:
    """An empty collection, embedded with the configured embedder (409 if it exists)."""
    info = await _write(request, lambda: documents.create_collection(dari_of(request), body.name))
    return dataclasses.asdict(info)


_FILES = {"type": "array", "items": {"type": "string", "format": "binary"}}
_UPLOAD = {  # the body is streamed by hand, so FastAPI cannot describe it by itself
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": _FILES, "acl": {"type": "string"}},
                    "required": ["file"],
                }
            }
        },
    }
}


@router.post("/api/collections/{name}/documents", tags=["documents"], openapi_extra=_UPLOAD)
async def upload_documents(name: str, request: Request, key: Admin) -> dict[str, Any]:
    """Upload files (multipart/form-data, one or more file parts) and ingest them. Form field
    `acl`: comma-separated tags for these files (sent empty: public; left out: the tags an
    earlier upload of the same name had). A `<file>.meta.json` part is that file's sidecar.
    Each file is streamed to disk and stopped at server.max_upload_mb (413, nothing kept). The
    report lists each file: added, updated, unchanged or failed (with reason and hint)."""
    dari = dari_of(request)
    check_collection(key, name, dari.store.collection_names())
    limit = int(request.app.state.settings.server.max_upload_mb * 2**20)
    staging = uploads.staging_folder(dari.uploads_dir)
    try:
        received = await uploads.receive(request, staging, limit)
        unknown = sorted(set(received.fields) - {"acl"})
        if unknown:
            raise InputError(f"unknown form field(s) {', '.join(unknown)}", "send files and 'acl'")
        if not received.files:
            raise InputError("the request has no files", "send one or more file parts")
        raw = received.fields.get("acl")
        acl = None if raw is None else tuple(sorted({t.strip() for t in raw.split(",")} - {""}))
        report = await _write(request, lambda: documents.upload(dari, name, received, acl, staging))
    finally:
        await run_in_threadpool(uploads.remove_folder, staging)
    return _report(dari, report)


@router.get("/api/collections/{name}/documents", tags=["documents"])
def list_documents(
    name: str,
    request: Request,
    key: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The collection's documents this key may read (its ACL tags), by path: title, format,
    ACL tags, metadata, chunk count; `name` is set for uploaded files."""
    dari = dari_of(request)
    check_collection(key, name, dari.store.collection_names())
    return documents.list_documents(dari, name, key.acl, limit, offset)


@router.delete("/api/collections/{name}/documents/{doc_path:path}", tags=["documents"])
async def delete_document(name: str, doc_path: str, request: Request, key: Admin) -> dict[str, Any]:
    """Remove a file's documents (by upload name, or by the path the listing shows): from the
    indexes, from disk if it was uploaded, and the cached answers that cite it."""
    dari = dari_of(request)
    check_collection(key, name, dari.store.collection_names())
    result = await _write(request, lambda: documents.remove(dari, name, doc_path))
    return {"removed": result.path, "documents": result.documents}


@router.post("/api/collections/{name}/reingest", tags=["documents"])
async def reingest(name: str, request: Request, key: Admin) -> dict[str, Any]:
    """Ingest the collection's uploaded files again (incremental: only changed files)."""
    dari = dari_of(request)
    check_collection(key, name, dari.store.collection_names())
    return _report(dari, await _write(request, lambda: documents.reingest(dari, name)))


def _report(dari: Dari, report: IngestReport) -> dict[str, Any]:
    folder = documents.UploadFolder(dari.uploads_dir, report.collection)
    counts = {s.value: report.count(s) for s in FileStatus}
    return {
        "collection": report.collection,
        **counts,
        "seconds": round(report.seconds, 3),
        "timings_s": dict(report.timings_s),
        "files": [
            dataclasses.asdict(f)
            | {"status": f.status.value, "name": folder.name_of(f.path) or f.path}
            for f in report.files
        ],
    }


# -- the answer cache -----------------------------------------------------------------------------
@router.get("/api/cache/entries", tags=["cache"])
def cache_entries(
    request: Request,
    key: Admin,
    collection: str = "",
    trace: str = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    """Entries with their provenance (question, trace, citations), most recently used first;
    or the entries made from one trace."""
    store = dari_of(request).cache.store
    entries = store.by_trace(trace) if trace else store.entries(collection, limit)
    return [dataclasses.asdict(e) for e in entries]


@router.get("/api/cache/entries/{entry_id}", tags=["cache"])
def cache_entry(entry_id: str, request: Request, key: Admin) -> dict[str, Any]:
    found = dari_of(request).cache.store.get(entry_id)
    if found is None:
        raise NotFound(f"no cache entry '{entry_id}'", "list them: GET /api/cache/entries")
    return dataclasses.asdict(found)


@router.delete("/api/cache/entries/{entry_id}", tags=["cache"])
def delete_cache_entry(entry_id: str, request: Request, key: Admin) -> dict[str, int]:
    store = dari_of(request).cache.store
    if store.get(entry_id) is None:
        raise NotFound(f"no cache entry '{entry_id}'", "list them: GET /api/cache/entries")
    return {"removed": store.delete([entry_id])}


@router.delete("/api/cache", tags=["cache"])
def clear_cache(
    request: Request, key: Admin, collection: str = "", expired: bool = False, stale: bool = False
) -> dict[str, int]:
    """Remove entries: all, one collection's, the expired ones, or the stale ones (citing chunks
    that re-ingest changed or removed)."""
    if expired and stale:
        raise InputError("give expired or stale, not both", "e.g. DELETE /api/cache?expired=true")
    return {"removed": dari_of(request).clear_cache(collection, expired, stale)}


# -- prompt versions ------------------------------------------------------------------------------
@router.get("/api/prompts", tags=["prompts"])
def prompts(request: Request, key: Caller) -> dict[str, Any]:
    """Every version (built in or stored), the default and the A/B split, as `dari prompt list`."""
    registry = dari_of(request).prompts
    split = registry.split()
    try:
        default = registry.default()[0].ref
    except ConfigError:  # a bad llm.prompt setting: still list what there is
        default = ""
    return {
        "default": default,
        "split": dict(split.arms) if split else {},
        "versions": [describe(v, default, split) for v in registry.versions()],
    }


@router.get("/api/prompts/{ref}", tags=["prompts"])
def prompt(ref: str, request: Request, key: Caller, lang: str | None = None) -> dict[str, Any]:
    """A version's parts per language: role, directive, output format, demonstrations…"""
    version = _version(dari_of(request).prompts, ref)
    langs = [lang] if lang else list(version.langs)
    missing = [code for code in langs if code not in version.parts]
    if missing:
        raise NotFound(f"{version.ref} has no '{missing[0]}' parts", f"it has {version.langs}")
    row = describe(version, "", None)
    del row["default"], row["share"]
    return row | {"parts": {c: dataclasses.asdict(version.parts[c]) for c in langs}}


@router.post("/api/prompts/default", tags=["prompts"])
def set_default(body: DefaultIn, request: Request, key: Admin) -> dict[str, Any]:
    """Make a version the default over the llm.prompt setting (null: back to the setting)."""
    registry = dari_of(request).prompts
    if body.ref is not None:
        _version(registry, body.ref)
    registry.set_default(body.ref)
    chosen, why = registry.default()
    return {"default": chosen.ref, "from": why, "split_wins": registry.split() is not None}


@router.post("/api/prompts/split", tags=["prompts"])
def set_split(body: SplitIn, request: Request, key: Admin) -> dict[str, Any]:
    """Answer with several versions by whole-percent shares summing to 100; or end the split."""
    if (body.arms is None) == (not body.clear):
        raise InputError("give arms or clear, not both", 'e.g. {"arms": {"a@1": 90, "b@1": 10}}')
    registry = dari_of(request).prompts
    if body.clear:
        registry.clear_split()
    else:
        for ref in body.arms or {}:
            _version(registry, ref)
        registry.set_split([f"{ref}={share}" for ref, share in (body.arms or {}).items()])
    current = registry.split()
    return {"split": dict(current.arms) if current else {}}


def _version(registry: PromptRegistry, ref: str) -> PromptVersion:
    """The version `ref` names; 404 when there is none (the registry says ConfigError, right for
    a bad llm.prompt setting but not for a name in a request)."""
    try:
        return registry.get(ref)
    except ConfigError as exc:
        raise NotFound(exc.message, "GET /api/prompts lists them") from exc

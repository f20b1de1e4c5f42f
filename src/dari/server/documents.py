"""A collection's documents as the API manages them.

Uploads are kept under <uploads>/<collection>/<name> (`Dari.uploads_dir`: server.uploads_dir, or
DARI_HOME/uploads), so uploading a name again updates
its documents (ingest is incremental by path) and `reingest` can run over the folder. A file's
ACL tags go in its `<name>.meta.json` sidecar, the loader's own per-file tags, so a re-ingest of
the folder keeps them. An upload whose ingest fails puts the earlier file (or none) back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dari.app import Dari, check_collection_name
from dari.errors import Conflict, NotFound
from dari.index.filters import visible
from dari.index.store import CollectionInfo, Store
from dari.ingest.loaders import SUPPORTED_SUFFIXES
from dari.server.uploads import Received
from dari.types import FileResult, FileStatus, IngestReport

SIDECAR = ".meta.json"


class UploadFolder:
    """DARI_HOME/uploads/<collection>: one flat folder of uploaded files and their sidecars."""

    def __init__(self, uploads: Path, collection: str) -> None:
        uploads.mkdir(parents=True, exist_ok=True)
        self.uploads = uploads.resolve()  # ingest records resolved paths
        self.root = self.uploads / collection

    def name_of(self, path: str) -> str | None:
        """The upload name of a stored file path, or None for files ingested from elsewhere."""
        p = Path(path)
        return p.name if p.parent == self.root else None


class _Placement:
    """One document's files put in place (the document, its sidecar), undone together."""

    def __init__(self, target: Path, moves: Sequence[tuple[Path, Path | None]]) -> None:
        self.target = target
        self._moves = moves  # (destination, new file in staging, or None: remove it)
        self._backups: list[tuple[Path, Path | None]] = []

    def place(self, backups: Path) -> None:
        for dest, new in self._moves:
            old = None
            if dest.exists():
                old = backups / uuid.uuid4().hex
                os.replace(dest, old)
            self._backups.append((dest, old))
            if new is not None:
                os.replace(new, dest)

    def undo(self) -> None:
        for dest, old in reversed(self._backups):
            dest.unlink(missing_ok=True)
            if old is not None:
                os.replace(old, dest)
        self._backups.clear()


def upload(
    dari: Dari, collection: str, received: Received, acl: tuple[str, ...] | None, staging: Path
) -> IngestReport:
    """Put the received files in the collection's folder and ingest them. `acl`: the files' tags
    (None: keep what an earlier upload gave them). Unsupported files and orphan sidecars fail
    without being kept; a file that fails to ingest is taken back out, the earlier one back in."""
    started = time.perf_counter()
    folder = UploadFolder(dari.uploads_dir, collection)
    folder.root.mkdir(exist_ok=True)
    placements, refused = _plan(folder, received, acl, staging)
    backups = staging / "previous"
    backups.mkdir(exist_ok=True)
    done: list[_Placement] = []
    try:
        for p in placements:
            done.append(p)  # before placing: a half-placed one is undone too
            p.place(backups)
        report = (
            dari.ingest([p.target for p in placements], collection)
            if placements
            else IngestReport(collection, (), 0.0)
        )
    except BaseException:
        for p in reversed(done):
            p.undo()
        raise
    failed = {r.path for r in report.files if r.status == FileStatus.FAILED}
    for p in placements:
        if str(p.target) in failed:
            p.undo()
    return IngestReport(
        collection, (*refused, *report.files), time.perf_counter() - started, report.timings_s
    )


def _plan(
    folder: UploadFolder, received: Received, acl: tuple[str, ...] | None, staging: Path
) -> tuple[list[_Placement], list[FileResult]]:
    """What to put where for each document of the upload, and the files refused outright."""
    names = {f.name for f in received.files}
    sidecars = {f.name[: -len(SIDECAR)]: f.path for f in received.files if f.name.endswith(SIDECAR)}
    placements: list[_Placement] = []
    refused: list[FileResult] = []
    for f in received.files:
        doc = f.name[: -len(SIDECAR)] if f.name.endswith(SIDECAR) else f.name
        if doc != f.name and doc in names:
            continue  # goes in with its document
        target = folder.root / doc
        if doc != f.name and not target.is_file():
            refused.append(_refused(f.name, "a .meta.json sidecar without its document", doc))
            continue
        suffix = Path(doc).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            refused.append(_refused(f.name, f"unsupported file type '{suffix or '(none)'}'", ""))
            continue
        sidecar = _sidecar_move(target.with_name(doc + SIDECAR), sidecars.get(doc), acl, staging)
        moves = [(target, f.path)] if doc == f.name else []
        placements.append(_Placement(target, moves + ([sidecar] if sidecar else [])))
    return placements, refused


def _refused(name: str, reason: str, document: str) -> FileResult:
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    hint = f"upload {document} with it" if document else f"supported: {supported}"
    return FileResult(name, FileStatus.FAILED, reason=reason, hint=hint)


def _sidecar_move(
    dest: Path, uploaded: Path | None, acl: tuple[str, ...] | None, staging: Path
) -> tuple[Path, Path | None] | None:
    """What becomes of a document's sidecar: the uploaded one, with the request's tags added;
    without one, the sidecar there already with its tags replaced; None: leave it as it is."""
    if acl is None:
        return (dest, uploaded) if uploaded is not None else None
    source = uploaded if uploaded is not None else dest if dest.exists() else None
    raw: Any = {}
    if source is not None:
        try:
            raw = json.loads(source.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            raw = None
    tags = raw.get("acl", []) if isinstance(raw, dict) and uploaded is not None else []
    if not isinstance(raw, dict) or not isinstance(tags, list):
        if uploaded is not None:  # malformed: placed as is, the loader says what is wrong
            return (dest, uploaded)
        raw, tags = {}, []
    merged = {**raw, "acl": sorted({*map(str, tags), *acl})}
    if merged == {"acl": []}:
        return (dest, None) if dest.exists() or uploaded is not None else None
    out = staging / f"sidecar-{uuid.uuid4().hex}"
    out.write_text(json.dumps(merged, ensure_ascii=False, indent=2), encoding="utf-8")
    return (dest, out)


def remove(dari: Dari, collection: str, given: str) -> FileResult:
    """Remove a file's documents from the store, the BM25 index, the vectors and the answers
    cached from them; an uploaded file (and its sidecar) is deleted from disk too."""
    folder = UploadFolder(dari.uploads_dir, collection)
    path = _stored_path(dari.store, folder, collection, given)
    removed = dari.store.remove_files(collection, [path])
    index = dari.bm25(collection)
    try:
        index.delete_documents(removed)
        index.commit()
    finally:
        index.close()
    dari.vectors(collection)
    dari.invalidate_cache(collection)
    if folder.name_of(path) is not None:
        Path(path).unlink(missing_ok=True)
        Path(path + SIDECAR).unlink(missing_ok=True)
    return FileResult(path, FileStatus.REMOVED, documents=len(removed))


def _stored_path(store: Store, folder: UploadFolder, collection: str, given: str) -> str:
    """The file path the store knows `given` by: as stored, without its leading slash (lost in
    a URL), or an upload's name."""
    known = set(store.file_paths(collection))
    for candidate in (given, "/" + given, str(folder.root / given)):
        if candidate in known:
            return candidate
    raise NotFound(
        f"collection '{collection}' has no file '{given}'",
        f"list them: GET /api/collections/{collection}/documents",
    )


def reingest(dari: Dari, collection: str) -> IngestReport:
    """Ingest the collection's upload folder again: changed files update, deleted ones go."""
    folder = UploadFolder(dari.uploads_dir, collection)
    folder.root.mkdir(exist_ok=True)
    return dari.ingest([folder.root], collection, prune=True)


def create_collection(dari: Dari, name: str) -> CollectionInfo:
    """An empty collection, embedded with the configured embedder."""
    check_collection_name(name)
    if name in dari.store.collection_names():
        raise Conflict(
            f"collection '{name}' exists",
            f"upload to it: POST /api/collections/{name}/documents; or delete it first",
        )
    shutil.rmtree(UploadFolder(dari.uploads_dir, name).root, ignore_errors=True)  # a deleted one's
    dari.store.ensure_collection(name, dari.embedder.name, dari.embedder.dim)
    return dari.store.collection(name)


def list_documents(
    dari: Dari, collection: str, acl: Sequence[str] | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The `ready` documents a reader holding `acl` may see (None: all), by path."""
    sql = """SELECT d.id, d.path, d.source, d.title, d.format, d.lang, d.acl, d.metadata,
        f.updated_at, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)
        FROM documents d JOIN files f ON f.collection = d.collection AND f.path = d.path
        WHERE d.collection = ? AND d.status = 'ready'"""
    args: list[object] = [collection]
    if acl is not None:  # in SQL, so that limit and offset page over what the reader sees
        sql += " AND (d.acl = '[]'"
        sql += f" OR {dari.store.db.json_array_has_any('d.acl', len(acl))})" if acl else ")"
        args += list(acl)
    rows = dari.store.rows(
        sql + " ORDER BY d.path, d.source LIMIT ? OFFSET ?", [*args, limit, offset]
    )
    folder = UploadFolder(dari.uploads_dir, collection)
    out = []
    for doc_id, path, source, title, fmt, lang, tags, meta, updated, chunks in rows:
        tags = json.loads(str(tags))
        if not visible(tags, (), acl, ()):  # the retrieval filter, should the SQL ever differ
            continue
        out.append(
            {
                "id": doc_id,
                "path": path,
                "name": folder.name_of(str(path)),
                "source": source,
                "title": title,
                "format": fmt,
                "lang": lang,
                "acl": tags,
                "metadata": json.loads(str(meta)),
                "chunks": chunks,
                "updated_at": updated,
            }
        )
    return out

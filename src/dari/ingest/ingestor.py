"""Ingest files into a collection: load → split → embed → stage in SQLite → BM25 → flip to ready.

Crash safety: a file is staged (`pending`) in one SQLite transaction, added to the BM25 index, and
flipped to `ready` after the BM25 commit. An interrupted run leaves `pending` files, which the next
run rolls forward from SQLite (the source of truth) before doing anything else.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from dari.config import Settings
from dari.errors import IngestError
from dari.index.filters import meta_tokens
from dari.index.store import IndexRow, Store
from dari.ingest.loaders import SUPPORTED_SUFFIXES, is_sidecar, load_path
from dari.ingest.splitter import SPLITTER_VERSION, ParentChildSplitter
from dari.protocols import Embedder, TextIndex
from dari.types import Chunk, Document, FileResult, FileStatus, IngestReport, Section


class Progress(Protocol):
    """Told how many files a run will look at, then of each file's result as it is known."""

    def start(self, total: int) -> None: ...

    def advance(self, result: FileResult) -> None: ...


_BATCH_FILES = 32  # files per BM25 commit
_BATCH_SECONDS = 5.0


def list_files(paths: Iterable[Path]) -> tuple[list[Path], list[FileResult]]:
    """Supported files under the given files/folders (recursive, hidden entries skipped), and a
    failure for each given path that does not exist or is not supported."""
    files: list[Path] = []
    problems: list[FileResult] = []
    for given in paths:
        p = given.expanduser().resolve()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if (
                    f.is_file()
                    and not any(part.startswith(".") for part in rel)
                    and f.suffix.lower() in SUPPORTED_SUFFIXES
                    and not is_sidecar(f)
                ):
                    files.append(f)
        elif p.is_file():
            files.append(p)
        else:
            problems.append(
                FileResult(
                    str(given),
                    FileStatus.FAILED,
                    reason="no such file or folder",
                    hint="check the path",
                )
            )
    return list(dict.fromkeys(files)), problems


def file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


@dataclass
class _Timer:
    parse: float = 0.0
    embed: float = 0.0
    index: float = 0.0


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        bm25: TextIndex,
        embedder: Embedder,
        splitter: ParentChildSplitter,
        tagger: Callable[[str], str] | None = None,
    ) -> None:
        self._s = settings
        self._tagger = tagger  # the context guard: flags sections that address the model
        self._store = store
        self._bm25 = bm25
        self._embedder = embedder
        self._splitter = splitter
        # What else decides a file's chunks: a change re-ingests files whose bytes did not change.
        s = settings
        self._recipe = hashlib.sha256(
            repr((s.chunking, s.ingest, embedder.name, SPLITTER_VERSION)).encode()
        ).hexdigest()[:16]

    def recover(self, collection: str) -> int:
        """Roll interrupted writes forward; returns how many files were repaired."""
        pending = self._store.pending_files(collection)
        if not pending:
            return 0
        for _path, new_ids, replaces in pending:
            self._bm25.delete_documents([*new_ids, *replaces])
            self._bm25.add(self._store.chunks_for_docs(new_ids))
        self._bm25.commit()
        self._store.finish_files(collection, [p for p, _, _ in pending])
        return len(pending)

    def run(
        self,
        paths: Sequence[Path],
        collection: str,
        acl: tuple[str, ...] = (),
        prune: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        timer = _Timer()
        self._store.ensure_collection(collection, self._embedder.name, self._embedder.dim)
        self.recover(collection)
        files, problems = list_files(paths)
        if progress:
            progress.start(len(files))
        results: list[FileResult] = list(problems)
        staged: list[str] = []
        last_commit = time.perf_counter()
        for path in files:
            result = self._one_file(path, collection, acl, timer)
            if result.status in (FileStatus.ADDED, FileStatus.UPDATED):
                staged.append(str(path))
            results.append(result)
            if progress:
                progress.advance(result)
            if staged and (
                len(staged) >= _BATCH_FILES or time.perf_counter() - last_commit > _BATCH_SECONDS
            ):
                self._commit(collection, staged, timer)
                staged, last_commit = [], time.perf_counter()
        if staged:
            self._commit(collection, staged, timer)
        if prune:
            results.extend(self._prune(collection, paths, {str(f) for f in files}, progress))
        return IngestReport(
            collection=collection,
            files=tuple(results),
            seconds=time.perf_counter() - started,
            timings_s={"parse": timer.parse, "embed": timer.embed, "index": timer.index},
        )

    def _commit(self, collection: str, staged: list[str], timer: _Timer) -> None:
        t = time.perf_counter()
        self._bm25.commit()
        self._store.finish_files(collection, staged)
        timer.index += time.perf_counter() - t

    def _one_file(
        self, path: Path, collection: str, acl: tuple[str, ...], timer: _Timer
    ) -> FileResult:
        key = str(path)
        try:
            sha, size = file_sha256(path)
            sha = self._version(path, sha, acl)
            state = self._store.file_state(collection, key)
            if state == (sha, "ready"):
                return FileResult(key, FileStatus.UNCHANGED)
            t = time.perf_counter()
            documents = load_path(path, self._s.ingest, acl)
            splits = [(uuid.uuid4().hex, d) for d in documents]
            parts = [(doc_id, d, self._splitter.split(doc_id, d)) for doc_id, d in splits]
            timer.parse += time.perf_counter() - t
        except FileNotFoundError:
            return FileResult(
                key,
                FileStatus.FAILED,
                reason="file disappeared during ingest",
                hint="it was moved or deleted; run ingest again if it is back",
            )
        except IngestError as exc:  # the report names the file already
            return FileResult(key, FileStatus.FAILED, reason=exc.reason, hint=exc.hint)
        except OSError as exc:
            return FileResult(
                key,
                FileStatus.FAILED,
                reason=f"cannot read: {exc.strerror}",
                hint="check the file's permissions",
            )

        t = time.perf_counter()
        all_chunks = [c for _, _, sp in parts for c in sp.chunks]
        keys = self._embed([c.text for c in all_chunks])
        timer.embed += time.perf_counter() - t

        t = time.perf_counter()
        rows: list[tuple[str, Document, Sequence[Section], Sequence[Chunk], Sequence[str]]] = []
        offset = 0
        for doc_id, doc, sp in parts:
            sections = sp.sections
            if self._tagger is not None:
                sections = tuple(replace(s, flags=self._tagger(s.text)) for s in sections)
            rows.append((doc_id, doc, sections, sp.chunks, keys[offset : offset + len(sp.chunks)]))
            offset += len(sp.chunks)
        old = self._store.stage_file(collection, key, sha, size, rows)
        self._bm25.delete_documents(old)
        self._bm25.add(
            IndexRow(c.id, doc_id, c.text, doc.acl, meta_tokens(doc.format, doc.lang, doc.metadata))
            for doc_id, doc, sp in parts
            for c in sp.chunks
        )
        timer.index += time.perf_counter() - t
        status = FileStatus.UPDATED if state is not None else FileStatus.ADDED
        return FileResult(key, status, documents=len(documents), chunks=len(all_chunks))

    def _version(self, path: Path, sha: str, acl: tuple[str, ...]) -> str:
        """The file's version: its bytes, its sidecar's bytes, the ACL flags and the recipe."""
        sidecar = path.with_name(path.name + ".meta.json")
        extra = file_sha256(sidecar)[0][:16] if sidecar.exists() else "-"
        tags = hashlib.sha256("\x00".join(acl).encode()).hexdigest()[:8]
        return f"{sha}:{extra}:{tags}:{self._recipe}"

    def _embed(self, texts: list[str]) -> list[str]:
        """Embed texts not yet in the content-hash cache; returns each text's cache key."""
        prefix = self._embedder.name + "\x00"
        keys = [hashlib.sha256((prefix + t).encode()).hexdigest() for t in texts]
        cached = self._store.cached_embeddings(list(dict.fromkeys(keys)))
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in cached}
        items = list(todo.items())
        batch = self._s.embedder.batch_size
        for i in range(0, len(items), batch):
            part = items[i : i + batch]
            vecs = self._embedder.embed_passages([t for _, t in part])
            self._store.put_embeddings(zip((k for k, _ in part), np.asarray(vecs), strict=True))
        return keys

    def _prune(
        self, collection: str, roots: Sequence[Path], seen: set[str], progress: Progress | None
    ) -> Iterator[FileResult]:
        resolved = [r.expanduser().resolve() for r in roots]
        gone = [
            p
            for p in self._store.file_paths(collection)
            if p not in seen and any(_under(Path(p), r) for r in resolved)
        ]
        if not gone:
            return
        removed = self._store.remove_files(collection, gone)
        self._bm25.delete_documents(removed)
        self._bm25.commit()
        for p in gone:
            result = FileResult(p, FileStatus.REMOVED)
            if progress:
                progress.advance(result)
            yield result


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

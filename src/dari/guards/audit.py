"""The append-only audit log: one JSON line per guard verdict, chained by hashes.

Each line carries the sha256 of the line before it, so an edited or deleted line breaks the chain
at that point (`dari guard audit --verify`). Lines hold the verdict (guard, action, rule, score,
span kinds and offsets), never the text it was about: no raw personal data lands here. Writers in
several processes take an exclusive lock on the file for each append. With store.backend =
"postgres" the chain lives in the store (`StoreAuditLog`), one for every replica.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from dari.db.base import LOCK_AUDIT
from dari.errors import StoreError
from dari.index.store import Store
from dari.types import Verdict

GENESIS = "0" * 64


def _last_line(f: Any) -> bytes:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    block = min(size, 65536)
    f.seek(size - block)
    lines = f.read(block).rstrip(b"\n").split(b"\n")
    return lines[-1] if lines and lines[-1] else b""


class Audit(Protocol):
    """Where verdicts are chained: a file (AuditLog) or the shared store (StoreAuditLog)."""

    @property
    def where(self) -> str: ...

    def append(self, trace_id: str, collection: str, verdicts: Sequence[Verdict]) -> None: ...

    def records(self) -> Iterator[dict[str, Any]]: ...

    def verify(self) -> tuple[int, int | None]: ...


def _lines(trace_id: str, collection: str, verdicts: Sequence[Verdict], prev: str) -> list[bytes]:
    """The records of `verdicts`, each chained to the one before (the first to `prev`)."""
    lines = []
    for v in verdicts:
        record = {
            "ts": round(time.time(), 3),
            "trace": trace_id,
            "collection": collection,
            **dataclasses.asdict(v),
            "prev": prev,
        }
        line = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
        prev = hashlib.sha256(line).hexdigest()
        lines.append(line)
    return lines


def _verify(lines: Iterable[bytes]) -> tuple[int, int | None]:
    """(lines checked, number of the first line whose chain is broken or None)."""
    prev = GENESIS
    n = 0
    for n, line in enumerate(lines, start=1):
        try:
            claimed = json.loads(line).get("prev")
        except ValueError:
            return n, n
        if claimed != prev:
            return n, n
        prev = hashlib.sha256(line).hexdigest()
    return n, None


class AuditLog:
    """The log as a file under DARI_HOME (the embedded default)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def append(self, trace_id: str, collection: str, verdicts: Sequence[Verdict]) -> None:
        if not verdicts:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    last = _last_line(f)
                    prev = hashlib.sha256(last).hexdigest() if last else GENESIS
                    lines = _lines(trace_id, collection, verdicts, prev)
                    f.seek(0, os.SEEK_END)
                    f.write(b"".join(line + b"\n" for line in lines))
                    f.flush()
                    os.fsync(f.fileno())
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except OSError as exc:
            raise StoreError(
                f"cannot write the audit log {self.path}: {exc}",
                "check that DARI_HOME is writable and the disk is not full",
            ) from exc

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)

    def verify(self) -> tuple[int, int | None]:
        """(lines checked, number of the first line whose chain is broken or None)."""
        if not self.path.is_file():
            return 0, None
        with self.path.open("rb") as f:
            return _verify(raw.rstrip(b"\n") for raw in f)


class StoreAuditLog:
    """The same chained log in the store's `audit` table (store.backend = "postgres"), so that
    every replica appends to one chain: an advisory lock orders the appends, a trigger refuses
    UPDATE and DELETE (dari.db.schema)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def where(self) -> str:
        return f"the audit table of {self._store.db.where}"

    def append(self, trace_id: str, collection: str, verdicts: Sequence[Verdict]) -> None:
        if not verdicts:
            return
        with self._store.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_AUDIT,))
            row = db.execute("SELECT line FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = hashlib.sha256(str(row[0]).encode()).hexdigest() if row else GENESIS
            lines = _lines(trace_id, collection, verdicts, prev)
            db.executemany("INSERT INTO audit(line) VALUES (?)", [(ln.decode(),) for ln in lines])

    def _all(self) -> list[str]:
        return [str(r[0]) for r in self._store.rows("SELECT line FROM audit ORDER BY seq")]

    def records(self) -> Iterator[dict[str, Any]]:
        for line in self._all():
            yield json.loads(line)

    def verify(self) -> tuple[int, int | None]:
        return _verify(line.encode() for line in self._all())

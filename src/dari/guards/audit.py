"""The append-only audit log: one JSON line per guard verdict, chained by hashes.

Each line carries the sha256 of the line before it, so an edited or deleted line breaks the chain
at that point (`dari guard audit --verify`). Lines hold the verdict (guard, action, rule, score,
span kinds and offsets), never the text it was about: no raw personal data lands here. Writers in
several processes take an exclusive lock on the file for each append.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dari.errors import StoreError
from dari.types import Verdict

GENESIS = "0" * 64


def _last_line(f: Any) -> bytes:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    block = min(size, 65536)
    f.seek(size - block)
    lines = f.read(block).rstrip(b"\n").split(b"\n")
    return lines[-1] if lines and lines[-1] else b""


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

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
                    lines = []
                    for v in verdicts:
                        body = dataclasses.asdict(v)
                        record = {
                            "ts": round(time.time(), 3),
                            "trace": trace_id,
                            "collection": collection,
                            **body,
                            "prev": prev,
                        }
                        line = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
                        prev = hashlib.sha256(line).hexdigest()
                        lines.append(line + b"\n")
                    f.seek(0, os.SEEK_END)
                    f.write(b"".join(lines))
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
        prev = GENESIS
        n = 0
        with self.path.open("rb") as f:
            for n, raw in enumerate(f, start=1):
                line = raw.rstrip(b"\n")
                try:
                    claimed = json.loads(line).get("prev")
                except ValueError:
                    return n, n
                if claimed != prev:
                    return n, n
                prev = hashlib.sha256(line).hexdigest()
        return n, None

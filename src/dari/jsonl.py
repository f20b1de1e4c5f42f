"""Writing JSON-lines files that users asked for (exports, verdicts): never over an existing file
without `force`, and all or nothing (a temporary file renamed into place)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from dari.errors import InputError


def read_utf8(path: Path, what: str, hint: str = "save it as UTF-8") -> tuple[bytes, str]:
    """A file users give dari (a golden set, training rows): its bytes and its text (UTF-8, a
    byte-order mark dropped); an InputError naming `what` when it cannot be read or decoded."""
    try:
        raw = path.read_bytes()
        return raw, raw.decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}", "check the path") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text", hint) from exc


def check_target(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing file without `force`, or to write over a folder."""
    if path.is_dir():
        raise InputError(f"the output {path} is a folder", "give a file name, e.g. out.jsonl")
    if path.exists() and not force:
        raise InputError(
            f"the output {path} already exists",
            "pass --force to replace it, or choose another --output",
        )


def write_jsonl(path: Path, rows: Iterable[Mapping[str, object]], force: bool = False) -> int:
    """Write rows as JSON lines through a temporary file renamed into place, so a failed export
    never leaves half a file; returns how many rows were written."""
    check_target(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}", "check the folder") from exc
    written = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(
                f"cannot write {path}: {exc.strerror}",
                "free disk space or choose another --output; nothing was written",
            ) from exc
        raise
    return written

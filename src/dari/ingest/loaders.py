"""Files to documents: dispatch on the suffix to a format reader, then add what every document
carries (source, content hash, language, acl, file facts and the optional `<file>.meta.json`)."""

from __future__ import annotations

import json
import os
import stat as stat_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dari.config import IngestSettings
from dari.ingest.formats import pdf, rows, text, web, word
from dari.ingest.formats.base import Extracted, fail, reason
from dari.text import detect_lang, sha256_text
from dari.types import Document

Reader = Callable[[Path, bytes, IngestSettings], list[Extracted]]

_READERS: Mapping[str, tuple[str, Reader]] = {
    ".txt": ("txt", text.read_txt),
    ".md": ("md", text.read_markdown),
    ".markdown": ("md", text.read_markdown),
    ".html": ("html", web.read_html),
    ".htm": ("html", web.read_html),
    ".pdf": ("pdf", pdf.read_pdf),
    ".docx": ("docx", word.read_docx),
    ".csv": ("csv", rows.read_csv),
    ".jsonl": ("jsonl", rows.read_jsonl),
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_READERS)

_SIDECAR_SUFFIX = ".meta.json"
_SIDECAR_SHAPE = '{"acl": ["tag", ...], "title": "...", "metadata": {"key": "value", ...}}'
_MB = 1024 * 1024


@dataclass(frozen=True)
class _Sidecar:
    """What `<file>.meta.json` adds to the documents of <file>."""

    acl: tuple[str, ...] = ()
    title: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


def is_sidecar(path: Path) -> bool:
    """Whether `path` is a `<file>.meta.json` sidecar: metadata for another file, not a document."""
    return path.name.lower().endswith(_SIDECAR_SUFFIX)


def load_path(path: Path, settings: IngestSettings, acl: tuple[str, ...] = ()) -> list[Document]:
    """The documents of one file: one, or one per row for csv/jsonl. Raises IngestError."""
    fmt, reader = _reader_for(path)
    stat = _stat(path)
    if stat.st_size > settings.max_file_mb * _MB:
        raise fail(
            path,
            f"file is {stat.st_size / _MB:.1f} MB, over the {settings.max_file_mb:g} MB limit",
            "raise ingest.max_file_mb in dari.toml (or DARI_INGEST__MAX_FILE_MB), "
            "or split the file",
        )
    data = _read(path)
    if not data:
        raise fail(path, "is empty (0 bytes)", "add content to it or remove it")
    sidecar = _read_sidecar(path)
    facts = {
        "mtime": datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat(timespec="seconds"),
        "size_bytes": str(stat.st_size),
    }
    tags = tuple(sorted({tag.strip() for tag in (*acl, *sidecar.acl) if tag.strip()}))
    return [
        _document(path, fmt, part, sidecar, tags, facts) for part in reader(path, data, settings)
    ]


def _reader_for(path: Path) -> tuple[str, Reader]:
    suffix = path.suffix.lower()
    if is_sidecar(path):
        raise fail(
            path,
            "is a .meta.json sidecar (metadata for another file), not a document",
            "skip sidecars when listing files: dari.ingest.loaders.is_sidecar(path)",
        )
    if suffix not in _READERS:
        raise fail(
            path,
            f"unsupported file type '{suffix or '(no suffix)'}'",
            f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}; convert it or leave it out",
        )
    return _READERS[suffix]


def _stat(path: Path) -> os.stat_result:
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise _disappeared(path, exc) from exc
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if not stat_module.S_ISREG(stat.st_mode):
        raise fail(path, "is not a regular file", "pass files, or a folder to walk")
    return stat


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise _disappeared(path, exc) from exc
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _disappeared(path: Path, exc: OSError) -> Exception:
    return fail(
        path,
        "file disappeared (deleted or moved after it was listed)",
        "check that nothing else is moving files in that folder, then ingest again",
    )


def _unreadable(path: Path, exc: OSError) -> Exception:
    return fail(
        path,
        f"cannot read the file ({exc.strerror or reason(exc)})",
        "check its permissions, and that it is a file on a mounted disk",
    )


def _read_sidecar(path: Path) -> _Sidecar:
    """The optional `<file>.meta.json`; a malformed one is an error, so tags are never lost."""
    sidecar = path.with_name(path.name + _SIDECAR_SUFFIX)
    try:
        raw = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return _Sidecar()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad_sidecar(sidecar, reason(exc)) from exc
    if not isinstance(raw, dict):
        raise _bad_sidecar(sidecar, f"it is a JSON {type(raw).__name__}, not an object")
    unknown = sorted(set(raw) - {"acl", "title", "metadata"})
    if unknown:
        raise _bad_sidecar(sidecar, f"unknown key(s) {', '.join(unknown)}")
    acl, title, metadata = raw.get("acl", []), raw.get("title", ""), raw.get("metadata", {})
    if not isinstance(acl, list) or not all(isinstance(tag, str) for tag in acl):
        raise _bad_sidecar(sidecar, '"acl" must be a list of strings')
    if not isinstance(title, str):
        raise _bad_sidecar(sidecar, '"title" must be a string')
    if not isinstance(metadata, dict) or not all(
        isinstance(value, str | int | float | bool) for value in metadata.values()
    ):
        raise _bad_sidecar(sidecar, '"metadata" must be an object of strings, numbers or booleans')
    return _Sidecar(
        acl=tuple(acl),
        title=" ".join(title.split()),
        metadata={str(k): _metadata_value(v) for k, v in metadata.items()},
    )


def _metadata_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bad_sidecar(sidecar: Path, what: str) -> Exception:
    hint = f"fix or remove it; expected {_SIDECAR_SHAPE}"
    return fail(sidecar, f"malformed sidecar: {what}", hint)


def _document(
    path: Path,
    fmt: str,
    part: Extracted,
    sidecar: _Sidecar,
    acl: tuple[str, ...],
    facts: Mapping[str, str],
) -> Document:
    """Add what every document carries. Rows keep their own titles; a file's sidecar title wins."""
    full_text = "\n\n".join(block.text for block in part.blocks)
    if part.fragment:
        source, title = f"{path}#{part.fragment}", part.title
    else:
        source, title = str(path), sidecar.title or part.title or path.stem
    metadata = {**sidecar.metadata, **part.metadata, **facts}
    if part.encoding:
        metadata["encoding"] = part.encoding
    return Document(
        source=source,
        title=title,
        blocks=part.blocks,
        format=fmt,
        content_hash=sha256_text(full_text),
        lang=detect_lang(full_text),
        acl=acl,
        metadata=metadata,
    )

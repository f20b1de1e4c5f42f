"""Multipart uploads streamed to disk: each file part is written, chunk by chunk, into a staging
folder of its own and its size is checked as it arrives, so a large upload never sits in memory
and an oversized one stops at the limit (413) with its partial file deleted."""

from __future__ import annotations

import shutil
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from dari.errors import InputError, TooLarge

STAGING = ".incoming"  # under DARI_HOME/uploads/; a collection name cannot start with a dot
_MAX_FIELD_BYTES = 64 * 1024
_MAX_FILES = 1000
_MAX_NAME_BYTES = 200
_USAGE = "send multipart/form-data: one or more file parts, and optionally an 'acl' field"


@dataclass(frozen=True)
class Upload:
    name: str  # the sanitised file name: a base name, never a path
    path: Path  # where its bytes are, in the staging folder


@dataclass(frozen=True)
class Received:
    files: tuple[Upload, ...]
    fields: dict[str, str]


def staging_folder(uploads: Path) -> Path:
    """A new folder for one request's files; leftovers of crashed requests (a day old) go."""
    root = uploads / STAGING
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        try:
            stale = old.stat().st_mtime < time.time() - 86400
        except FileNotFoundError:  # another request finished with it just now
            continue
        if stale:
            shutil.rmtree(old, ignore_errors=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def safe_name(raw: str) -> str:
    """A file name that stays in its folder: the last part of any path (`../`, `C:\\`), no
    control characters, no leading dots (hidden files are skipped on re-ingest)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if c.isprintable())
    name = name.strip().lstrip(".").strip()
    if not name:
        raise InputError(f"the file name '{raw}' has nothing usable left", "name the file")
    if len(name.encode()) > _MAX_NAME_BYTES:  # shorten the stem: the suffix picks the reader
        stem, dot, suffix = name.rpartition(".")
        tail = f".{suffix}" if dot and stem and len(suffix) <= 16 else ""
        head = (stem if tail else name).encode()[: _MAX_NAME_BYTES - len(tail.encode())]
        name = head.decode("utf-8", "ignore") + tail
    return name


class MultipartSink:
    """Takes a multipart body chunk by chunk: file parts go to files in `folder` (numbered, so
    two parts never share one), other fields to memory. Raises TooLarge past `max_file_bytes`."""

    def __init__(self, content_type: str, folder: Path, max_file_bytes: int) -> None:
        kind, options = parse_options_header(content_type)
        if kind != b"multipart/form-data" or b"boundary" not in options:
            raise InputError(f"expected multipart/form-data, got '{content_type}'", _USAGE)
        self._folder = folder
        self._limit = max_file_bytes
        self._files: list[Upload] = []
        self._fields: dict[str, str] = {}
        self._header = (b"", b"")
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._out: IO[bytes] | None = None
        self._size = 0
        self._parser = MultipartParser(
            options[b"boundary"],
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": self._part_end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise InputError(f"malformed multipart body: {exc}", _USAGE) from exc

    def finish(self) -> Received:
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise InputError(f"malformed multipart body: {exc}", _USAGE) from exc
        if self._out is not None:
            raise InputError("the multipart body ended inside a file", _USAGE)
        return Received(tuple(self._files), dict(self._fields))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    # -- parser callbacks --------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._disposition, self._field, self._value = b"", None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0] + data[start:end], self._header[1])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0], self._header[1] + data[start:end])

    def _header_end(self) -> None:
        if self._header[0].lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = (b"", b"")

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InputError("a multipart part has no name", _USAGE)
        if b"filename" not in options:
            self._field = _decode(options[b"name"])
            return
        if len(self._files) >= _MAX_FILES:
            raise TooLarge(f"more than {_MAX_FILES} files in one request", "send fewer at once")
        name = safe_name(_decode(options[b"filename"]))
        if any(f.name == name for f in self._files):
            raise InputError(f"two files named '{name}' in one request", "send each name once")
        path = self._folder / str(len(self._files))
        self._files.append(Upload(name, path))
        self._out, self._size = open(path, "wb"), 0  # noqa: SIM115 - closed in _part_end/close

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._out is None:
            if len(self._value) + end - start > _MAX_FIELD_BYTES:
                raise TooLarge(f"the form field '{self._field}' is over 64 KB", _USAGE)
            self._value += data[start:end]
            return
        self._size += end - start
        if self._size > self._limit:
            name = self._files[-1].name
            raise TooLarge(
                f"'{name}' is over the upload limit of {self._limit / 2**20:g} MB",
                "send a smaller file, or raise server.max_upload_mb",
            )
        self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self._out is not None:
            self.close()
        elif self._field is not None:
            self._fields[self._field] = _decode(bytes(self._value))


async def receive(request: Request, folder: Path, max_file_bytes: int) -> Received:
    """Stream the request's multipart body into `folder`. On any failure (too large, malformed,
    the client went away) the folder is deleted and the error raised: nothing is half-kept."""
    sink = MultipartSink(request.headers.get("content-type", ""), folder, max_file_bytes)
    try:
        async for chunk in request.stream():
            if chunk:
                await anyio.to_thread.run_sync(sink.write, chunk)  # disk writes off the loop
        return sink.finish()
    except BaseException:
        sink.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")

"""csv and jsonl: one document per row, its text from the first of `ingest.text_fields` present."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from dari.config import IngestSettings
from dari.ingest.formats.base import (
    Extracted,
    decode_text,
    fail,
    normalise,
    reason,
    require_text,
)
from dari.types import Block

_ID_GUESSES = ("id", "_id", "doc_id")
_MAX_METADATA_CHARS = 200  # longer values stay out of metadata, which is stored with every chunk
_SNIFF_CHARS = 65_536
_DELIMITERS = (",", "\t", ";", "|")  # ties go to the first
_QUOTED = re.compile(r'"[^"]*"')
_TEXT_FIELDS_HINT = (
    "name the column that holds the text in ingest.text_fields "
    "(dari.toml, or DARI_INGEST__TEXT_FIELDS='[\"column\"]')"
)


def read_csv(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    text, encoding = decode_text(path, data)
    require_text(path, text)
    # A field can be as long as the file, but no longer; the default limit (128 KiB) is too low.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = [name.strip() for name in next(reader, [])]
        text_field = _pick(settings.text_fields, header)
        if text_field is None:
            raise _no_text_column(path, settings, header, "")
        id_key = _id_key(path, settings, header, "")
        rows = (dict(zip(header, record, strict=False)) for record in reader if any(record))
        return _documents(path, settings, ((row, text_field, id_key) for row in rows), encoding)
    except csv.Error as exc:
        raise fail(
            path,
            f"malformed CSV at line {reader.line_num} ({reason(exc)})",
            "fix the quoting on that line, or save the file again from a spreadsheet as CSV",
        ) from exc


def read_jsonl(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    text, encoding = decode_text(path, data)
    return _documents(path, settings, _jsonl_rows(path, text, settings), encoding)


def _delimiter(text: str) -> str:
    """The delimiter sniffed from the header line: the most frequent candidate outside quotes.

    csv.Sniffer also guesses quoting from the whole sample and gets it wrong on ordinary text
    with quotes and commas, so only the delimiter is sniffed; quoting stays Excel's.
    """
    header = _QUOTED.sub("", text[:_SNIFF_CHARS].split("\n", 1)[0])
    counts = {candidate: header.count(candidate) for candidate in _DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _jsonl_rows(
    path: Path, text: str, settings: IngestSettings
) -> Iterator[tuple[Mapping[str, object], str, str]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = "nested too deep"
            if isinstance(exc, json.JSONDecodeError):
                detail = f"{exc.msg} at column {exc.colno}"
            raise fail(
                path,
                f"{where} is not valid JSON ({detail})",
                "fix or remove that line: each line of a .jsonl file must be one JSON object",
            ) from exc
        if not isinstance(row, dict):
            raise fail(
                path,
                f"{where} is a JSON {type(row).__name__}, not an object",
                'each line of a .jsonl file must be one JSON object, like {"text": "..."}',
            )
        text_field = _pick(settings.text_fields, row)
        if text_field is None:
            raise _no_text_column(path, settings, list(row), f" on {where}")
        yield row, text_field, _id_key(path, settings, row, f" on {where}")


def _documents(
    path: Path,
    settings: IngestSettings,
    rows: Iterator[tuple[Mapping[str, object], str, str]],
    encoding: str,
) -> list[Extracted]:
    """One Extracted per row with text; rows without are skipped, but not all of them."""
    parts: list[Extracted] = []
    used: set[str] = set()
    count = 0
    for count, (row, text_field, id_key) in enumerate(rows, start=1):
        used.add(text_field)
        part = _row(path, count, row, (text_field, id_key), settings, encoding)
        if part is not None:
            parts.append(part)
    if count == 0:
        raise fail(path, "is empty (no data rows)", "add rows to it or remove it")
    if not parts:
        columns = ", ".join(sorted(used))
        raise fail(
            path,
            f"none of its {count} rows has text in its text column ({columns})",
            _TEXT_FIELDS_HINT,
        )
    return parts


def _row(
    path: Path,
    number: int,
    row: Mapping[str, object],
    keys: tuple[str, str],
    settings: IngestSettings,
    encoding: str,
) -> Extracted | None:
    """A row's document; None when its text is empty. `keys`: its text and id columns."""
    text_field, id_key = keys
    text = normalise(_as_text(row.get(text_field)))
    if not text.strip():
        return None
    title_field = settings.title_field
    title = " ".join(_as_text(row.get(title_field)).split()) if title_field else ""
    skip = {text_field, title_field, id_key}
    metadata = {
        key: value
        for key, raw in row.items()
        if key not in skip and 0 < len(value := _scalar(raw)) <= _MAX_METADATA_CHARS
    }
    metadata["id"] = (_scalar(row.get(id_key)) if id_key else "") or str(number)
    return Extracted(
        blocks=(Block(text=text),),
        title=title or f"{path.name} row {number}",
        fragment=str(number),
        metadata=metadata,
        encoding=encoding,
    )


def _pick(wanted: tuple[str, ...], columns: Collection[str]) -> str | None:
    """The first wanted name among the columns; exact, else ignoring case."""
    for name in wanted:
        if name in columns:
            return name
    folded = {column.casefold(): column for column in columns}
    return next((folded[name.casefold()] for name in wanted if name.casefold() in folded), None)


def _id_key(path: Path, settings: IngestSettings, columns: Collection[str], where: str) -> str:
    """The column holding a row's id: ingest.id_field (which must exist), else a usual name."""
    if not settings.id_field:
        return next((name for name in _ID_GUESSES if name in columns), "")
    if settings.id_field in columns:
        return settings.id_field
    raise fail(
        path,
        f"no column '{settings.id_field}' (ingest.id_field){where}; "
        f"columns found: {_listing(columns)}",
        'set ingest.id_field to one of those columns, or to "" to number the rows',
    )


def _no_text_column(
    path: Path, settings: IngestSettings, columns: Collection[str], where: str
) -> Exception:
    return fail(
        path,
        f"no text column{where}: looked for {', '.join(settings.text_fields)}; "
        f"columns found: {_listing(columns)}",
        _TEXT_FIELDS_HINT,
    )


def _listing(columns: Collection[str]) -> str:
    names = [name for name in columns if name][:20]
    more = f" (+{len(columns) - len(names)} more)" if len(columns) > len(names) else ""
    return (", ".join(names) + more) if names else "none"


def _scalar(value: object) -> str:
    """A scalar cell as metadata text; "" for null, lists and objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip()
    return ""


def _as_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return "\n".join(_as_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return _scalar(value) if not isinstance(value, str) else value

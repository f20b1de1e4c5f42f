"""PDF through pypdf: one block per page that has text, numbered from 1."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from dari.config import IngestSettings
from dari.ingest.formats.base import Extracted, fail, normalise, reason
from dari.types import Block

if TYPE_CHECKING:
    from pypdf import PdfReader

_REPAIR_HINT = "open it in a PDF viewer and save or export it again, then ingest the new copy"


def read_pdf(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    # pypdf logs its repairs ("EOF marker not found") to stderr; dari reports failures itself.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    # pypdf raises more than its own errors on broken files; all of them mean the same here.
    broken: tuple[type[BaseException], ...] = (
        *(PyPdfError, ValueError, TypeError, KeyError, IndexError, AttributeError),
        *(AssertionError, NotImplementedError, RecursionError, OSError, zlib.error, struct.error),
    )
    try:
        reader = PdfReader(io.BytesIO(data))
        _decrypt(path, reader)
        count = len(reader.pages)
        blocks = tuple(
            Block(text=text, page=number)
            for number, page in enumerate(reader.pages, start=1)
            if (text := normalise(page.extract_text() or "")).strip()
        )
    except DependencyError as exc:
        raise fail(
            path,
            f"encrypted PDF that needs an extra package to open ({reason(exc)})",
            "pip install cryptography, or remove the encryption and ingest the copy",
        ) from exc
    except broken as exc:
        raise fail(path, f"corrupt or unreadable PDF ({reason(exc)})", _REPAIR_HINT) from exc
    if count == 0:
        raise fail(path, "corrupt or unreadable PDF (it has no pages)", _REPAIR_HINT)
    if not blocks:
        raise fail(
            path,
            f"no text layer on any of its {count} page(s) (a scan?)",
            "run OCR on it first (e.g. ocrmypdf in.pdf out.pdf) and ingest the OCR'd copy",
        )
    return [Extracted(blocks=blocks, title=_title(reader, broken))]


def _decrypt(path: Path, reader: PdfReader) -> None:
    """Open an encrypted PDF with the empty password, as viewers do; refuse one that needs more."""
    from pypdf import PasswordType

    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise fail(
            path,
            "encrypted PDF: it needs a password to open",
            "remove the password (e.g. qpdf --decrypt --password=PASS in.pdf out.pdf) "
            "and ingest the copy",
        )


def _title(reader: PdfReader, broken: tuple[type[BaseException], ...]) -> str:
    """The document info's /Title, if usable; it is optional, so errors mean none."""
    try:
        title = reader.metadata.title if reader.metadata else None
    except broken:
        return ""
    return " ".join(normalise(str(title)).split()) if title else ""

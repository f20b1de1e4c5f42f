"""Word .docx through python-docx: sections by heading styles, tables as " | " lines."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dari.config import IngestSettings
from dari.ingest.formats.base import Extracted, Sections, fail, reason, require_text
from dari.types import Block

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph

_HEADING_STYLE = re.compile(r"Heading ([1-9])")


def read_docx(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import LxmlError

    broken: tuple[type[BaseException], ...] = (
        *(zipfile.BadZipFile, PackageNotFoundError, LxmlError, KeyError, ValueError),
        *(TypeError, AttributeError, IndexError, EOFError),
    )
    try:
        document = docx.Document(io.BytesIO(data))
        title, first_h1, blocks = _sections(document)
        title = title or (document.core_properties.title or "").strip() or first_h1
    except broken as exc:
        raise fail(
            path,
            f"corrupt or unreadable .docx ({reason(exc)})",
            "open it in Word or LibreOffice and save it again as .docx "
            "(old binary .doc files are not supported)",
        ) from exc
    if not blocks:
        require_text(path, "")
    return [Extracted(blocks=blocks, title=title)]


def _sections(document: DocxDocument) -> tuple[str, str, tuple[Block, ...]]:
    """Paragraphs and tables in body order; "Title" is a level-0 heading, "Heading N" level N."""
    from docx.table import Table

    sections = Sections()
    titles = {0: "", 1: ""}  # the first "Title" and "Heading 1" paragraphs
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for line in _table_lines(item):
                sections.add(line)
            continue
        text = item.text.strip()
        level = _heading_level(item)
        if not text:
            continue
        if level is None:
            sections.add(text)
            continue
        if level in titles and not titles[level]:
            titles[level] = text
        sections.heading(level, text)
    return titles[0], titles[1], sections.blocks()


def _heading_level(paragraph: Paragraph) -> int | None:
    name = paragraph.style.name if paragraph.style is not None else ""
    if name == "Title":
        return 0
    found = _HEADING_STYLE.fullmatch(name or "")
    return int(found.group(1)) if found else None


def _table_lines(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell is previous:  # a merged cell comes once per grid column it spans
                continue
            previous = cell
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
        if cells:
            yield " | ".join(cells)

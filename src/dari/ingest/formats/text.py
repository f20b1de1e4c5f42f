"""Plain text and markdown. Markdown is split into one block per section of its headings."""

from __future__ import annotations

import re
from pathlib import Path

from dari.config import IngestSettings
from dari.ingest.formats.base import Extracted, Sections, decode_text, normalise, require_text
from dari.types import Block

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^\s*(?:$|[-*+>|]|\d+[.)](?:\s|$))")  # blank, list, quote, table
_FRONT_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def read_txt(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    text, encoding = decode_text(path, data)
    text = require_text(path, normalise(text))
    return [Extracted(blocks=(Block(text=text),), encoding=encoding)]


def read_markdown(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    raw, encoding = decode_text(path, data)
    text, front_title = _split_front_matter(normalise(raw))
    title, blocks = _sections(text)
    if not blocks:
        require_text(path, "")
    return [Extracted(blocks=blocks, title=front_title or title, encoding=encoding)]


def _split_front_matter(text: str) -> tuple[str, str]:
    """Drop a leading YAML front matter block; return the rest and its `title:`, if any."""
    if not text.startswith("---\n"):
        return text, ""
    end = _FRONT_END.search(text, 4)
    if end is None:
        return text, ""
    found = _FRONT_TITLE.search(text, 4, end.start())
    title = found.group(1) if found else ""
    if len(title) >= 2 and title[0] == title[-1] and title[0] in "'\"":
        title = title[1:-1]
    return text[end.end() :].lstrip("\n"), title.strip()


def _sections(text: str) -> tuple[str, tuple[Block, ...]]:
    """Blocks per heading section (ATX `#` and setext underlines), fenced code kept whole."""
    sections = Sections()
    title = ""
    fence = ""
    lines = text.split("\n")
    skip_next = False
    for i, line in enumerate(lines):
        if skip_next:  # a setext underline, already used
            skip_next = False
            continue
        if fence:
            sections.add(line)
            fence = "" if _closes(line, fence) else fence
            continue
        if opened := _FENCE.match(line):
            fence = opened.group(1)
            sections.add(line)
            continue
        level, name = _heading(lines, i)
        if not level:
            sections.add(line)
            continue
        skip_next = not _ATX.match(line)
        title = title or (name if level == 1 else "")
        sections.heading(level, name)
    return title, sections.blocks()


def _heading(lines: list[str], i: int) -> tuple[int, str]:
    """(level, text) when line i starts a heading, else (0, "")."""
    line = lines[i]
    if atx := _ATX.match(line):
        return len(atx.group(1)), atx.group(2).strip()
    if i + 1 >= len(lines) or _NOT_PARAGRAPH.match(line) or _FENCE.match(line):
        return 0, ""
    underline = _SETEXT.match(lines[i + 1])
    if underline is None or (i > 0 and lines[i - 1].strip() and not _ATX.match(lines[i - 1])):
        return 0, ""  # only a one-line paragraph becomes a setext heading here
    return (1 if underline.group(1)[0] == "=" else 2), line.strip()


def _closes(line: str, fence: str) -> bool:
    marker = line.strip()
    return len(marker) >= len(fence) and set(marker) == {fence[0]}

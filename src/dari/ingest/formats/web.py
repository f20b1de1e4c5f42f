"""HTML: boilerplate and hidden elements removed, one block per h1-h6 section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from dari.config import IngestSettings
from dari.ingest.formats.base import Extracted, Sections, decode_text, require_text

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from bs4.element import Tag

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_BOILERPLATE = (
    *("script", "style", "nav", "header", "footer", "aside", "form", "noscript"),
    *("template", "iframe", "svg", "canvas", "object", "embed"),
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_PARAGRAPH = frozenset({"p", "pre", "blockquote", "ul", "ol", "dl", "table", "figure"})
_LINE = frozenset(
    {"div", "tr", "dt", "dd", "section", "article", "main", "figcaption", "caption", "address"}
    | {"details", "summary", "center", "fieldset", "legend", "thead", "tbody", "tfoot"}
)
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


def read_html(path: Path, data: bytes, settings: IngestSettings) -> list[Extracted]:
    from bs4 import BeautifulSoup

    declared = _META_CHARSET.search(data[:4096])
    text, encoding = decode_text(path, data, declared.group(1).decode("ascii") if declared else "")
    soup = BeautifulSoup(text, "lxml")
    title = _title(soup)
    _strip_boilerplate(soup)
    sections = Sections()
    _walk(soup.body or soup, sections)
    blocks = sections.blocks()
    if not blocks:
        require_text(path, "")
    return [Extracted(blocks=blocks, title=title, encoding=encoding)]


def _title(soup: BeautifulSoup) -> str:
    """<title>, else the first <h1>, read before boilerplate goes (an <h1> may sit in a header)."""
    for tag in (soup.title, soup.find("h1")):
        text = _SPACE.sub(" ", tag.get_text(" ")).strip() if tag is not None else ""
        if text:
            return text
    return ""


def _strip_boilerplate(soup: BeautifulSoup) -> None:
    doomed = [*soup.find_all(_BOILERPLATE), *soup.find_all(_is_hidden)]
    for tag in doomed:
        if not tag.decomposed:  # already gone with a removed ancestor
            tag.decompose()


def _is_hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).strip().lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))


class _Text:
    """The text of one section as it is walked: inline whitespace collapsed, <pre> kept as is."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def inline(self, text: str) -> None:
        text = _SPACE.sub(" ", text)
        if not self.parts or self.parts[-1][-1] in " \n":
            text = text.lstrip(" ")
        if text:
            self.parts.append(text)

    def raw(self, text: str) -> None:
        if text:
            self.parts.append(text)

    def mark(self, text: str) -> None:
        """A separator: line breaks (added only as far as missing), a bullet, a cell's " | "."""
        wanted = len(text) - len(text.lstrip("\n"))
        if wanted:
            tail = "".join(self.parts[-2:])
            have = len(tail) - len(tail.rstrip("\n")) if self.parts else wanted
            text = "\n" * max(0, wanted - have) + text[wanted:]
        if self.parts and self.parts[-1][-1] in " \n":
            text = text.lstrip(" ")
        self.raw(text)

    def take(self) -> str:
        lines = [line.rstrip() for line in "".join(self.parts).split("\n")]
        self.parts = []
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _walk(root: Tag, sections: Sections) -> None:
    """Depth-first over the tree without recursion (deep markup must not overflow the stack)."""
    from bs4.element import NavigableString, Tag

    out = _Text()
    in_pre = 0
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if type(node) is NavigableString:  # not a comment, doctype or CDATA
                (out.raw if in_pre else out.inline)(str(node))
        elif not isinstance(node, Tag):
            continue
        elif leaving:
            in_pre -= node.name == "pre"
            out.mark(_after(node.name))
        elif node.name in _HEADINGS:
            sections.add(out.take())
            heading = _SPACE.sub(" ", node.get_text(" ")).strip()
            if heading:
                sections.heading(_HEADINGS[node.name], heading)
        else:
            in_pre += node.name == "pre"
            out.mark(_before(node))
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    sections.add(out.take())


def _before(tag: Tag) -> str:
    name = tag.name
    if name in ("td", "th"):
        return " | " if tag.find_previous_sibling(("td", "th")) is not None else ""
    if name == "li":
        return "\n- "
    if name in ("br", "hr"):
        return "\n"
    return "\n\n" if name in _PARAGRAPH else "\n" if name in _LINE else ""


def _after(name: str) -> str:
    return "\n\n" if name in _PARAGRAPH else "\n" if name in _LINE or name == "li" else ""

"""Parent-child splitting: sections (what the LLM reads) cut into small overlapping children
(what is indexed), at sentence boundaries, sized by estimated tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dari.config import ChunkingSettings
from dari.index.analyzer import Analyzer
from dari.text import estimate_tokens
from dari.types import Chunk, Document, Section, Split

_WORDISH = re.compile(r"\S+\s*")
# Bump when splitting changes for the same settings: files are then re-split on the next ingest.
SPLITTER_VERSION = 2


class ParentChildSplitter:
    """Blocks (headings, pages) become sections no longer than `section_tokens`; each section is
    cut into children of about `chunk_tokens` with `chunk_overlap` tokens carried over."""

    def __init__(self, settings: ChunkingSettings, analyzer: Analyzer) -> None:
        from dari.errors import ConfigError

        if settings.chunk_overlap >= settings.chunk_tokens:
            raise ConfigError(
                "chunking.chunk_overlap must be smaller than chunking.chunk_tokens",
                "lower chunk_overlap or raise chunk_tokens in dari.toml",
            )
        if settings.chunk_tokens > settings.section_tokens:
            raise ConfigError(
                "chunking.chunk_tokens must not exceed chunking.section_tokens",
                "children are cut from sections: lower chunk_tokens or raise section_tokens",
            )
        self._s = settings
        self._analyzer = analyzer

    def split(self, doc_id: str, document: Document) -> Split:
        sections: list[Section] = []
        chunks: list[Chunk] = []
        for block in document.blocks:
            header = _header(document.title, block.heading)
            sentences = self._sentences(block.text, document.lang)
            for window in _pack(sentences, self._s.section_tokens, overlap=0):
                text = "".join(window).strip()
                if not text:
                    continue
                section = Section(
                    id=f"{doc_id}:s{len(sections)}",
                    doc_id=doc_id,
                    ordinal=len(sections),
                    text=text,
                    heading=block.heading,
                    page=block.page,
                )
                sections.append(section)
                for child in _pack(window, self._s.chunk_tokens, self._s.chunk_overlap):
                    child_text = "".join(child).strip()
                    if child_text:
                        chunks.append(
                            Chunk(
                                id=f"{doc_id}:c{len(chunks)}",
                                doc_id=doc_id,
                                section_id=section.id,
                                ordinal=len(chunks),
                                text=f"{header}\n{child_text}" if header else child_text,
                                lang=document.lang,
                            )
                        )
        return Split(tuple(sections), tuple(chunks))

    def _sentences(self, text: str, lang: str) -> list[str]:
        """Sentences with their trailing whitespace kept, long ones cut into word runs."""
        out: list[str] = []
        for sentence in self._analyzer.sentences(text, lang):
            if estimate_tokens(sentence) <= self._s.chunk_tokens:
                out.append(sentence)
            else:
                out.extend(_cut_long(sentence, self._s.chunk_tokens))
        return out


def _header(title: str, heading: str) -> str:
    """Context line indexed with every child: the title and heading path it sits under."""
    if heading and (not title or heading.startswith(title)):
        return heading
    return " > ".join(x for x in (title, heading) if x)


def _cut_long(text: str, limit: int) -> Iterator[str]:
    buf: list[str] = []
    size = 0
    for word in _WORDISH.findall(text):
        n = estimate_tokens(word)
        if buf and size + n > limit:
            yield "".join(buf)
            buf, size = [], 0
        # A single "word" beyond the limit (a URL, unspaced text) is cut by characters, each
        # piece shrunk until it fits, since token density varies along the word.
        while n > limit:
            cut = max(1, len(word) * limit // n)
            while cut > 1 and estimate_tokens(word[:cut]) > limit:
                cut = max(1, cut * 3 // 4)
            yield word[:cut]
            word = word[cut:]
            n = estimate_tokens(word)
        buf.append(word)
        size += n
    if buf:
        yield "".join(buf)


def _pack(pieces: list[str], limit: int, overlap: int) -> Iterator[list[str]]:
    """Greedy packing of pieces into windows of <= limit tokens; each window after the first
    starts with trailing pieces of the previous one totalling <= overlap tokens."""
    window: list[str] = []
    size = 0
    fresh = 0  # pieces in the window that were not carried over
    for piece in pieces:
        n = estimate_tokens(piece)
        if window and size + n > limit:
            yield window
            carried: list[str] = []
            carried_size = 0
            for prev in reversed(window):
                m = estimate_tokens(prev)
                if carried_size + m > overlap or carried_size + m + n > limit:
                    break
                carried.insert(0, prev)
                carried_size += m
            window, size, fresh = carried, carried_size, 0
        window.append(piece)
        size += n
        fresh += 1
    if window and fresh:
        yield window

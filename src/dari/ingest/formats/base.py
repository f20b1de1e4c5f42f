"""What every format reader shares: the result type, decoding, normalisation and heading paths."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dari.errors import IngestError
from dari.types import Block

_BOMS = (  # UTF-32 LE first: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # not \t \n \v \f \r
_MAX_CONTROL_SHARE = 0.05
_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)
_MANY_BLANK_LINES = re.compile(r"\n{4,}")  # 3+ blank lines
_BINARY_HINT = (
    "if it is text, convert it to UTF-8 (e.g. iconv -f ENCODING -t UTF-8); "
    "otherwise remove it or give it its real suffix"
)


@dataclass(frozen=True)
class Extracted:
    """What a reader makes of a file, or of one of its rows, before hash, language and acl."""

    blocks: tuple[Block, ...]
    title: str = ""  # "" = the loader falls back to the sidecar's title, then the file stem
    fragment: str = ""  # "3" for row 3: the source becomes "path#3"
    metadata: Mapping[str, str] = field(default_factory=dict)
    encoding: str = ""  # the text encoding, where bytes were decoded


def fail(path: Path, what: str, hint: str) -> IngestError:
    """An IngestError whose message starts with the file it is about."""
    return IngestError(f"{path}: {what}", hint, reason=what)


def reason(exc: BaseException) -> str:
    """A third-party error as a short phrase for a one-line message."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def require_text(path: Path, text: str) -> str:
    if not text.strip():
        raise fail(path, "is empty (no text, or whitespace only)", "add text to it or remove it")
    return text


def normalise(text: str) -> str:
    """NFC, \\n line ends, no trailing spaces, at most two blank lines in a row, no outer blanks."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("", text)
    text = _MANY_BLANK_LINES.sub("\n\n\n", text)
    return text.strip("\n")


def decode_text(path: Path, data: bytes, declared: str = "") -> tuple[str, str]:
    """Bytes to (text, encoding): a BOM, a declared charset, utf-8, cp949, then a detected one."""
    bom = next((enc for mark, enc in _BOMS if data.startswith(mark)), "")
    if bom:
        decoded = _strict(data, bom)
        if decoded is None:
            raise fail(
                path,
                f"looks binary, not text (it starts with a {bom} BOM but does not decode as {bom})",
                _BINARY_HINT,
            )
        return _checked(path, decoded, bom)
    if b"\x00" in data:
        raise fail(path, "looks binary, not text (it contains NUL bytes)", _BINARY_HINT)
    for encoding in (_codec(declared), "utf-8", "cp949"):
        decoded = _strict(data, encoding) if encoding else None
        if decoded is not None and (encoding != "cp949" or _looks_korean(decoded)):
            return _checked(path, decoded, encoding)
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise fail(
            path,
            "looks binary, not text (no text encoding fits: tried utf-8, cp949 "
            "and charset detection)",
            _BINARY_HINT,
        )
    return _checked(path, str(best), best.encoding)


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _codec(name: str) -> str:
    """A declared charset as a Python codec; EUC-KR becomes its superset cp949."""
    try:
        codec = codecs.lookup(name).name if name else ""
    except LookupError:
        return ""
    return "cp949" if codec in ("euc_kr", "cp949") else codec


def _looks_korean(text: str) -> bool:
    """Whether cp949 made sense of the bytes: mostly Hangul among the non-ASCII characters."""
    sample = [c for c in text[:100_000] if ord(c) > 0x7F]
    hangul = sum(1 for c in sample if "\uac00" <= c <= "\ud7a3" or "\u3130" <= c <= "\u318f")
    return not sample or hangul / len(sample) >= 0.5


def _checked(path: Path, text: str, encoding: str) -> tuple[str, str]:
    sample = text[:100_000]
    controls = len(_CONTROL.findall(sample))
    if sample and controls / len(sample) > _MAX_CONTROL_SHARE:
        share = 100 * controls / len(sample)
        raise fail(path, f"looks binary, not text ({share:.0f}% control characters)", _BINARY_HINT)
    return text, encoding


class Sections:
    """Collects text under heading paths ("Install > Linux") and makes a Block of each section.

    A section's text starts with its own heading, so a changed heading changes the content hash.
    Sections with no text under their heading are dropped: their heading lives on in the paths.
    """

    def __init__(self, separator: str = "\n") -> None:
        self._separator = separator
        self._path: list[tuple[int, str]] = []
        self._parts: list[str] = []
        self._blocks: list[Block] = []

    def heading(self, level: int, text: str) -> None:
        self._flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))

    def add(self, text: str) -> None:
        self._parts.append(text)

    def blocks(self) -> tuple[Block, ...]:
        self._flush()
        return tuple(self._blocks)

    def _flush(self) -> None:
        body = normalise(self._separator.join(self._parts))
        self._parts = []
        if not body.strip():
            return
        own = self._path[-1][1] if self._path else ""
        text = f"{own}\n\n{body}" if own else body
        self._blocks.append(Block(text=text, heading=" > ".join(t for _, t in self._path)))

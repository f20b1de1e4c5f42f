"""Citations in answers: find [n] markers, strip those that name no given source, and attach a
source to an answer the model left uncited (by word overlap, recorded in the trace)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dari.types import Hit

_MARK = re.compile(r"\s?\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class CitedText:
    text: str
    cited: tuple[int, ...]  # 1-based source numbers, in order of first use
    invalid: int  # markers naming no given source, removed
    attached: bool  # True when dari added the citation itself


def process(
    answer: str, n_sources: int, hits: Sequence[Hit] = (), attach: bool = True
) -> CitedText:
    cited: list[int] = []
    invalid = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal invalid
        good = []
        for num in (int(x) for x in match.group(1).split(",")):
            if 1 <= num <= n_sources:
                good.append(num)
                if num not in cited:
                    cited.append(num)
            else:
                invalid += 1
        if not good:
            return ""
        return " " + "".join(f"[{n}]" for n in dict.fromkeys(good))

    text = _MARK.sub(keep, answer).strip()
    attached = False
    if attach and not cited and hits and text:
        best = best_source(text, hits)
        if best:
            text = _append_marker(text, best)
            cited.append(best)
            attached = True
    return CitedText(text, tuple(cited), invalid, attached)


def best_source(text: str, hits: Sequence[Hit]) -> int:
    """The 1-based source sharing the most words with text (0 when none shares any)."""
    words = {w.lower() for w in _WORD.findall(text) if len(w) > 1}
    best, best_overlap = 0, 0
    for n, hit in enumerate(hits, start=1):
        overlap = len(words & {w.lower() for w in _WORD.findall(hit.text)})
        if overlap > best_overlap:
            best, best_overlap = n, overlap
    return best


def _append_marker(text: str, n: int) -> str:
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?。":
        return f"{stripped[:-1]} [{n}]{stripped[-1]}"
    return f"{stripped} [{n}]"

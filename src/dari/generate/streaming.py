"""Streaming with citation checking: text flows through as generated, but a `[n]` marker (and
the whitespace before it) is held back until it closes, so markers naming a source that was not
given never reach the user, and removing one leaves no stray space."""

from __future__ import annotations

import re

_OPEN_MARK = re.compile(r"\s*\[[\d,\s]*$")  # an unfinished marker at the end of the text
_TRAILING_SPACE = re.compile(r"\s+$")
_MARK = re.compile(r"(\s*)\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_MAX_HELD = 80  # longer than any real marker: give up holding and let the text through


class CitationFilter:
    def __init__(self, n_sources: int) -> None:
        self._n = n_sources
        self._held = ""
        self.invalid = 0

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = ""
        m = _OPEN_MARK.search(text) or _TRAILING_SPACE.search(text)
        if m and len(text) - m.start() <= _MAX_HELD:
            self._held = text[m.start() :]
            text = text[: m.start()]
        return self._clean(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._clean(text)

    def _clean(self, text: str) -> str:
        def keep(match: re.Match[str]) -> str:
            nums = [int(x) for x in match.group(2).split(",")]
            good = [n for n in nums if 1 <= n <= self._n]
            self.invalid += len(nums) - len(good)
            if not good:
                return ""
            return match.group(1) + "".join(f"[{n}]" for n in dict.fromkeys(good))

        return _MARK.sub(keep, text)

"""Streaming with citation checking: text flows through as generated, but a `[n]` marker is held
back until it closes, so markers naming a source that was not given never reach the user."""

from __future__ import annotations

import re

_OPEN_MARK = re.compile(r"\[[\d,\s]*$")
_MARK = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


class CitationFilter:
    def __init__(self, n_sources: int) -> None:
        self._n = n_sources
        self._held = ""
        self.invalid = 0

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = ""
        m = _OPEN_MARK.search(text)
        if m and len(text) - m.start() < 16:
            self._held = text[m.start() :]
            text = text[: m.start()]
        return self._clean(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._clean(text)

    def _clean(self, text: str) -> str:
        def keep(match: re.Match[str]) -> str:
            nums = [int(x) for x in match.group(1).split(",")]
            good = [n for n in nums if 1 <= n <= self._n]
            self.invalid += len(nums) - len(good)
            return "".join(f"[{n}]" for n in dict.fromkeys(good))

        return _MARK.sub(keep, text)

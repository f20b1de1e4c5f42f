"""Streaming under the output guards: an answer is shown sentence by sentence, each sentence
checked first, so what reaches the screen has passed the guards that can judge it alone."""

from __future__ import annotations

import re
from collections.abc import Callable

from dari.guards.chain import StageResult

# Output guards that can judge one sentence alone, so a streamed answer is checked sentence by
# sentence before it reaches the screen (groundedness and schema need the whole answer).
STREAMED_GUARDS = frozenset({"pii_leak", "toxicity", "prompt_leak"})
_SENTENCE_END = re.compile(r"[.!?。](?=\s)|\n")


class SentenceGate:
    """Holds streamed text back until a sentence ends, passes it through the output guards, and
    only then shows it (redacted if need be); after a block nothing more is shown."""

    def __init__(self, check: Callable[[str], StageResult], emit: Callable[[str], None]) -> None:
        self._check, self._emit = check, emit
        self._buffer = ""
        self.blocked = False

    def feed(self, piece: str) -> None:
        self._buffer += piece
        while (m := _SENTENCE_END.search(self._buffer)) is not None:
            sentence, self._buffer = self._buffer[: m.end()], self._buffer[m.end() :]
            self._release(sentence)

    def flush(self) -> None:
        if self._buffer:
            self._release(self._buffer)
            self._buffer = ""

    def _release(self, sentence: str) -> None:
        if self.blocked or not sentence:
            return
        checked = self._check(sentence)
        if checked.blocked:
            self.blocked = True
            return
        self._emit(checked.text)

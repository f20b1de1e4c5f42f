"""What every guard gets and gives: the context of the question, and a finding about one text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dari.types import Span


@dataclass(frozen=True)
class Finding:
    """A guard's raw judgement, before a policy decides what to do with it."""

    flagged: bool
    score: float = 0.0
    rule: str = ""
    detail: str = ""
    spans: tuple[Span, ...] = ()
    # What the text becomes if the policy is `redact` (None: the guard cannot redact, so redact
    # acts as block for it).
    redacted: str | None = None


CLEAN = Finding(False)


@dataclass
class GuardContext:
    """What a guard may need besides the text it checks. `embed_query` is the embedder's
    memoised query embedding, so the question is embedded once for the guards and retrieval."""

    question: str = ""
    lang: str = "en"
    sources: tuple[str, ...] = ()  # the texts given to the model as [1], [2]…
    system_prompt: str = ""
    schema: Mapping[str, Any] | None = None
    embed_query: Callable[[str], np.ndarray] | None = None

    def embedding(self, text: str) -> np.ndarray | None:
        return self.embed_query(text) if self.embed_query is not None else None

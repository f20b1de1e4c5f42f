"""The LLM behind a lock: llama.cpp runs one generation at a time, while retrieval, guards and
cache lookups of other requests go on in their own threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from dari.app import Dari
from dari.protocols import Generator
from dari.types import GenerationParams


class LockedGenerator:
    @classmethod
    def around(cls, dari: Dari) -> LockedGenerator:
        """Wrap the generator of `dari` (the configured one is loaded on first use)."""
        ready = dari.__dict__.get("generator")
        loaded: list[Generator] = [ready] if ready is not None else []
        guard = threading.Lock()

        def inner() -> Generator:
            with guard:
                if not loaded:
                    loaded.append(Dari.generator.func(dari))  # type: ignore[attr-defined]
                return loaded[0]

        return cls(inner)

    def __init__(self, inner: Callable[[], Generator]) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._usage = threading.local()  # each request reads its own generation's usage

    @property
    def name(self) -> str:
        return self._inner().name

    @property
    def last_usage(self) -> dict[str, int]:
        return getattr(self._usage, "value", {})

    def stream(
        self, messages: Sequence[dict[str, str]], params: GenerationParams, prefix: int = 0
    ) -> Iterator[str]:
        with self._lock:
            inner = self._inner()
            yield from inner.stream(messages, params, prefix)
            self._usage.value = dict(getattr(inner, "last_usage", {}) or {})

    def count_tokens(self, text: str) -> int:
        return self._inner().count_tokens(text)

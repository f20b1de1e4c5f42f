"""Listwise reranking by the configured LLM (RankGPT-style): the model reads the question and the
first candidates, shortened, and answers with their numbers from most to least relevant.

Costly on a CPU (one extra LLM call per question), so it reorders only the first `window`
candidates; the rest keep their first-stage order after them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from dari.protocols import Generator
from dari.text import detect_lang
from dari.types import GenerationParams, Hit

_SYSTEM = {
    "en": (
        "You rank passages by how well they answer a question. Reply with the passage numbers "
        "only, most relevant first, separated by '>', for example: 3 > 1 > 2"
    ),
    "ko": (
        "당신은 질문에 얼마나 잘 답하는지에 따라 문단의 순위를 매깁니다. 가장 관련 있는 것부터 "
        "문단 번호만 '>'로 구분해 답하세요. 예: 3 > 1 > 2"
    ),
}
_ASK = {
    "en": "Question: {q}\n\n{passages}\n\nRank the {n} passages. Numbers only:",
    "ko": "질문: {q}\n\n{passages}\n\n{n}개 문단의 순위를 매기세요. 번호만:",
}
_NUMBER = re.compile(r"\d+")


def parse_order(reply: str, n: int) -> list[int]:
    """0-based candidate indexes in the order the reply names them (1-based numbers); numbers out
    of range and repeats are ignored, and candidates the reply left out follow in their order."""
    seen: list[int] = []
    for m in _NUMBER.finditer(reply):
        i = int(m.group()) - 1
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen + [i for i in range(n) if i not in seen]


class LLMReranker:
    name = "llm"

    def __init__(
        self,
        generator: Callable[[], Generator],
        window: int = 8,
        passage_chars: int = 300,
        seed: int = 7,
    ) -> None:
        self._generator = generator
        self._window = window
        self._chars = passage_chars
        self._params = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=48, seed=seed)

    def messages(self, query: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
        lang = detect_lang(query)
        lang = lang if lang in _SYSTEM else "en"
        passages = "\n\n".join(
            f"[{i}] {h.title}: {' '.join((h.child_text or h.text).split())[: self._chars]}"
            for i, h in enumerate(hits, start=1)
        )
        ask = _ASK[lang].format(q=query.strip(), passages=passages, n=len(hits))
        return [{"role": "system", "content": _SYSTEM[lang]}, {"role": "user", "content": ask}]

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        head, tail = list(hits[: self._window]), list(hits[self._window :])
        if len(head) < 2:
            return list(hits)
        reply = "".join(self._generator().stream(self.messages(query, head), self._params))
        return [head[i] for i in parse_order(reply, len(head))] + tail

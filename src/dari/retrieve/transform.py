"""Query transformation with the configured LLM, before retrieval.

- multi-query: three rewrites of the question; each is searched like the question itself and
  every list joins the fusion (RAG-Fusion).
- step-back: one broader question whose answer is the background the question needs.
- hyde: a short hypothetical passage that answers the question (HyDE); it is embedded as a
  passage for the dense search only, since its invented facts must not steer the keyword search.

Each costs one LLM call per question, so the result is remembered for repeated questions.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from dari.protocols import Generator
from dari.text import detect_lang
from dari.types import GenerationParams


@dataclass(frozen=True)
class Variant:
    text: str
    lexical: bool  # also searched with BM25
    as_passage: bool  # embedded as a passage (HyDE) rather than as a query


_PROMPTS: dict[str, dict[str, tuple[str, str]]] = {
    "multi-query": {
        "en": (
            "You write search queries for a document search engine.",
            "Write 3 different search queries that would find the documents answering this "
            "question. Use other words than the question where you can. One query per line, "
            "nothing else.\n\nQuestion: {q}",
        ),
        "ko": (
            "당신은 문서 검색 엔진에 넣을 검색어를 씁니다.",
            "이 질문에 답하는 문서를 찾을 수 있는 서로 다른 검색어 3개를 쓰세요. 가능하면 질문과 "
            "다른 단어를 쓰세요. 한 줄에 검색어 하나씩, 다른 말은 쓰지 마세요.\n\n질문: {q}",
        ),
    },
    "step-back": {
        "en": (
            "You help a search engine by asking the broader question behind a question.",
            "Write one more general question whose answer gives the background needed to answer "
            "this question. Only the question.\n\nQuestion: {q}",
        ),
        "ko": (
            "당신은 질문 뒤에 있는 더 넓은 질문을 찾아 검색을 돕습니다.",
            "이 질문에 답하는 데 필요한 배경을 알려 줄 더 일반적인 질문 하나를 쓰세요. 질문만 "
            "쓰세요.\n\n질문: {q}",
        ),
    },
    "hyde": {
        "en": (
            "You write short reference passages.",
            "Write a passage of two or three sentences that answers the question, as it might "
            "appear in a reference document. Only the passage.\n\nQuestion: {q}",
        ),
        "ko": (
            "당신은 짧은 참고 문단을 씁니다.",
            "참고 문서에 나올 법한 두세 문장의 문단으로 이 질문에 답하세요. 문단만 쓰세요.\n\n"
            "질문: {q}",
        ),
    },
}
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\(\d+\))\s*")
_MAX_TOKENS = {"multi-query": 96, "step-back": 64, "hyde": 128}


class QueryTransformer:
    def __init__(
        self, kind: str, generator: Callable[[], Generator], seed: int = 7, remember: int = 512
    ) -> None:
        if kind not in _PROMPTS:
            raise ValueError(f"unknown query transform {kind!r}")
        self.name = kind
        self._generator = generator
        self._params = GenerationParams(
            temperature=0.0, top_p=1.0, max_tokens=_MAX_TOKENS[kind], seed=seed
        )
        self._memory: OrderedDict[str, tuple[Variant, ...]] = OrderedDict()
        self._remember = remember

    def expand(self, query: str) -> tuple[Variant, ...]:
        """Extra texts to search for the question (the question itself is not among them)."""
        if query in self._memory:
            self._memory.move_to_end(query)
            return self._memory[query]
        lang = detect_lang(query)
        system, ask = _PROMPTS[self.name]["ko" if lang == "ko" else "en"]
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": ask.format(q=query.strip())},
        ]
        reply = "".join(self._generator().stream(messages, self._params))
        variants = self.parse(query, reply)
        self._memory[query] = variants
        if len(self._memory) > self._remember:
            self._memory.popitem(last=False)
        return variants

    def parse(self, query: str, reply: str) -> tuple[Variant, ...]:
        if self.name == "hyde":
            text = " ".join(reply.split())
            return (Variant(text, lexical=False, as_passage=True),) if text else ()
        lines = []
        for line in reply.splitlines():
            text = _LIST_MARK.sub("", line).strip().strip('"').strip()
            if text and text.casefold() != query.strip().casefold() and text not in lines:
                lines.append(text)
        keep = 3 if self.name == "multi-query" else 1
        return tuple(Variant(t, lexical=True, as_passage=False) for t in lines[:keep])

"""The grounded prompt: versioned templates with role, directive, demonstrations and data.

The system message and demonstrations form a fixed prefix per language, so llama.cpp keeps them in
its KV cache and only the sources and the question are processed per question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from dari.text import heading_below_title
from dari.types import Hit


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    lang: str
    system: str  # role + directive
    demonstrations: tuple[tuple[str, str], ...]  # (user, assistant) turns
    source_line: str  # "[{n}] {title}{where}\n{text}"
    question_line: str
    dont_know: str  # the exact abstention sentence

    def messages(self, question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}]
        for user, assistant in self.demonstrations:
            msgs.append({"role": "user", "content": user})
            msgs.append({"role": "assistant", "content": assistant})
        msgs.append({"role": "user", "content": self.data(question, hits)})
        return msgs

    def data(self, question: str, hits: Sequence[Hit]) -> str:
        blocks = []
        for n, hit in enumerate(hits, start=1):
            heading = heading_below_title(hit.title, hit.heading)
            where = f" — {heading}" if heading else ""
            if hit.page:
                where += f" (p. {hit.page})"
            blocks.append(
                self.source_line.format(n=n, title=hit.title, where=where, text=hit.text.strip())
            )
        return "\n\n".join(blocks) + "\n\n" + self.question_line.format(question=question.strip())


_EN = PromptTemplate(
    version="grounded-v1",
    lang="en",
    system=(
        "You are a careful assistant that answers questions using only the numbered sources "
        "the user gives you.\n"
        "Rules:\n"
        "1. Answer in one to three complete sentences in English. State the answer itself "
        "(the fact, number, name or steps), never just a source number.\n"
        "2. End every sentence with the number of the source that supports it, like [1] or [2].\n"
        "3. Use only facts written in the sources. Do not add outside knowledge.\n"
        "4. If the sources do not contain the answer, reply exactly: "
        '"I don\'t know based on the provided documents."'
    ),
    demonstrations=(
        (
            "[1] Travel policy — Meals\nEmployees on business trips may claim up to 40 euros "
            "per day for meals. Receipts must be submitted within 30 days.\n\n"
            "[2] Travel policy — Hotels\nHotel bookings go through the travel desk.\n\n"
            "Question: How much can I claim for meals on a business trip?",
            "You can claim up to 40 euros per day for meals on a business trip [1]. "
            "Submit the receipts within 30 days [1].",
        ),
        (
            "[1] Office guide — Parking\nThe garage opens at 7 am.\n\n"
            "Question: What is the CEO's salary?",
            "I don't know based on the provided documents.",
        ),
    ),
    source_line="[{n}] {title}{where}\n{text}",
    question_line="Question: {question}",
    dont_know="I don't know based on the provided documents.",
)

_KO = PromptTemplate(
    version="grounded-v1",
    lang="ko",
    system=(
        "당신은 사용자가 제공한 번호 붙은 출처만 사용해 질문에 답하는 신중한 도우미입니다.\n"
        "규칙:\n"
        "1. 한국어로 한두 문장의 완전한 문장으로 답하세요. 출처 번호만 쓰지 말고 답 자체"
        "(사실, 숫자, 이름, 절차)를 문장으로 쓰세요.\n"
        "2. 모든 문장 끝에 그 내용을 뒷받침하는 출처 번호를 [1], [2]처럼 붙이세요.\n"
        "3. 출처에 적힌 사실만 사용하고 외부 지식을 더하지 마세요.\n"
        '4. 출처에 답이 없으면 정확히 "제공된 문서에서는 답을 찾을 수 없습니다."라고만 답하세요.'
    ),
    demonstrations=(
        (
            "[1] 출장 규정 — 식비\n출장 중인 직원은 하루 최대 5만 원까지 식비를 청구할 수 "
            "있습니다. 영수증은 30일 이내에 제출해야 합니다.\n\n"
            "[2] 출장 규정 — 숙박\n호텔 예약은 출장 지원팀을 통해 합니다.\n\n"
            "질문: 출장 중 식비는 얼마까지 청구할 수 있나요?",
            "출장 중에는 하루 최대 5만 원까지 식비를 청구할 수 있습니다 [1]. "
            "영수증은 30일 이내에 제출해야 합니다 [1].",
        ),
        (
            "[1] 사무실 안내 — 주차\n주차장은 오전 7시에 엽니다.\n\n"
            "질문: 대표이사의 연봉은 얼마인가요?",
            "제공된 문서에서는 답을 찾을 수 없습니다.",
        ),
    ),
    source_line="[{n}] {title}{where}\n{text}",
    question_line="질문: {question}",
    dont_know="제공된 문서에서는 답을 찾을 수 없습니다.",
)

# v2: copy names and numbers exactly, and a demonstration of a comparison question, the kind
# a small model most often gets backwards (measured on HaluEval QA, see docs/benchmarks.md).
_EN_V2 = replace(
    _EN,
    version="grounded-v2",
    system=_EN.system.replace(
        "3. Use only facts written in the sources.",
        "3. Even when the answer is a single name, number or command, write it as a sentence "
        '("The command is `backup --all`."). Copy names, numbers and terms exactly as the '
        "sources write them. When the question compares two things, check the facts for both "
        "before you answer. Use only facts written in the sources.",
    ),
    demonstrations=(
        _EN.demonstrations[0],
        (
            "[1] North Gate\nThe North Gate was opened in 1995.\n\n"
            "[2] South Gate\nThe South Gate was opened in 1990 after two years of work.\n\n"
            "Question: Which opened first, the North Gate or the South Gate?",
            "The South Gate opened first, in 1990 [2], five years before the North Gate, "
            "which opened in 1995 [1].",
        ),
        _EN.demonstrations[1],
    ),
)
_KO_V2 = replace(
    _KO,
    version="grounded-v2",
    system=_KO.system.replace(
        "3. 출처에 적힌 사실만 사용하고",
        '3. 답이 이름, 숫자, 명령 하나뿐이어도 "명령은 `backup --all`입니다."처럼 문장으로 쓰세요. '
        "이름, 숫자, 용어는 출처에 적힌 그대로 옮기세요. 두 대상을 비교하는 질문이면 둘의 "
        "사실을 모두 확인한 뒤 답하세요. 출처에 적힌 사실만 사용하고",
    ),
    demonstrations=(
        _KO.demonstrations[0],
        (
            "[1] 북문\n북문은 1995년에 개방되었습니다.\n\n"
            "[2] 남문\n남문은 2년의 공사 끝에 1990년에 개방되었습니다.\n\n"
            "질문: 북문과 남문 중 어느 쪽이 먼저 개방되었나요?",
            "남문이 1990년에 먼저 개방되었습니다 [2]. 북문은 그보다 5년 늦은 1995년에 "
            "개방되었습니다 [1].",
        ),
        _KO.demonstrations[1],
    ),
)

TEMPLATES: dict[tuple[str, str], PromptTemplate] = {
    (t.version, t.lang): t for t in (_EN, _KO, _EN_V2, _KO_V2)
}
DEFAULT_VERSION = "grounded-v2"


def template_for(lang: str, version: str = DEFAULT_VERSION) -> PromptTemplate:
    """The template of a version for a language (English for languages without their own)."""
    key = (version, lang if (version, lang) in TEMPLATES else "en")
    if key not in TEMPLATES:
        from dari.errors import ConfigError

        known = sorted({v for v, _ in TEMPLATES})
        raise ConfigError(
            f"unknown prompt version '{version}' (known: {', '.join(known)})",
            "set llm.prompt in dari.toml or DARI_LLM__PROMPT",
        )
    return TEMPLATES[key]

"""The named parts of a prompt version and the template they render to.

The system message is role + directive (+ output format when there is one); then come the
demonstrations as user/assistant turns; last the data: the numbered sources and the question.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Literal

from dari.generate.prompt import PromptTemplate

Source = Literal["builtin", "store"]
FALLBACK_LANG = "en"  # the language of questions in a language a version does not have


@dataclass(frozen=True)
class Parts:
    """One language's parts. `source_line` and `question_line` are the data's format strings."""

    role: str
    directive: str
    demonstrations: tuple[tuple[str, str], ...]  # (user, assistant) turns
    source_line: str  # "[{n}] {title}{where}\n{text}"
    question_line: str  # "Question: {question}"
    dont_know: str  # the exact abstention sentence
    output_format: str = ""

    @property
    def system(self) -> str:
        return "\n".join(p for p in (self.role, self.directive, self.output_format) if p)


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version: its parts per language, where it lives and where it came from."""

    name: str
    version: int
    parts: Mapping[str, Parts]  # language → parts; English is always there
    source: Source
    description: str = ""
    based_on: str = ""  # the version it was created from, if any
    created: float | None = None  # when it was saved to the store; None for built-ins

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", MappingProxyType(dict(self.parts)))

    @property
    def langs(self) -> tuple[str, ...]:
        return tuple(sorted(self.parts))

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def template(self, lang: str) -> PromptTemplate:
        """The template for a question in `lang` (English for languages the version lacks)."""
        lang = lang if lang in self.parts else FALLBACK_LANG
        p = self.parts[lang]
        return PromptTemplate(
            version=self.ref,
            lang=lang,
            system=p.system,
            demonstrations=p.demonstrations,
            source_line=p.source_line,
            question_line=p.question_line,
            dont_know=p.dont_know,
        )

    def digest(self) -> str:
        """A hash of the parts (not of the name or dates): equal parts, equal digest."""
        return hashlib.sha256(parts_json(self.parts).encode()).hexdigest()


def parts_json(parts: Mapping[str, Parts]) -> str:
    """The parts as canonical JSON, the form the store keeps."""
    return json.dumps(
        {lang: asdict(p) for lang, p in sorted(parts.items())}, ensure_ascii=False, sort_keys=True
    )


def parts_from_json(text: str) -> dict[str, Parts]:
    data = json.loads(text)
    return {
        lang: Parts(**{**p, "demonstrations": tuple(tuple(d) for d in p["demonstrations"])})
        for lang, p in data.items()
    }

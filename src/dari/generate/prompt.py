"""The grounded prompt as the model reads it: a system message, demonstrations, then the data
(numbered sources and the question). Its versions and their parts live in `dari.prompts`.

The system message and demonstrations form a fixed prefix per language, so llama.cpp keeps them in
its KV cache and only the sources and the question are processed per question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dari.errors import ConfigError
from dari.text import heading_below_title
from dari.types import Hit


@dataclass(frozen=True)
class PromptTemplate:
    """One version's prompt in one language; `version` is its `name@version`."""

    version: str
    lang: str
    system: str  # role + directive (+ output format)
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


def template_for(lang: str, version: str = "grounded@2") -> PromptTemplate:
    """A built-in version's template for a language, without a store (benchmarks, tests); the
    pipeline asks `dari.prompts.registry.PromptRegistry`, which knows stored versions too."""
    from dari.prompts.builtin import builtin_versions  # that package imports this module
    from dari.prompts.refs import parse_ref

    ref = parse_ref(version)
    versions = builtin_versions()
    latest = max((v.version for v in versions.values() if v.name == ref.name), default=0)
    found = versions.get(f"{ref.name}@{ref.version or latest}")
    if found is None:
        raise ConfigError(
            f"unknown prompt '{version}' (built in: {', '.join(sorted(versions))})",
            "dari prompt list shows the stored ones too",
        )
    return found.template(lang)

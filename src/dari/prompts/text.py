"""A version's parts as plain text, in the order the model reads them: what `dari prompt show`
prints and `dari prompt diff` compares, line by line, per language."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from dari.errors import InputError
from dari.prompts.parts import PromptVersion


def parts_text(version: PromptVersion, lang: str) -> str:
    """`## part` headings, each followed by the part exactly as written."""
    if lang not in version.parts:
        raise InputError(
            f"{version.ref} has no [{lang}] parts (it has {', '.join(version.langs)})",
            f"pick one with --lang {version.langs[0]}",
        )
    p = version.parts[lang]
    sections = [("role", p.role), ("directive", p.directive), ("output_format", p.output_format)]
    for n, (user, assistant) in enumerate(p.demonstrations, start=1):
        sections += [
            (f"demonstrations[{n}].user", user),
            (f"demonstrations[{n}].assistant", assistant),
        ]
    sections += [("data.source", p.source_line), ("data.question", p.question_line)]
    sections.append(("dont_know", p.dont_know))
    return "\n\n".join(f"## {title}\n{body}" for title, body in sections) + "\n"


def diff(a: PromptVersion, b: PromptVersion, langs: Sequence[str] = ()) -> str:
    """A unified diff of the parts per language (all the languages of either by default); a
    language one side lacks diffs against nothing. Empty when the parts are the same."""
    out: list[str] = []
    for lang in langs or sorted(set(a.langs) | set(b.langs)):
        if lang not in a.parts and lang not in b.parts:
            raise InputError(f"neither {a.ref} nor {b.ref} has [{lang}] parts", "try --lang en")
        left = parts_text(a, lang).splitlines(keepends=True) if lang in a.parts else []
        right = parts_text(b, lang).splitlines(keepends=True) if lang in b.parts else []
        out += difflib.unified_diff(left, right, f"{a.ref} [{lang}]", f"{b.ref} [{lang}]")
    return "".join(out)

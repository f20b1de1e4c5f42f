"""Prompt parts as TOML: one table per language, read strictly (a misspelt part is an error) and
written back in the same form (`dari prompt show --toml` prints a file `create` accepts).

    description = "..."
    [en]
    role = "..."
    directive = "..."
    output_format = ""
    dont_know = "..."
    [en.data]
    source = "[{n}] {title}{where}\\n{text}"
    question = "Question: {question}"
    [[en.demonstrations]]
    user = "..."
    assistant = "..."
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from typing import Any

from dari.errors import DariError, InputError
from dari.prompts.parts import FALLBACK_LANG, Parts, PromptVersion

_LANG = re.compile(r"^[a-z]{2,3}$")
_TEXTS = ("role", "directive", "output_format", "dont_know")
_REQUIRED_TEXTS = ("role", "directive", "dont_know")
_ALL = (*_TEXTS, "demonstrations", "data")
# data key → (Parts field, placeholders allowed, placeholders required)
_DATA = {
    "source": ("source_line", {"n", "title", "where", "text"}, {"n", "text"}),
    "question": ("question_line", {"question"}, {"question"}),
}
_START = "start from a version that has it: dari prompt create NAME --from grounded@2 --file F"


def read_parts(
    text: str,
    where: str,
    base: Mapping[str, Parts] | None = None,
    error: type[DariError] = InputError,
) -> tuple[dict[str, Parts], str]:
    """Parts per language and the description from TOML `text`; parts the file leaves out are
    taken from `base`. `where` names the file in errors, which are of type `error`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(
            f"{where} is not valid TOML: {exc}",
            "fix the file; `dari prompt show grounded@2 --toml` prints a valid one",
        ) from exc
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise error(f"{where}: 'description' is not a string", 'write description = "..."')
    parts = dict(base or {})
    for lang, table in data.items():
        if not isinstance(table, dict) or not _LANG.match(lang):
            raise error(
                f"{where}: unknown key '{lang}'",
                "a prompt file holds a description and one table per language, like [en], [ko]",
            )
        parts[lang] = _lang_parts(table, f"{where} [{lang}]", parts.get(lang), error)
    if FALLBACK_LANG not in parts:
        raise error(
            f"{where} has no [{FALLBACK_LANG}] table",
            f"English answers questions in other languages; add [{FALLBACK_LANG}] or {_START}",
        )
    return parts, description


def _lang_parts(
    table: dict[str, Any], where: str, base: Parts | None, error: type[DariError]
) -> Parts:
    unknown = sorted(set(table) - set(_ALL))
    if unknown:
        raise error(f"{where}: unknown part '{unknown[0]}'", f"the parts are {', '.join(_ALL)}")
    values: dict[str, Any] = dict(vars(base)) if base else {"output_format": ""}
    for key in _TEXTS:
        if key in table:
            values[key] = _text(table[key], f"{where} {key}", error)
    if "demonstrations" in table:
        values["demonstrations"] = _demonstrations(table["demonstrations"], where, error)
    data = table.get("data", {})
    if not isinstance(data, dict) or set(data) - set(_DATA):
        raise error(
            f"{where}: 'data' is not a table of source and question",
            'write [LANG.data] with source = "[{n}] {title}{where}\\n{text}" and question = "…"',
        )
    for key, (name, allowed, required) in _DATA.items():
        if key in data:
            values[name] = _format(data[key], f"{where} data.{key}", allowed, required, error)
    for key in (*_REQUIRED_TEXTS, "demonstrations", "source_line", "question_line"):
        if key not in values:
            shown = {"source_line": "data.source", "question_line": "data.question"}.get(key, key)
            raise error(f"{where} has no '{shown}'", f"add it, or {_START}")
        if key in _REQUIRED_TEXTS and not values[key].strip():
            raise error(f"{where} '{key}' is empty", "write it, or leave it out to keep the base's")
    return Parts(**values)


def _text(value: object, where: str, error: type[DariError]) -> str:
    if not isinstance(value, str):
        raise error(f"{where} is not a string", 'write it in quotes: key = "..." or """..."""')
    return value


def _demonstrations(
    value: object, where: str, error: type[DariError]
) -> tuple[tuple[str, str], ...]:
    turns = []
    for n, item in enumerate(value if isinstance(value, list) else [None], start=1):
        if not isinstance(item, dict) or set(item) != {"user", "assistant"}:
            raise error(
                f"{where} demonstration {n} is not a user/assistant pair",
                'write [[LANG.demonstrations]] tables with user = "..." and assistant = "..."',
            )
        turns.append((_text(item["user"], where, error), _text(item["assistant"], where, error)))
    return tuple(turns)


def _format(
    value: object, where: str, allowed: set[str], required: set[str], error: type[DariError]
) -> str:
    text = _text(value, where, error)
    placeholders = ", ".join("{" + p + "}" for p in sorted(allowed))
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise error(
            f"{where} is not a valid format: {exc}", "double a brace meant literally: {{ or }}"
        ) from exc
    for name in sorted(fields - allowed) + sorted(required - fields):
        verb = "has the unknown placeholder" if name in fields else "lacks the placeholder"
        raise error(f"{where} {verb} {{{name}}}", f"it may use {placeholders}")
    return text


def to_toml(version: PromptVersion) -> str:
    """The version as a prompt file that `read_parts` reads back to the same parts."""
    lines = [f"# {version.ref} ({version.source})"]
    if version.description:
        lines.append(f"description = {_quote(version.description)}")
    for lang in version.langs:
        p = version.parts[lang]
        lines += ["", f"[{lang}]"]
        lines += [f"{key} = {_quote(getattr(p, key))}" for key in _TEXTS]
        lines += ["", f"[{lang}.data]"]
        lines += [f"source = {_quote(p.source_line)}", f"question = {_quote(p.question_line)}"]
        for user, assistant in p.demonstrations:
            lines += ["", f"[[{lang}.demonstrations]]"]
            lines += [f"user = {_quote(user)}", f"assistant = {_quote(assistant)}"]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A TOML basic string; multi-line (triple quotes) when the text has line breaks, where a
    quote is escaped only next to another quote or at the end, so the file stays readable."""
    if "\n" not in text:
        return '"' + "".join(_escape(c) for c in text) + '"'
    body = "".join(c if c == '"' else _escape(c, multiline=True) for c in text)
    return '"""\n' + re.sub(r'"(?="|\Z)', r'\\"', body) + '"""'


def _escape(c: str, multiline: bool = False) -> str:
    if c in '"\\':
        return "\\" + c
    if c == "\n":
        return c if multiline else "\\n"
    if c == "\t":
        return c
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\u{ord(c):04x}"
    return c

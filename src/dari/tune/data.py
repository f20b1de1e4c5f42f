"""Training rows from JSONL, checked before any model loads: a malformed row is reported with its
line number and left out, duplicates are dropped, and a fixed share is held out (by a hash of the
row, so the split never changes between runs or resumes) to measure loss before and after.

SFT rows are trl conversations, as `dari feedback export --format sft` writes them:
`{"messages": [{"role": "system", …}, {"role": "user", …}, {"role": "assistant", …}]}`.
DPO rows are preference pairs, as `--format dpo` writes them:
`{"prompt": [system, user], "chosen": [assistant], "rejected": [assistant]}` (chosen and
rejected may also be plain strings).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dari.errors import InputError
from dari.eval.golden import SkippedLine
from dari.jsonl import read_utf8
from dari.tune.recipe import Method

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Row:
    """One training example in trl's prompt/completion form (conversational)."""

    line: int
    prompt: tuple[Message, ...]
    completion: tuple[Message, ...]  # SFT: the target; DPO: chosen
    rejected: tuple[Message, ...] = ()  # DPO only

    @property
    def key(self) -> str:
        payload = [self.prompt, self.completion, self.rejected]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def to_trl(self) -> dict[str, list[Message]]:
        row = {"prompt": list(self.prompt), "completion": list(self.completion)}
        if self.rejected:
            return {
                "prompt": row["prompt"],
                "chosen": row["completion"],
                "rejected": list(self.rejected),
            }
        return row


@dataclass(frozen=True)
class TuneData:
    path: Path
    method: Method
    train: tuple[Row, ...]
    held_out: tuple[Row, ...]
    skipped: tuple[SkippedLine, ...] = field(default=())
    sha256: str = ""  # of the file, recorded with the run

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for s in self.skipped:
            kind = s.reason.split(":")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "train": len(self.train),
            "held_out": len(self.held_out),
            "skipped": len(self.skipped),
            "skipped_by_reason": reasons,
        }


class _Bad(Exception):
    """A row that cannot be trained on; the message is the reason."""


def load_rows(path: Path, method: Method) -> tuple[list[Row], list[SkippedLine], str]:
    """Every valid row of the file (duplicates dropped), the skipped lines, and the file's
    sha256; an unreadable or empty file, or one without a single valid row, is an InputError."""
    path = path.expanduser()
    raw, text = read_utf8(path, "the training data", "save it as UTF-8 JSONL")
    parse = PARSERS[method]
    rows: list[Row] = []
    skipped: list[SkippedLine] = []
    first: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = parse(_json(line), number)
        except _Bad as exc:
            skipped.append(SkippedLine(number, str(exc)))
            continue
        if row.key in first:
            skipped.append(SkippedLine(number, f"duplicate: same row as line {first[row.key]}"))
            continue
        first[row.key] = number
        rows.append(row)
    if not rows:
        shown = "; ".join(f"line {s.line}: {s.reason}" for s in skipped[:3])
        raise InputError(
            f"the training data {path} has no usable {method} rows"
            + (f" ({len(skipped)} skipped — {shown})" if skipped else " (the file is empty)"),
            f"export rows with `dari feedback export --format {method}`, "
            "or see docs/en/fine-tuning.md for the row format",
        )
    return rows, skipped, hashlib.sha256(raw).hexdigest()


def split(rows: Sequence[Row], fraction: float, most: int) -> tuple[list[Row], list[Row]]:
    """(train, held_out): a row is held out when its hash falls in the first `fraction` of the
    hash space, at most `most` rows; at least one row always stays for training."""
    if fraction <= 0 or len(rows) < 2:
        return list(rows), []
    scored = sorted(rows, key=lambda r: r.key)
    wanted = min(most, max(1, round(len(rows) * fraction)), len(rows) - 1)
    held = {r.key for r in scored[:wanted]}
    return [r for r in rows if r.key not in held], [r for r in rows if r.key in held]


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _Bad(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise _Bad("not a JSON object")
    return value


def _messages(value: object, what: str) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise _Bad(f"bad field: '{what}' must be a non-empty list of messages")
    out: list[Message] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise _Bad(f"bad message: {what}[{i}] needs a role of {', '.join(ROLES)}")
        content = m.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _Bad(f"empty message: {what}[{i}] has no text content")
        out.append({"role": str(m["role"]), "content": content})
    return tuple(out)


def _answer(value: object, what: str) -> tuple[Message, ...]:
    if isinstance(value, str):
        if not value.strip():
            raise _Bad(f"empty message: '{what}' is empty")
        return ({"role": "assistant", "content": value},)
    messages = _messages(value, what)
    if [m["role"] for m in messages] != ["assistant"]:
        raise _Bad(f"bad message: '{what}' must be one assistant message")
    return messages


def _prompt(messages: Sequence[Message], what: str) -> tuple[Message, ...]:
    if not messages or messages[-1]["role"] != "user":
        raise _Bad(f"bad message: '{what}' must end with a user message")
    return tuple(messages)


def _sft(row: dict[str, Any], line: int) -> Row:
    if "messages" not in row:
        raise _Bad("missing field: 'messages'")
    messages = _messages(row["messages"], "messages")
    if messages[-1]["role"] != "assistant":
        raise _Bad("bad message: the last message must be the assistant's answer")
    return Row(line, _prompt(messages[:-1], "messages"), messages[-1:])


def _dpo(row: dict[str, Any], line: int) -> Row:
    for name in ("prompt", "chosen", "rejected"):
        if name not in row:
            raise _Bad(f"missing field: '{name}'")
    prompt = _prompt(_messages(row["prompt"], "prompt"), "prompt")
    chosen, rejected = _answer(row["chosen"], "chosen"), _answer(row["rejected"], "rejected")
    if chosen[0]["content"].strip() == rejected[0]["content"].strip():
        raise _Bad("no preference: chosen and rejected are the same text")
    return Row(line, prompt, chosen, rejected)


PARSERS: dict[str, Callable[[dict[str, Any], int], Row]] = {"sft": _sft, "dpo": _dpo}

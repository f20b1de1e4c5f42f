"""Score a labelled JSONL file with the guards (`dari guard check --input F --output O`), so that
they can be measured on data nobody tuned them to. Every input line comes out, in order, with
`verdict`, `guard`, `score`, `action`, `rule` and `flagged` added; a line that is not a JSON
object with a text field comes out with an `error` saying so, and the rest go on."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dari.errors import InputError
from dari.guards.chain import StageResult, decisive
from dari.types import Stage


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            yield from enumerate(f, start=1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from exc


def summary(result: StageResult) -> dict[str, Any]:
    """The per-text fields both the CLI and the file scorer print."""
    top = decisive(result.verdicts)
    flagged = [v for v in result.verdicts if v.flagged]
    return {
        "verdict": "block" if result.blocked else ("flag" if flagged else "allow"),
        "action": str(top.action) if top else "allow",
        "guard": top.guard if top and top.flagged else "",
        "rule": top.rule if top and top.flagged else "",
        "score": max((v.score for v in result.verdicts), default=0.0),
        "flagged": bool(flagged),
    }


def score_file(
    check: Callable[[str, Stage], StageResult],
    source: Path,
    target: Path,
    stage: Stage = Stage.INPUT,
    field: str = "text",
    progress: Callable[[], None] | None = None,
) -> Counter[str]:
    """Writes `target`; returns counts of verdicts (and "error" for unusable lines)."""
    counts: Counter[str] = Counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for n, line in _lines(source):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                row, error = {"line": n}, f"line {n} is not JSON: {exc.msg}"
            else:
                if not isinstance(row, dict) or not isinstance(row.get(field), str):
                    row = row if isinstance(row, dict) else {"value": row}
                    error = f"line {n} has no text field '{field}'"
                else:
                    error = ""
            if error:
                counts["error"] += 1
                out.write(json.dumps(row | {"error": error}, ensure_ascii=False) + "\n")
            else:
                fields = summary(check(row[field], stage))
                counts[fields["verdict"]] += 1
                out.write(json.dumps(row | fields, ensure_ascii=False) + "\n")
            if progress:
                progress()
    return counts

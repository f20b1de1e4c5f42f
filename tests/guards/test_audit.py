"""The audit log: append-only, hash-chained, and free of the personal data it is about."""

from __future__ import annotations

import json
from pathlib import Path

from dari.guards.audit import AuditLog
from dari.types import Action, Span, Stage, Verdict

V = Verdict(
    "pii", Stage.INPUT, True, Action.REDACT, 1.0, "phone:kr", "phone x1", (Span("phone", 5, 18),)
)


def test_lines_chain_and_verify(tmp_path: Path):
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    log.append("t1", "hr", [V, V])
    log.append("t2", "hr", [V])
    assert log.verify() == (3, None)
    records = list(log.records())
    assert [r["trace"] for r in records] == ["t1", "t1", "t2"]
    assert records[0]["spans"] == [{"kind": "phone", "start": 5, "end": 18}]


def test_an_edited_line_breaks_the_chain_there(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(4):
        log.append(f"t{i}", "c", [V])
    lines = log.path.read_text().splitlines()
    row = json.loads(lines[1])
    row["action"] = "allow"
    lines[1] = json.dumps(row, sort_keys=True, ensure_ascii=False)
    log.path.write_text("\n".join(lines) + "\n")
    assert log.verify() == (3, 3)  # line 2 was changed: line 3's link no longer matches


def test_deleting_a_line_is_detected(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(3):
        log.append(f"t{i}", "c", [V])
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert log.verify()[1] == 2


def test_no_raw_text_is_written(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("t", "c", [V])
    assert "010" not in log.path.read_text()

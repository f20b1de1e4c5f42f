"""`dari feedback add|signal|list|export|report` against traces of the real pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dari.app import Dari
from dari.cli.main import app, main
from dari.errors import InputError, UnknownTrace
from dari.testing import FakeGenerator

runner = CliRunner()
LEAVE_Q = "연차 휴가는 며칠인가요?"
LEAVE_A = "정규직 직원의 연차 휴가는 1년에 15일입니다 [1]."


@pytest.fixture
def traces(dari: Dari, corpus: Path, fake_generator: FakeGenerator) -> list[str]:
    """Two answered traces in the same DARI_HOME the CLI opens."""
    dari.ingest([corpus], "hr")
    fake_generator.enqueue(LEAVE_A)
    fake_generator.enqueue("The office opens at 8 am [1].")
    return [dari.ask(LEAVE_Q, "hr").trace.id, dari.ask("When does the office open?", "hr").trace.id]


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, ["feedback", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_prints_the_stored_feedback(traces: list[str]):
    item = _json(["add", traces[0], "--up", "--comment", "정확해요", "--rating", "5"])
    assert item["kind"] == "up" and item["positive"] is True and item["negative"] is False
    assert item["comment"] == "정확해요" and item["trace_id"] == traces[0] and item["rating"] == 5
    shown = runner.invoke(app, ["feedback", "add", traces[1], "--approve"])
    assert shown.exit_code == 0 and "recorded ✅ approve" in shown.stdout


def test_a_correction_with_personal_data_is_stored_redacted(traces: list[str]):
    fix = "연차는 15일입니다. 문의 010-1234-5678"
    item = _json(["add", traces[0], "--down", "--correction", fix])
    assert item["correction"] == "연차는 15일입니다. 문의 [PHONE]"


def test_bad_feedback_is_refused(traces: list[str]):
    for args, error, message in [
        (["add", "deadbeef", "--up"], UnknownTrace, "unknown trace id 'deadbeef'"),
        (["add", traces[0], "--rating", "7"], InputError, "1 to 5, not 7"),
        (["add", traces[0], "--up", "--down"], InputError, "contradict"),
        (["add", traces[0], "--comment", ""], InputError, "the comment is empty"),
    ]:
        result = runner.invoke(app, ["feedback", *args])
        assert isinstance(result.exception, error), result.output
        assert message in str(result.exception)


def test_unknown_trace_exits_66_with_a_hint(
    traces: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(sys, "argv", ["dari", "feedback", "signal", "nope", "copy"])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 66
    assert "unknown trace id 'nope'" in err and "dari ask --json" in err


def test_signal_and_list(traces: list[str]):
    assert [_json(["signal", traces[1], "rephrase"])] == _json(["list", "--limit", "1"])
    _json(["add", traces[0], "--rating", "2", "--comment", "출처가 달라요"])
    listed = _json(["list", "--collection", "hr"])
    assert [i["kind"] for i in listed] == ["rating", "rephrase"]
    assert _json(["list", "--trace", traces[1]]) == listed[1:]
    table = runner.invoke(app, ["feedback", "list"])
    assert table.exit_code == 0 and "rephrase" in table.stdout and "출처가 달라요" in table.stdout
    bad = runner.invoke(app, ["feedback", "signal", traces[1], "paste"])
    assert bad.exit_code == 2  # a usage error: the choices are listed


def test_export_refuses_to_overwrite_without_force(traces: list[str], tmp_path: Path):
    _json(["add", traces[0], "--up"])
    _json(["add", traces[1], "--down", "--correction", "It opens at 8 am [1]."])
    out = tmp_path / "sft.jsonl"
    done = _json(["export", "--format", "sft", "--output", str(out)])
    assert done == {"format": "sft", "path": str(out), "written": 2, "skipped": {}}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    roles = [[m["role"] for m in r["messages"]] for r in rows]
    assert roles == [["system", "user", "assistant"]] * 2
    again = runner.invoke(app, ["feedback", "export", "-f", "sft", "-o", str(out)])
    assert isinstance(again.exception, InputError) and str(out) in str(again.exception)
    forced = runner.invoke(app, ["feedback", "export", "-f", "dpo", "-o", str(out), "--force"])
    assert forced.exit_code == 0 and "wrote 1 dpo rows" in forced.stdout
    assert "skipped 1: no disliked answer to the same question" in forced.stdout


def test_report_as_json_and_as_tables(traces: list[str]):
    _json(["add", traces[0], "--down"])
    _json(["signal", traces[0], "regenerate"])
    data = _json(["report"])
    assert data["traces"] == 2 and data["feedback_rate"] == 0.5
    assert data["most_disliked"][0]["question"] == LEAVE_Q
    assert data["signals"] == {"copy": 0, "regenerate": 1, "rephrase": 0}
    shown = runner.invoke(app, ["feedback", "report", "--collection", "hr"])
    assert shown.exit_code == 0, shown.output
    assert "most disliked questions" in shown.stdout and "연차 휴가는" in shown.stdout

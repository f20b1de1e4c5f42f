"""`dari tune`: example rows, checking a file line by line, and errors before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dari.cli.main import app
from dari.errors import DariError

runner = CliRunner()
DATA = Path(__file__).parents[1] / "tune" / "data"


def _invoke(*args: str) -> tuple[int, str]:
    """The exit code and the text a user sees (a DariError as `main` prints it: message, hint)."""
    result = runner.invoke(app, list(args), env={"COLUMNS": "1000"})
    exc = result.exception
    if isinstance(exc, DariError):
        return exc.exit_code, f"{exc.message} hint: {exc.hint}"
    return result.exit_code, " ".join(result.output.split())


def _examples(n: int, output: str) -> tuple[int, str]:
    args = ["--set", "halueval", "--data-dir", str(DATA), "-n", str(n), "--output", output]
    return _invoke("tune", "examples", *args)


def test_examples_then_check(tmp_path: Path) -> None:
    rows = tmp_path / "sft.jsonl"
    code, out = _examples(20, str(rows))
    assert code == 0 and "wrote 20 sft rows from halueval" in out
    code, out = _examples(20, str(rows))
    assert code != 0  # an existing file is not overwritten without --force
    with rows.open("a") as f:
        f.write('{"messages": []}\nnot json\n')
    code, out = _invoke("tune", "check", "--data", str(rows), "--json")
    report = json.loads(out)
    assert code == 0 and report["rows"] == 20 and report["train"] + report["held_out"] == 20
    assert report["skipped"] == [
        {"line": 21, "reason": "bad field: 'messages' must be a non-empty list of messages"},
        {"line": 22, "reason": "not JSON: Expecting value at column 1"},
    ]
    code, out = _invoke("tune", "check", "--data", str(rows))
    assert "20 usable sft rows" in out and "not JSON" in out


def test_training_refuses_bad_input_with_a_hint(tmp_path: Path) -> None:
    rows = tmp_path / "sft.jsonl"
    _examples(5, str(rows))
    code, out = _invoke(
        "tune", "dpo", "--data", str(rows), "--output", str(tmp_path / "r"), "--base", "ci"
    )
    assert code == 64 and "no usable dpo rows" in out
    code, out = _invoke(
        "tune", "sft", "--data", str(rows), "--output", str(tmp_path / "r"), "--base", "nope"
    )
    assert code == 69 and "no base model 'nope'" in out and "--base" in out
    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nlr = 1\n")
    code, out = _invoke(
        "tune", "sft", "--data", str(rows), "--output", str(tmp_path / "r"), "--recipe", str(recipe)
    )
    assert code == 78 and "train.lr" in out
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_run_from_the_cli_with_a_relative_folder_prints_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("trl", reason="the tune extra is not installed")
    monkeypatch.chdir(tmp_path)
    _examples(12, "rows.jsonl")
    result = runner.invoke(
        app,
        [
            "tune",
            "sft",
            "--data",
            "rows.jsonl",
            "--base",
            "ci",
            "--output",
            "runs/one",
            "--max-steps",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)  # nothing but the manifest on stdout
    assert manifest["steps"] == 1 and manifest["adapter_gguf"] == "adapter.gguf"
    assert (tmp_path / "runs" / "one" / "adapter.gguf").exists()

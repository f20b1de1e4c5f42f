"""`dari prompt`: list, show, diff, create, set-default and split, end to end on a real store."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dari.cli.main import app
from dari.errors import ConfigError, InputError

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, ["prompt", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def fails(*args: str) -> Exception:
    result = runner.invoke(app, ["prompt", *args])
    assert result.exit_code != 0 and result.exception is not None
    return result.exception


def test_list_shows_the_builtins_and_the_default_from_the_setting():
    data = json.loads(invoke("list", "--json"))
    assert data["default"] == "grounded@2" and data["split"] == {}
    rows = {r["prompt"]: r for r in data["versions"]}
    assert rows["grounded@2"]["source"] == "builtin" and rows["grounded@2"]["default"]
    assert rows["grounded@1"]["languages"] == ["en", "ko"] and not rows["grounded@1"]["default"]
    text = invoke("list")
    assert "grounded@1" in text and "default: grounded@2 (from llm.prompt)" in text


def test_show_prints_the_parts_or_a_file_to_start_from():
    ko = invoke("show", "grounded@2", "--lang", "ko")
    assert "## directive" in ko and "질문: {question}" in ko and "Question:" not in ko
    data = json.loads(invoke("show", "grounded-v1", "--json"))
    assert data["prompt"] == "grounded@1" and set(data["parts"]) == {"en", "ko"}
    assert tomllib.loads(invoke("show", "grounded@2", "--toml"))["ko"]["data"]["question"]
    assert isinstance(fails("show", "grounded@2", "--lang", "fr"), InputError)


def test_create_from_a_shown_file_then_diff_default_and_split(tmp_path: Path):
    edited = invoke("show", "grounded@2", "--toml").replace(
        "Do not add outside knowledge.", "Do not add outside knowledge. Be brief."
    )
    (tmp_path / "brief.toml").write_text(edited, encoding="utf-8")
    out = invoke("create", "brief", "--file", str(tmp_path / "brief.toml"), "--from", "grounded@2")
    assert "saved brief@1 (from grounded@2)" in out
    diff = invoke("diff", "grounded@2", "brief@1", "--lang", "en")
    assert "+++ brief@1 [en]" in diff and "Be brief." in diff and "[ko]" not in diff
    assert "have the same parts" in invoke("diff", "grounded@2", "grounded")

    assert "default: brief@1 (from set-default)" in invoke("set-default", "brief@1")
    assert "A/B split: grounded@2 90 %, brief@1 10 %" in invoke(
        "split", "grounded@2=90", "brief=10"
    )
    rows = {r["prompt"]: r for r in json.loads(invoke("list", "--json"))["versions"]}
    assert rows["brief@1"]["source"] == "store" and rows["brief@1"]["default"]
    assert (rows["brief@1"]["share"], rows["grounded@2"]["share"]) == (10, 90)
    assert json.loads(invoke("split", "--json")) == {"split": {"grounded@2": 90, "brief@1": 10}}
    assert "no A/B split" in invoke("split", "--clear")
    assert "default: grounded@2 (from llm.prompt)" in invoke("set-default", "--clear")


def test_mistakes_are_clear_errors(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[en\n", encoding="utf-8")
    err = fails("create", "mine", "--file", str(bad), "--from", "grounded@2")
    assert isinstance(err, InputError) and "bad.toml is not valid TOML" in str(err)
    err = fails("create", "mine", "--file", str(tmp_path / "none.toml"))
    assert isinstance(err, InputError) and "cannot read the prompt file" in str(err)
    bad.write_text('[en]\nrole = "x"\n', encoding="utf-8")
    err = fails("create", "grounded", "--file", str(bad), "--from", "grounded@2")
    assert isinstance(err, InputError) and "built-in prompt name" in str(err)
    err = fails("split", "grounded@2=90", "grounded@1=20")
    assert isinstance(err, InputError) and err.exit_code == 64 and "sum to 110" in str(err)
    err = fails("set-default", "grounded@9")
    assert isinstance(err, ConfigError) and err.exit_code == 78 and "grounded@1" in str(err)
    assert isinstance(fails("set-default"), InputError)
    assert json.loads(invoke("list", "--json"))["split"] == {}


def test_list_still_lists_when_the_setting_names_no_version(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DARI_LLM__PROMPT", "grounded@9")
    text = invoke("list")
    assert "grounded@2" in text and "no default: unknown prompt 'grounded@9'" in text
    assert "no A/B split" in invoke("split")  # showing the split needs no default
    assert isinstance(fails("set-default", "--clear"), ConfigError)  # the setting applies again

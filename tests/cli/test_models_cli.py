"""`dari models use|list` and `dari status`: which model is served and why, stored in DARI_HOME."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.generate.lora_gguf import fake_run
from typer.testing import CliRunner

from dari.app import Dari, ModelChoice
from dari.cli.main import app
from dari.config import load_settings
from dari.errors import ConfigError, InputError, ModelNotFound
from dari.eval.answers import eval_settings

runner = CliRunner()


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A finished tune run over a fake base file (nothing is loaded by these commands)."""
    return fake_run(tmp_path)


def _choice_file() -> Path:
    return Path(os.environ["DARI_HOME"]) / "models" / "served.json"


def _says(*args: str) -> str:
    """What a command printed, on one line."""
    result = runner.invoke(app, list(args), env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _llm_status() -> Any:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["llm"]


def test_use_a_tune_run_then_reset(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(run.parent)
    said = _says("models", "use", "sft-1")
    assert "serving sft-1+lora@" in said and f"with the LoRA adapter {run / 'adapter.gguf'}" in said
    assert json.loads(_choice_file().read_text())["model"] == str(run)  # absolute

    llm = _llm_status()
    assert llm["model"] == str(run) and llm["source"] == "models use"
    assert llm["served"].startswith("sft-1+lora@") and llm["error"] == ""
    assert llm["file"] == "LoRA adapter.gguf on base.gguf"
    listing = _says("models", "list")
    assert f"served: {llm['served']} — chosen with `dari models use`" in listing
    assert f"{llm['served']} — LoRA adapter.gguf on base.gguf (dari models use)" in _says("status")

    assert "serving the default model again" in _says("models", "use", "--reset")
    assert not _choice_file().exists()
    assert _llm_status()["source"] == "default"
    assert "served: default — the default" in _says("models", "list")


def test_a_bad_target_is_refused_and_the_choice_kept(run: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["models", "use", str(run)]).exit_code == 0
    before = _choice_file().read_text()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["models", "use", str(tmp_path / "empty")])
    assert isinstance(result.exception, ModelNotFound)
    assert "is not a tune run" in str(result.exception)
    (tmp_path / "base.gguf").write_bytes(b"another base")  # the adapter no longer fits
    result = runner.invoke(app, ["models", "use", str(run)])
    assert isinstance(result.exception, ModelNotFound) and "not the one" in str(result.exception)
    assert _choice_file().read_text() == before


@pytest.mark.parametrize("args", [[], ["ci", "--reset"]])
def test_use_needs_a_model_or_reset(args: list[str]) -> None:
    result = runner.invoke(app, ["models", "use", *args])
    assert isinstance(result.exception, InputError)
    assert not _choice_file().exists()


def test_llm_model_set_explicitly_wins(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.invoke(app, ["models", "use", str(run)])
    monkeypatch.setenv("DARI_LLM__MODEL", "small")
    assert "wins over `dari models use`" in _says("models", "use", str(run))
    llm = _llm_status()
    assert (llm["model"], llm["source"], llm["served"]) == ("small", "setting", "small")
    assert "served: small — llm.model is set" in _says("models", "list")


def test_a_model_flag_wins_and_its_absence_keeps_the_choice(run: Path) -> None:
    runner.invoke(app, ["models", "use", str(run)])
    base = load_settings()
    assert Dari(base).model_choice == ModelChoice(str(run), "models use")
    assert Dari(eval_settings(base, model="ci")).model_choice == ModelChoice("ci", "setting")
    assert Dari(eval_settings(base, prompt="grounded@1")).model_choice.source == "models use"


def test_a_corrupt_choice_is_a_clear_error_that_reset_fixes() -> None:
    _choice_file().parent.mkdir(parents=True)
    _choice_file().write_text("{half a json")
    with pytest.raises(ConfigError) as info:
        _ = Dari(load_settings()).model_name
    assert str(_choice_file()) in info.value.message
    assert "dari models use --reset" in info.value.hint
    llm = _llm_status()  # status still answers, and says why
    assert str(_choice_file()) in llm["error"] and "--reset" in llm["error"]
    assert "model unusable" in _says("status")
    _says("models", "use", "--reset")
    assert _llm_status()["error"] == ""


def test_a_tune_run_that_broke_after_use_shows_in_status(run: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["models", "use", str(run)])
    (tmp_path / "base.gguf").unlink()
    llm = _llm_status()
    assert "is gone" in llm["error"] and llm["source"] == "models use"
    assert "is gone" in _says("models", "list")

"""Run folders: a finished run is never overwritten without --force, a stopped one resumes from
its last complete checkpoint, and a half-written checkpoint is never resumed from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dari.errors import Conflict, InputError
from dari.tune.run_dir import MANIFEST, RunDir, read_json

STARTED = {"recipe": {"seed": 7}, "data_sha256": "abc", "base": "/m.gguf"}


def _checkpoint(run: RunDir, step: int, complete: bool = True) -> Path:
    ckpt = run.checkpoints / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_model.safetensors").write_bytes(b"weights")
    if complete:
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def test_a_new_folder_records_how_the_run_started(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.prepare(STARTED, force=False) is None
    assert read_json(run.path / "run.json") == STARTED


def test_an_unfinished_run_resumes_from_its_last_complete_checkpoint(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.prepare(STARTED, force=False)
    _checkpoint(run, 5)
    _checkpoint(run, 10)
    half = _checkpoint(run, 15, complete=False)  # e.g. the disk filled up while saving it
    assert run.prepare(STARTED, force=False) == run.checkpoints / "checkpoint-10"
    assert not half.exists() and (run.checkpoints / "checkpoint-15.incomplete").exists()


def test_a_different_recipe_or_data_is_not_resumed(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.prepare(STARTED, force=False)
    _checkpoint(run, 5)
    with pytest.raises(Conflict, match="different data_sha256"):
        run.prepare({**STARTED, "data_sha256": "other"}, force=False)
    assert run.prepare({**STARTED, "data_sha256": "other"}, force=True) is None
    assert not run.checkpoints.exists()


def test_a_finished_run_needs_force(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.prepare(STARTED, force=False)
    (run.path / MANIFEST).write_text("{}")
    with pytest.raises(Conflict, match="already holds a finished run"):
        run.prepare(STARTED, force=False)
    run.prepare(STARTED, force=True)
    assert not (run.path / MANIFEST).exists()


def test_foreign_files_are_never_removed(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(Conflict, match="not a dari tune run"):
        RunDir(folder).prepare(STARTED, force=False)
    RunDir(folder).prepare(STARTED, force=True)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_an_output_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        RunDir(path).prepare(STARTED, force=True)

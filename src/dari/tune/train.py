"""One LoRA run (SFT or DPO) with peft + trl: check the data, load the base, measure the held-out
loss, train with checkpoints, measure again, save the adapter and convert it for llama.cpp.

Imports torch, transformers, peft and trl (the `tune` extra) only when a run starts.
"""

from __future__ import annotations

import errno
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import DariError, InputError, MissingExtra
from dari.eval.golden import SkippedLine
from dari.generate import models
from dari.tune import base, convert
from dari.tune.data import Row, TuneData, load_rows, split
from dari.tune.recipe import Recipe
from dari.tune.run_dir import MANIFEST, STARTED, RunDir, read_json, write_json
from dari.tune.trainer import Progress, build_trainer, evaluate


@dataclass(frozen=True)
class Hardware:
    device: str  # cpu | cuda
    bf16: bool


def run(
    recipe: Recipe,
    data_path: Path,
    output: Path,
    models_dir: Path,
    tools_dir: str = "",
    force: bool = False,
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train, and return the manifest written to `output/tune.json`."""
    _require_extra()
    _quiet_libraries()
    rows, skipped, sha = load_rows(data_path, recipe.method)
    ref = base.find_base(recipe.base, models_dir)
    tools = convert.tools_dir(tools_dir)
    folder = RunDir(output)
    started = {
        "recipe": recipe.fingerprint_data(),
        "data_sha256": sha,
        "base": str(ref.path),
        "started": time.time(),
    }
    resume = folder.prepare(started, force)
    if resume is not None:
        say(f"resuming from {resume.name}")

    import torch

    _seed(recipe.seed)
    hw = hardware(recipe, torch)
    say(f"loading {ref.path.name} on {hw.device}" + (" (bf16)" if hw.bf16 else " (fp32)"))
    # On the CPU the weights stay fp32 and bf16 is autocast; a GPU holds them in bf16.
    dtype = torch.bfloat16 if hw.device == "cuda" and hw.bf16 else torch.float32
    device_map = "auto" if hw.device == "cuda" else None
    model, tokenizer = base.load(ref, dtype, device_map, recipe.train.quantize == "4bit")
    if recipe.chat_template:
        tokenizer.chat_template = recipe.chat_template
    data, lengths = _fitted(recipe, data_path, rows, skipped, sha, tokenizer)
    trainer = build_trainer(recipe, hw, model, tokenizer, data, folder.checkpoints, progress)
    before = evaluate(trainer, data.held_out) if resume is None else _earlier(folder)
    if resume is None:
        write_json(folder.path / STARTED, {**started, "held_out_before": before})
    t0 = time.perf_counter()
    _train(trainer, resume, folder)
    seconds = time.perf_counter() - t0
    after = evaluate(trainer, data.held_out)
    say("saving the adapter")
    trainer.model.save_pretrained(str(folder.path / "adapter"))
    model.config.save_pretrained(str(folder.path / "base"))  # what the converter reads
    tokenizer.save_pretrained(str(folder.path / "base"))
    files = _convert(ref, folder, tools, trainer.model, tokenizer, say)
    manifest = {
        "format": 1,
        "method": recipe.method,
        **ref.describe(),
        **files,
        "created": time.time(),
        "recipe": recipe.fingerprint_data(),
        **_figures(trainer, data, lengths, hw, seconds, resume),
        **_gpu_figures(hw, torch),
        "held_out": {"before": before, "after": after},
        "log": [dict(e) for e in trainer.state.log_history],
    }
    write_json(folder.path / MANIFEST, manifest)
    return manifest


def _fitted(
    recipe: Recipe,
    path: Path,
    rows: Sequence[Row],
    skipped: list[SkippedLine],
    sha: str,
    tokenizer: Any,
) -> tuple[TuneData, dict[str, int]]:
    """The rows that fit max_length, split into train and held out; and each row's tokens."""
    fitting, lengths, too_long = _fit(rows, tokenizer, recipe.train.max_length)
    train_rows, held = split(fitting, recipe.train.eval_fraction, recipe.train.max_eval_rows)
    if not train_rows:
        raise InputError(
            f"every row of {path} is longer than max_length {recipe.train.max_length}",
            "raise train.max_length in the recipe (more memory) or shorten the rows",
        )
    data = TuneData(path, recipe.method, tuple(train_rows), tuple(held), (*skipped, *too_long), sha)
    return data, lengths


def _figures(
    trainer: Any,
    data: TuneData,
    lengths: dict[str, int],
    hw: Hardware,
    seconds: float,
    resume: Path | None,
) -> dict[str, Any]:
    """What the run did and cost. Tokens/s counts the rows' tokens (no padding) over the epochs
    trained; after a resume it would mix two processes, so it is left out."""
    epochs = float(trainer.state.epoch or 0)
    tokens = sum(lengths[r.key] for r in data.train) * epochs
    return {
        "data": data.summary(),
        "held_out_keys": [r.key for r in data.held_out],
        "skipped_lines": [{"line": s.line, "reason": s.reason} for s in data.skipped[:200]],
        "device": hw.device,
        "precision": "bf16" if hw.bf16 else "fp32",
        "steps": int(trainer.state.global_step),
        "epochs": epochs,
        "train_seconds": round(seconds, 2),
        "resumed_from": resume.name if resume else None,
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 and resume is None else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _gpu_figures(hw: Hardware, torch: Any) -> dict[str, Any]:
    """On a GPU: which one, and the most memory torch held on it during the run."""
    if hw.device != "cuda":
        return {}
    return {
        "gpu": torch.cuda.get_device_name(),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
    }


def hardware(recipe: Recipe, torch: Any) -> Hardware:
    """Where to train and in which precision: bf16 where the device has it (CPU: AVX-512 BF16 or
    AMX), as trl defaults to; fp32 elsewhere or when the recipe says so."""
    want = recipe.train.device
    cuda = bool(torch.cuda.is_available())
    if want == "cuda" and not cuda:
        raise DariError(
            "train.device = 'cuda' but torch sees no CUDA GPU",
            "set train.device = 'auto' (or 'cpu'), or install a CUDA build of torch",
        )
    device = "cuda" if (want == "cuda" or (want == "auto" and cuda)) else "cpu"
    if recipe.train.quantize == "4bit" and device != "cuda":
        raise DariError(
            "train.quantize = '4bit' (QLoRA) needs a CUDA GPU", "set train.quantize = 'none'"
        )
    if recipe.train.precision == "fp32":
        return Hardware(device, False)
    has = bool(torch.cuda.is_bf16_supported()) if device == "cuda" else _cpu_bf16()
    if recipe.train.precision == "bf16" and not has:
        raise DariError(f"train.precision = 'bf16' but this {device} has no bf16", "use 'auto'")
    return Hardware(device, has)


def _cpu_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _require_extra() -> None:
    for module in ("torch", "transformers", "peft", "trl", "datasets"):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingExtra(module, "tune") from exc


def _quiet_libraries() -> None:
    """dari draws its own progress bar; the libraries' bars and notices would interleave."""
    import datasets
    from transformers.utils import logging

    datasets.disable_progress_bars()
    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _seed(seed: int) -> None:
    """Python's, numpy's and torch's generators (LoRA's initial weights come from torch's)."""
    from transformers import set_seed

    set_seed(seed)


def _fit(
    rows: Sequence[Row], tokenizer: Any, max_length: int
) -> tuple[list[Row], dict[str, int], list[SkippedLine]]:
    """Rows whose chat-formatted tokens fit max_length (a longer one is left out and reported,
    never cut: a truncated answer teaches the model to stop mid-sentence), and each row's size."""
    keep: list[Row] = []
    lengths: dict[str, int] = {}
    skipped: list[SkippedLine] = []
    for r in rows:
        sides = [r.completion, r.rejected] if r.rejected else [r.completion]
        counts = [_count(tokenizer, [*r.prompt, *side]) for side in sides]
        if max(counts) > max_length:
            reason = f"too long: {max(counts)} tokens > max_length {max_length}"
            skipped.append(SkippedLine(r.line, reason))
            continue
        lengths[r.key] = sum(counts)
        keep.append(r)
    return keep, lengths, skipped


def _count(tokenizer: Any, messages: Sequence[dict[str, str]]) -> int:
    ids = tokenizer.apply_chat_template(list(messages), tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


def _train(trainer: Any, resume: Path | None, folder: RunDir) -> None:
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except (OSError, RuntimeError) as exc:
        if not _disk_full(exc):
            raise
        kept = folder.last_checkpoint()
        raise DariError(
            f"the disk filled up while training into {folder.path} "
            f"(step {trainer.state.global_step})",
            "free disk space and rerun the same command: it resumes from "
            + (kept.name if kept else "the start (no complete checkpoint yet)"),
        ) from exc


def _disk_full(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if "No space left" in str(exc) or "failed writing file" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _earlier(folder: RunDir) -> dict[str, float] | None:
    """The held-out figures measured before the first step, kept in run.json across resumes."""
    value = read_json(folder.path / STARTED).get("held_out_before")
    return value if isinstance(value, dict) else None


def _convert(
    ref: base.BaseModelRef,
    folder: RunDir,
    tools: Path,
    tuned: Any,
    tokenizer: Any,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The llama.cpp files. Over a GGUF base: the adapter alone as GGUF (5 MB for the CI model),
    applied at load time. From a Hugging Face folder there is no GGUF base to apply it to: the
    adapter is merged into the weights and the whole model converted (f16)."""
    p = folder.path
    if ref.gguf is not None:
        say("converting the adapter to GGUF for llama.cpp")
        out = convert.lora_to_gguf(p / "adapter", p / "base", p / "adapter.gguf", tools)
        return {
            "adapter_gguf": out.name,
            "merged_gguf": None,
            "adapter_sha256": models.sha256_file(out),
        }
    say("merging the adapter into the base and converting it to GGUF for llama.cpp")
    merged = tuned.merge_and_unload()
    merged.save_pretrained(str(p / "merged"))
    tokenizer.save_pretrained(str(p / "merged"))
    out = convert.model_to_gguf(p / "merged", p / "merged.gguf", tools)
    adapter = models.sha256_file(p / "adapter" / "adapter_model.safetensors")
    return {"adapter_gguf": None, "merged_gguf": out.name, "adapter_sha256": adapter}

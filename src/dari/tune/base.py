"""The model a run starts from: a GGUF file dari serves (dequantized into transformers, so LoRA can
train on it) or a Hugging Face model folder. Never reaches for a hub: everything is local.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.errors import BackendError, ModelNotFound
from dari.generate import models


@dataclass(frozen=True)
class BaseModelRef:
    """Where the base weights are: `gguf` (a file) or `folder` (a Hugging Face model folder)."""

    name: str
    gguf: Path | None
    folder: Path | None

    @property
    def path(self) -> Path:
        return self.gguf or self.folder  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"base": self.name}
        if self.gguf is not None:
            info |= {"base_gguf": str(self.gguf), "base_size": self.gguf.stat().st_size}
            info["base_sha256"] = models.sha256_file(self.gguf)
        else:
            info |= {"base_gguf": None, "base_folder": str(self.folder)}
        return info


def find_base(name: str, models_dir: Path) -> BaseModelRef:
    """A dari model name (default, small, ci), a .gguf file, or a folder with config.json."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFound(
                f"the base model folder {path} has no config.json",
                "point --base at a Hugging Face model folder, a .gguf file or a dari model name",
            )
        return BaseModelRef(name, None, path.resolve())
    if path.suffix == ".gguf" and not path.exists():
        raise ModelNotFound(f"the base model file {path} does not exist", "check the path")
    try:
        return BaseModelRef(name, models.resolve(name, models_dir).resolve(), None)
    except ModelNotFound as exc:
        raise ModelNotFound(
            f"no base model '{name}': {exc.message}",
            "give --base (or `base` in the recipe) one of default, small, ci, a .gguf file or "
            "a Hugging Face model folder",
        ) from exc


def load(ref: BaseModelRef, dtype: Any, device_map: str | None, quantize: bool) -> tuple[Any, Any]:
    """(model, tokenizer) in transformers, on the CPU or the GPU, optionally 4-bit (QLoRA)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if quantize and ref.gguf is not None:
        raise BackendError(
            f"train.quantize = '4bit' cannot start from the GGUF file {ref.gguf}",
            "QLoRA quantizes full-precision weights: give --base a Hugging Face model folder",
        )
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if device_map:
        kwargs["device_map"] = device_map
    if quantize:
        kwargs["quantization_config"] = _four_bit(dtype)
    try:
        if ref.gguf is not None:
            from transformers import GgufConfig

            folder, file = str(ref.gguf.parent), ref.gguf.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file, local_files_only=True)
            if not quantize:  # dequantize: a GGUF quantizer neither trains nor saves
                kwargs["quantization_config"] = GgufConfig(gguf_file=file, dequantize=True)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, **kwargs)
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(ref.folder), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(ref.folder), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise BackendError(
            f"transformers could not load the base model {ref.path}: {exc}",
            "use a model dari ships (ci, small, default), a llama/qwen-family GGUF, "
            "or a complete Hugging Face model folder",
        ) from exc
    # The converter to GGUF finds the architecture here; a model read from GGUF lacks it.
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _four_bit(dtype: Any) -> Any:
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise BackendError(
            "train.quantize = '4bit' (QLoRA) needs bitsandbytes and a CUDA GPU",
            "pip install bitsandbytes on a GPU machine, or set train.quantize = 'none'",
        ) from exc
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )

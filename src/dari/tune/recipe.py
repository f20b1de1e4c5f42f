"""A training recipe: one small TOML file (in the spirit of axolotl's single-file configs) that says
everything a LoRA run depends on, so the same file, data and seed give the same adapter.

```toml
method = "sft"            # sft | dpo
base = "ci"               # a dari model name, a .gguf file or a Hugging Face model folder
seed = 7
[lora]
r = 8
alpha = 16
target_modules = "all-linear"
[train]
learning_rate = 2e-4
epochs = 1
max_steps = 0             # > 0 stops there (and wins over epochs)
max_length = 1024         # tokens; longer rows are reported and left out, never cut
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dari.errors import ConfigError

Method = Literal["sft", "dpo"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraPart(_Part):
    r: int = Field(8, ge=1, le=512)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    # "all-linear" (peft's shorthand) or a list of module names, e.g. ["q_proj", "v_proj"]
    target_modules: str | tuple[str, ...] = "all-linear"


class TrainPart(_Part):
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(1, gt=0)
    max_steps: int = Field(0, ge=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_length: int = Field(1024, ge=16)
    eval_fraction: float = Field(0.1, ge=0, lt=1)  # rows held out to measure loss before/after
    max_eval_rows: int = Field(100, ge=1)
    save_every: int = Field(10, ge=1)  # steps between checkpoints (a run resumes from the last)
    keep_checkpoints: int = Field(2, ge=1)
    # auto: bf16 where the CPU or GPU has it (trl's default; fast on this CPU), else fp32
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    quantize: Literal["none", "4bit"] = "none"  # 4bit = QLoRA: needs CUDA and bitsandbytes
    gradient_checkpointing: bool = False


class DpoPart(_Part):
    beta: float = Field(0.1, gt=0)
    loss_type: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"


class Recipe(_Part):
    method: Method = "sft"
    base: str = "default"
    seed: int = 7
    chat_template: str = ""  # a Jinja template replacing the base tokenizer's; "" keeps it
    lora: LoraPart = LoraPart()
    train: TrainPart = TrainPart()
    dpo: DpoPart = DpoPart()

    @classmethod
    def default(cls, method: Method) -> Recipe:
        """dari's defaults: DPO takes a lower learning rate and smaller batches (two forward
        passes per pair, through the policy and the reference)."""
        if method == "dpo":
            return cls(method="dpo", train=TrainPart(learning_rate=5e-5, batch_size=2))
        return cls(method="sft")

    def with_overrides(self, **changes: object) -> Recipe:
        """A copy with top-level or `part.key` fields changed (CLI flags); None leaves a field."""
        data = self.model_dump()
        for key, value in changes.items():
            if value is None:
                continue
            part, _, name = key.rpartition(".")
            (data[part] if part else data)[name] = value
        return _validated(data, "the command-line options")

    def fingerprint_data(self) -> dict[str, object]:
        """What a resumed run must share with the run it continues."""
        return self.model_dump(mode="json")


def load_recipe(path: Path | None, method: Method) -> Recipe:
    """The recipe file (its method must match the command), or dari's defaults for `method`."""
    if path is None:
        return Recipe.default(method)
    try:
        data = tomllib.loads(path.expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the recipe {path}: {exc.strerror}", "check the path"
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the recipe {path} is not valid TOML: {exc}", "fix the file") from exc
    data.setdefault("method", method)
    given = data.get("train", {})
    if isinstance(given, dict):  # unset keys take the method's defaults (DPO's differ)
        data["train"] = {**Recipe.default(method).train.model_dump(), **given}
    recipe = _validated(data, f"the recipe {path}")
    if recipe.method != method:
        raise ConfigError(
            f"the recipe {path} is for method '{recipe.method}', not '{method}'",
            f"use `dari tune {recipe.method}`, or change `method` in the file",
        )
    return recipe


def _validated(data: dict[str, object], where: str) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}", "see docs/en/fine-tuning.md") from exc

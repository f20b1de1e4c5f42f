"""trl's SFTTrainer / DPOTrainer set up from a recipe, a progress callback, and the held-out
evaluation. SFT learns the answer only (prompt/completion rows: the prompt's tokens carry no loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dari.tune.data import Row, TuneData
from dari.tune.recipe import Recipe

if TYPE_CHECKING:
    from dari.tune.train import Hardware

EVAL_BATCH = 4


class Progress(Protocol):
    """Told about the run as it goes: how many steps, and after each one the latest loss."""

    def start(self, total_steps: int, first_step: int) -> None: ...

    def step(self, step: int, loss: float | None) -> None: ...


def build_trainer(
    recipe: Recipe,
    hw: Hardware,
    model: Any,
    tokenizer: Any,
    data: TuneData,
    checkpoints: Path,
    progress: Progress | None,
) -> Any:
    from datasets import Dataset
    from peft import LoraConfig

    t = recipe.train
    common: dict[str, Any] = {
        "output_dir": str(checkpoints),
        "per_device_train_batch_size": t.batch_size,
        # held-out loss is a mean of batch means: a fixed batch keeps it comparable across recipes
        "per_device_eval_batch_size": EVAL_BATCH,
        "gradient_accumulation_steps": t.grad_accum,
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps or -1,
        "warmup_steps": t.warmup_ratio,
        "lr_scheduler_type": "linear",
        "max_length": t.max_length,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": t.save_every,
        "save_total_limit": t.keep_checkpoints,
        "eval_strategy": "no",
        "report_to": [],
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "bf16": hw.bf16,
        "use_cpu": hw.device == "cpu",
        "disable_tqdm": True,
        "activation_checkpointing": t.gradient_checkpointing,
        "dataloader_num_workers": 0,
    }
    lora = LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=_targets(recipe.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    train = Dataset.from_list([r.to_trl() for r in data.train])
    held = Dataset.from_list([r.to_trl() for r in data.held_out]) if data.held_out else None
    callbacks = [_callback(progress)] if progress is not None else []
    if recipe.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer_cls: Any = DPOTrainer
        args: Any = DPOConfig(**common, beta=recipe.dpo.beta, loss_type=[recipe.dpo.loss_type])
    else:
        from trl import SFTConfig, SFTTrainer

        trainer_cls = SFTTrainer
        args = SFTConfig(**common, completion_only_loss=True)
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=held,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    return _silent(trainer)


def _silent(trainer: Any) -> Any:
    """Without tqdm, transformers prints every log dict to stdout; dari draws its own bar (and
    `--json` output must stay parseable)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def evaluate(trainer: Any, held: Sequence[Row]) -> dict[str, float] | None:
    """Held-out figures: the loss (SFT: on answer tokens; DPO: the preference loss, ln 2 before
    any step) and, for DPO, how often the chosen answer out-scores the rejected one."""
    if not held:
        return None
    metrics = trainer.evaluate()
    keep = (
        "eval_loss",
        "eval_mean_token_accuracy",
        "eval_rewards/accuracies",
        "eval_rewards/margins",
    )
    return {
        k.removeprefix("eval_"): round(float(v), 4)
        for k, v in metrics.items()
        if k in keep and math.isfinite(float(v))
    }


def _targets(value: str | tuple[str, ...]) -> str | list[str]:
    return value if isinstance(value, str) else list(value)


def _callback(progress: Progress) -> Any:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def __init__(self) -> None:
            self.loss: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress.start(int(state.max_steps), int(state.global_step))

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])
                progress.step(int(state.global_step), self.loss)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress.step(int(state.global_step), self.loss)

    return _Report()

"""Real LoRA runs on the CI model (SmolLM2-135M) with rows built from HaluEval: the held-out loss
falls, the adapter converts to GGUF, a stopped run resumes from its last checkpoint, and bad input
is refused before any model loads."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dari.errors import Conflict, DariError, InputError, ModelNotFound
from dari.index.analyzer import Analyzer
from dari.jsonl import write_jsonl
from dari.tune import train
from dari.tune.examples import build
from dari.tune.heldout import evaluate_run
from dari.tune.recipe import Recipe

pytest.importorskip("trl", reason="the tune extra is not installed: pip install 'dari[tune]'")

DATA = Path(__file__).parent / "data"
FAST = {
    "base": "ci",
    "train.max_length": 384,
    "train.batch_size": 2,
    "train.max_eval_rows": 6,
    "train.save_every": 2,
}


def _rows(tmp_path: Path, method: str, n: int) -> Path:
    path = tmp_path / f"{method}.jsonl"
    write_jsonl(path, build("halueval", DATA, method, n=n, abstain=0.1), force=True)
    return path


def _recipe(method: str, **more: Any) -> Recipe:
    return Recipe.default(method).with_overrides(**{**FAST, **more})  # type: ignore[arg-type]


def _run(recipe: Recipe, data: Path, out: Path, **kw: Any) -> dict[str, Any]:
    return train.run(recipe, data, out, Path("unused-models-dir"), **kw)


class _Steps:
    def __init__(self) -> None:
        self.seen: list[tuple[int, float | None]] = []
        self.total = 0

    def start(self, total_steps: int, first_step: int) -> None:
        self.total = total_steps

    def step(self, step: int, loss: float | None) -> None:
        self.seen.append((step, loss))


def test_a_gpu_run_records_the_gpu_and_its_peak_memory() -> None:
    # torch.cuda's two calls, as a CUDA build answers them (CI has no GPU; the real path was
    # measured on an H200: docs/benchmarks/tune/report-gpu.json)
    cuda = SimpleNamespace(
        get_device_name=lambda: "NVIDIA H200", max_memory_allocated=lambda: 3 * 2**30
    )
    torch = SimpleNamespace(cuda=cuda)
    assert train._gpu_figures(train.Hardware("cuda", True), torch) == {
        "gpu": "NVIDIA H200",
        "peak_gpu_mb": 3072,
    }
    assert train._gpu_figures(train.Hardware("cpu", True), torch) == {}


@pytest.mark.slow
def test_sft_lowers_held_out_loss_and_writes_a_servable_adapter(tmp_path: Path) -> None:
    data = _rows(tmp_path, "sft", 80)
    steps = _Steps()
    out = tmp_path / "run"
    m = _run(
        _recipe("sft", **{"train.max_steps": 8, "train.learning_rate": 5e-4}),
        data,
        out,
        progress=steps,
    )
    before, after = m["held_out"]["before"]["loss"], m["held_out"]["after"]["loss"]
    assert after < before - 0.1, (before, after)
    assert m["steps"] == 8 and steps.total == 8 and steps.seen[-1][0] == 8
    assert all(loss is not None and loss > 0 for _, loss in steps.seen[1:])
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    assert (out / m["adapter_gguf"]).stat().st_size > 1_000_000
    assert json.loads((out / "tune.json").read_text())["adapter_sha256"] == m["adapter_sha256"]
    assert m["data"]["train"] + m["data"]["held_out"] + m["data"]["skipped"] == 80
    assert m["tokens_per_s"] > 0 and m["peak_rss_mb"] > 0
    assert m["device"] == "cpu" and "peak_gpu_mb" not in m
    with pytest.raises(Conflict, match="finished run"):
        _run(_recipe("sft", **{"train.max_steps": 8}), data, out)

    # Served: the adapter over the base GGUF changes the answers llama.cpp gives.
    report = evaluate_run(out, tmp_path / "eval", Analyzer().kiwi, n=4, max_tokens=48)
    assert report["paired_items"] == 4
    base_items = json.loads((tmp_path / "eval" / "base" / "report.json").read_text())["items"]
    tuned = json.loads((tmp_path / "eval" / "tuned" / "report.json").read_text())
    assert tuned["model"].startswith("run+lora@")
    assert [i["answer"] for i in base_items] != [i["answer"] for i in tuned["items"]]
    assert (tmp_path / "eval" / "compare.html").exists()
    assert set(report["metrics"]) >= {"token_f1", "rouge_l", "abstention_ok", "latency_ms"}


@pytest.mark.slow
def test_dpo_learns_to_prefer_the_right_answers(tmp_path: Path) -> None:
    data = _rows(tmp_path, "dpo", 60)
    m = _run(
        _recipe("dpo", **{"train.max_steps": 10, "train.learning_rate": 5e-4}), data, tmp_path / "d"
    )
    before, after = m["held_out"]["before"], m["held_out"]["after"]
    assert before["loss"] == pytest.approx(0.6931, abs=0.01)  # policy = reference before step 1
    assert after["loss"] < before["loss"]
    assert after["rewards/margins"] > 0


@pytest.mark.slow
def test_a_full_disk_keeps_the_last_checkpoint_and_the_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import Trainer

    data = _rows(tmp_path, "sft", 40)
    out = tmp_path / "run"
    recipe = _recipe("sft", **{"train.max_steps": 4})
    real = Trainer._save_checkpoint

    def fill_up(self: Any, model: Any, trial: Any) -> None:
        if self.state.global_step >= 4:  # checkpoint-2 is written, checkpoint-4 is not
            (Path(self.args.output_dir) / "checkpoint-4").mkdir(exist_ok=True)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, model, trial)

    monkeypatch.setattr(Trainer, "_save_checkpoint", fill_up)
    with pytest.raises(DariError, match="disk filled up") as caught:
        _run(recipe, data, out)
    assert "resumes from checkpoint-2" in caught.value.hint
    assert not (out / "tune.json").exists()
    monkeypatch.setattr(Trainer, "_save_checkpoint", real)
    m = _run(recipe, data, out)
    assert m["resumed_from"] == "checkpoint-2" and m["steps"] == 4
    assert (out / "checkpoints" / "checkpoint-4.incomplete").exists()
    assert m["held_out"]["before"] is not None  # measured before step 1, kept across the resume


@pytest.mark.slow
def test_rows_longer_than_max_length_are_left_out_and_reported(tmp_path: Path) -> None:
    data = _rows(tmp_path, "sft", 24)
    m = _run(
        _recipe("sft", **{"train.max_steps": 1, "train.max_length": 320}), data, tmp_path / "r"
    )
    too_long = [s for s in m["skipped_lines"] if s["reason"].startswith("too long")]
    assert too_long and all("> max_length 320" in s["reason"] for s in too_long)
    assert m["data"]["skipped_by_reason"]["too long"] == len(too_long)


def test_bad_input_is_refused_before_a_model_loads(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        _run(_recipe("sft"), empty, tmp_path / "a")
    data = _rows(tmp_path, "sft", 4)
    with pytest.raises(ModelNotFound, match="does not exist"):
        _run(_recipe("sft", base=str(tmp_path / "nope.gguf")), data, tmp_path / "b")
    with pytest.raises(ModelNotFound, match=r"no base model 'gpt-9': unknown model"):
        _run(_recipe("sft", base="gpt-9"), data, tmp_path / "c")
    with pytest.raises(InputError, match="no usable dpo rows"):
        _run(_recipe("dpo"), data, tmp_path / "d")  # SFT rows given to DPO
    assert not any((tmp_path / n).exists() for n in "abcd")


@pytest.mark.slow
def test_a_hugging_face_folder_base_gives_a_merged_gguf_llama_cpp_serves(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from dari.config import LLMSettings
    from dari.generate import models
    from dari.generate.llama import LlamaCppGenerator
    from dari.types import GenerationParams

    gguf = models.resolve("ci", tmp_path)
    folder = tmp_path / "hf-base"
    kw: dict[str, Any] = {"gguf_file": gguf.name}
    AutoTokenizer.from_pretrained(str(gguf.parent), **kw).save_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), **kw, quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True)
    )
    model.to(torch.bfloat16).save_pretrained(str(folder))
    data = _rows(tmp_path, "sft", 16)
    out = tmp_path / "run"
    m = _run(_recipe("sft", base=str(folder), **{"train.max_steps": 2}), data, out)
    assert m["base_gguf"] is None and m["adapter_gguf"] is None
    assert m["merged_gguf"] == "merged.gguf" and (out / "merged.gguf").stat().st_size > 100_000_000
    served = models.served(str(out), tmp_path)
    assert served.lora is None and served.name.startswith("run+merged@")
    gen = LlamaCppGenerator(served.path, LLMSettings(n_ctx=1024), name=served.name)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    answer = "".join(gen.stream(question, GenerationParams(0.0, 1.0, 16, 7)))
    assert answer.strip()


@pytest.mark.slow
def test_the_same_recipe_data_and_seed_give_the_same_adapter(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    data = _rows(tmp_path, "sft", 16)
    recipe = _recipe("sft", **{"train.max_steps": 2, "train.max_eval_rows": 1})
    runs = [tmp_path / "one", tmp_path / "two"]
    for out in runs:
        _run(recipe, data, out)
    one, two = (load_file(str(r / "adapter" / "adapter_model.safetensors")) for r in runs)
    assert one.keys() == two.keys() and all(bool((one[k] == two[k]).all()) for k in one)
    other = _run(recipe.with_overrides(seed=8), data, tmp_path / "three")
    three = load_file(str(tmp_path / "three" / "adapter" / "adapter_model.safetensors"))
    assert any(not bool((one[k] == three[k]).all()) for k in one)
    assert other["steps"] == 2

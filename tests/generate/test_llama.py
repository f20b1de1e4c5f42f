"""llama.cpp in process with the CI model: streaming, the fixed prompt prefix kept in a saved
KV state so that a new process does not evaluate it again, and a LoRA adapter over the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.generate.lora_gguf import ci_gguf, write_lora, write_run

from dari.app import Dari
from dari.config import LLMSettings, Settings
from dari.errors import BackendError
from dari.generate.llama import LlamaCppGenerator
from dari.generate.models import MODELS, part_files
from dari.generate.prompt import template_for
from dari.types import GenerationParams, Hit

pytestmark = pytest.mark.integration

HIT = Hit(
    "c1",
    "s1",
    "d1",
    1.0,
    "The office opens at 8 am and closes at 6 pm.",
    "office.txt",
    "Office hours",
)


def make(cache: Path) -> LlamaCppGenerator:
    model = part_files(MODELS["ci"])[0]
    return LlamaCppGenerator(model, LLMSettings(n_ctx=2048), name="ci", cache_dir=cache)


def test_streams_pieces_and_saves_then_reuses_the_prefix(tmp_path: Path):
    template = template_for("en")
    messages = template.messages("When does the office open?", [HIT])
    fixed = 1 + 2 * len(template.demonstrations)
    params = GenerationParams(temperature=0.0, max_tokens=12)

    first = make(tmp_path)
    pieces = list(first.stream(messages, params, prefix=fixed))
    assert len(pieces) >= 2 and "".join(pieces).strip()
    (state,) = tmp_path.glob("*.kv")
    first_ids = list(first.llm.input_ids[: first.llm.n_tokens])

    second = make(tmp_path)
    assert second._load_state(state)
    n = second.llm.n_tokens
    assert n > 100  # the system message and demonstrations are in the KV cache already
    restored = list(second.llm.input_ids[:n])
    shared = next(
        (i for i, (a, b) in enumerate(zip(restored, first_ids, strict=False)) if a != b), n
    )
    assert shared >= n - 8  # all but the empty user turn's closing tokens are reused
    again = "".join(second.stream(messages, params, prefix=fixed))
    assert again == "".join(pieces)  # same greedy answer from the restored cache


def test_a_corrupt_state_file_is_rebuilt(tmp_path: Path):
    template = template_for("ko")
    messages = template.messages("사무실은 몇 시에 여나요?", [HIT])
    fixed = 1 + 2 * len(template.demonstrations)
    params = GenerationParams(temperature=0.0, max_tokens=4)
    list(make(tmp_path).stream(messages, params, prefix=fixed))
    (state,) = tmp_path.glob("*.kv")
    state.write_bytes(b"not a llama.cpp state")
    text = "".join(make(tmp_path).stream(messages, params, prefix=fixed))
    assert isinstance(text, str)
    (rebuilt,) = tmp_path.glob("*.kv")
    assert rebuilt.stat().st_size > 1000


def test_a_reset_cache_is_noticed_and_the_prefix_reloaded(tmp_path: Path):
    template = template_for("en")
    messages = template.messages("When does the office open?", [HIT])
    fixed = 1 + 2 * len(template.demonstrations)
    params = GenerationParams(temperature=0.0, max_tokens=4)
    gen = make(tmp_path)
    list(gen.stream(messages, params, prefix=fixed))
    gen.llm.reset()  # e.g. another caller used the model in between
    assert not gen._holds(gen._prefix_head)
    list(gen.stream(messages, params, prefix=fixed))
    assert gen._holds(gen._prefix_head) and len(gen._prefix_head) > 100


# --- a LoRA adapter over the model ----------------------------------------------------------------

GREEDY = GenerationParams(temperature=0.0, max_tokens=12)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_an_adapter_changes_the_greedy_answer(tmp_path: Path):
    base = ci_gguf()
    adapter = write_lora(base, tmp_path / "adapter.gguf")
    plain = "".join(make(tmp_path).stream(QUESTION, GREEDY))
    tuned = LlamaCppGenerator(base, LLMSettings(n_ctx=2048), name="t", lora=adapter)
    answer = "".join(tuned.stream(QUESTION, GREEDY))
    assert answer and answer != plain
    assert answer == "".join(tuned.stream(QUESTION, GREEDY))  # greedy: the same twice


def test_each_adapter_has_its_own_saved_prefix(tmp_path: Path):
    base = ci_gguf()
    one = write_lora(base, tmp_path / "one.gguf", seed=1)
    two = write_lora(base, tmp_path / "two.gguf", seed=2)
    same_size = tmp_path / "again" / "one.gguf"  # another run's adapter, as large, as named
    same_size.parent.mkdir()
    write_lora(base, same_size, seed=3)
    keys = {
        LlamaCppGenerator(base, LLMSettings(), lora=lora)._state_key(QUESTION)
        for lora in (None, one, two, same_size)
    }
    assert len(keys) == 4


def test_a_prefix_saved_with_an_adapter_is_reused_with_it(tmp_path: Path):
    messages = [{"role": "system", "content": "Answer in one word."}, *QUESTION]
    adapter = write_lora(ci_gguf(), tmp_path / "adapter.gguf")

    def tuned() -> LlamaCppGenerator:
        settings = LLMSettings(n_ctx=512)
        return LlamaCppGenerator(ci_gguf(), settings, cache_dir=tmp_path / "kv", lora=adapter)

    first = "".join(tuned().stream(messages, GREEDY, prefix=1))
    (state,) = (tmp_path / "kv").glob("*.kv")
    second = tuned()
    assert second._load_state(state) and second.llm.n_tokens > 5
    assert "".join(second.stream(messages, GREEDY, prefix=1)) == first


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("garbage", "invalid magic"),
        ("other-model", "incorrect shape"),
    ],
)
def test_an_adapter_llama_cpp_refuses_is_a_clear_error(tmp_path: Path, content: str, reason: str):
    bad = tmp_path / "bad adapter.gguf"
    if content == "garbage":
        bad.write_bytes(b"not a GGUF file at all" * 10)
    else:  # an adapter for a model of another width: fine GGUF, wrong shapes
        import numpy as np

        gguf = pytest.importorskip("gguf")

        writer = gguf.GGUFWriter(str(bad), "llama")
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
        writer.add_tensor("blk.0.attn_q.weight.lora_a", np.ones((4, 100), np.float32))
        writer.add_tensor("blk.0.attn_q.weight.lora_b", np.ones((100, 4), np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    gen = LlamaCppGenerator(ci_gguf(), LLMSettings(n_ctx=512), lora=bad)
    with pytest.raises(BackendError) as info:
        list(gen.stream(QUESTION, GREEDY))  # would crash the process if it were applied
    assert str(bad) in info.value.message and reason in info.value.message
    assert "LoRA adapter" in info.value.message and "tune" in info.value.hint


def test_dari_serves_a_tune_run_under_its_own_name(tmp_path: Path):
    base = ci_gguf()
    run = tmp_path / "runs" / "sft-1"
    run.mkdir(parents=True)
    write_run(run, base, write_lora(base, run / "adapter.gguf"))
    dari = Dari(Settings(home=tmp_path / "home", llm={"model": str(run), "n_ctx": 2048}))  # type: ignore[arg-type]
    assert dari.model_choice.source == "setting"
    assert dari.model_name.startswith("sft-1+lora@")
    generator = dari.generator
    assert isinstance(generator, LlamaCppGenerator) and generator.name == dari.model_name
    assert "".join(generator.stream(QUESTION, GREEDY))

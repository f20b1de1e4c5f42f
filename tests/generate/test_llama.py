"""llama.cpp in process with the CI model: streaming, and the fixed prompt prefix kept in a saved
KV state so that a new process does not evaluate it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from dari.config import LLMSettings
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

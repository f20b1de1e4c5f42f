"""The OpenAI-compatible backend against a real server: llama-cpp-python's own `llama_cpp.server`
serving the CI model on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dari.app import Dari
from dari.config import Settings
from dari.generate.models import MODELS, part_files
from dari.testing import FakeEmbedder
from dari.types import Outcome

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="needs the dev extra: llama-cpp-python[server]")
    model = part_files(MODELS["ci"])[0]
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--model_alias",
        "smol",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:  # poll readiness, never sleep blindly
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("llama_cpp.server did not become ready")
        time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def test_pipeline_answers_through_an_openai_compatible_server(
    server: str, tmp_path: Path, corpus: Path, analyzer
):
    settings = Settings(
        home=tmp_path / "home",
        llm={"backend": "openai", "base_url": server, "model": "smol", "max_tokens": 40},
    )
    d = Dari(settings)
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    d.ingest([corpus], "c")
    pieces: list[str] = []
    answer = d.ask("How long do customers have to request a refund?", "c", on_token=pieces.append)
    assert answer.outcome in (Outcome.ANSWERED, Outcome.ABSTAINED)
    if answer.outcome == Outcome.ANSWERED:
        assert len(pieces) > 1  # streamed, not one blob
        assert answer.citations
        assert answer.trace.completion_tokens > 0
    d.close()


def test_wrong_model_name_is_reported(server: str, tmp_path: Path):
    from dari.errors import BackendError
    from dari.generate.openai_compat import OpenAICompatGenerator
    from dari.types import GenerationParams

    gen = OpenAICompatGenerator(
        Settings(llm={"backend": "openai", "base_url": server, "model": "smol"}).llm
    )
    text = "".join(
        gen.stream([{"role": "user", "content": "Say hi."}], GenerationParams(max_tokens=8))
    )
    assert isinstance(text, str)
    bad = OpenAICompatGenerator(
        Settings(llm={"backend": "openai", "base_url": server + "/nope", "model": "x"}).llm
    )
    with pytest.raises(BackendError, match="404"):
        list(bad.stream([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=4)))

"""llama.cpp in process (llama-cpp-python): the embedded default generator."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from dari.config import LLMSettings
from dari.errors import BackendError, MissingExtra
from dari.types import GenerationParams


class LlamaCppGenerator:
    """Loads a GGUF once per process; consecutive prompts that share a prefix (the system message
    and demonstrations) reuse llama.cpp's KV cache, so only the new tokens are processed."""

    def __init__(self, model_path: Path, settings: LLMSettings, name: str = "") -> None:
        self._path = model_path
        self._s = settings
        self.name = name or model_path.stem
        self.last_usage: dict[str, int] = {}

    @cached_property
    def llm(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtra("llama-cpp-python", "llm") from exc
        threads = self._s.n_threads or max(1, os.cpu_count() or 1)
        try:
            with _quiet():
                return Llama(
                    model_path=str(self._path),
                    n_ctx=self._s.n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_batch=512,
                    verbose=False,
                    seed=self._s.seed,
                )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(
                f"llama.cpp could not load {self._path}: {exc}",
                "check that the file is a complete GGUF model (dari models fetch NAME)",
            ) from exc

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: Sequence[dict[str, str]], params: GenerationParams) -> Iterator[str]:
        self.last_usage = {}
        try:
            chunks = self.llm.create_chat_completion(
                messages=list(messages),
                stream=True,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
            )
            for chunk in chunks:
                delta = chunk["choices"][0].get("delta", {})
                piece = delta.get("content")
                if piece:
                    yield piece
        except ValueError as exc:  # e.g. prompt longer than the context window
            raise BackendError(
                f"llama.cpp rejected the prompt: {exc}",
                "lower retrieval.top_k or chunking.section_tokens, or raise llm.n_ctx",
            ) from exc
        self.last_usage = {
            "prompt_tokens": int(self.llm.n_tokens),  # tokens in context after the call
        }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """llama.cpp prints model-loading logs to fd 2 even with verbose=False; hide them."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)

"""llama.cpp in process (llama-cpp-python): the embedded default generator."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from dari.config import LLMSettings
from dari.errors import BackendError, MissingExtra
from dari.generate.models import sha256_file
from dari.types import GenerationParams


class LlamaCppGenerator:
    """Loads a GGUF once per process, with a LoRA adapter on it when given one; consecutive
    prompts that share a prefix (the system message and demonstrations) reuse llama.cpp's KV
    cache, so only the new tokens are processed."""

    def __init__(
        self,
        model_path: Path,
        settings: LLMSettings,
        name: str = "",
        cache_dir: Path | None = None,
        lora: Path | None = None,
    ) -> None:
        self._path = model_path
        self._lora = lora
        self._s = settings
        self.name = name or model_path.stem
        self.last_usage: dict[str, int] = {}
        self._cache_dir = cache_dir
        self._prefix_key = ""  # which fixed prefix the KV cache holds now
        self._prefix_head: list[int] = []  # its tokens, less the empty user turn's closing ones

    @cached_property
    def llm(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtra("llama-cpp-python", "llm") from exc
        threads = self._s.n_threads or max(1, os.cpu_count() or 1)
        try:
            with _quiet():
                llm = Llama(
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
        if self._lora is not None:
            _apply_lora(llm, self._lora)
        return llm

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self, messages: Sequence[dict[str, str]], params: GenerationParams, prefix: int = 0
    ) -> Iterator[str]:
        self.last_usage = {}
        if prefix:
            self._ensure_prefix(messages[:prefix])
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
        self.last_usage = {"context_tokens": int(self.llm.n_tokens)}

    # -- the fixed prefix in the KV cache, kept on disk across processes ------------------------
    def _ensure_prefix(self, fixed: Sequence[dict[str, str]]) -> None:
        """Make the KV cache start with the fixed messages (system + demonstrations): load their
        saved KV state, or evaluate them once and save it. llama-cpp-python then evaluates only
        the tokens after the longest common prefix of each prompt."""
        key = self._state_key(fixed)
        if key == self._prefix_key and self._holds(self._prefix_head):
            return
        path = self._cache_dir / f"{key}.kv" if self._cache_dir else None
        if path is not None and path.exists() and self._load_state(path):
            self._remember(key)
            return
        # An empty user turn after the fixed part: its opening tokens are shared with every
        # real question, so the saved state covers everything up to the question's text.
        self.llm.create_chat_completion(
            messages=[*fixed, {"role": "user", "content": ""}], max_tokens=1, temperature=0.0
        )
        self._remember(key)
        if path is not None:
            self._save_state(path)

    def _state_key(self, fixed: Sequence[dict[str, str]]) -> str:
        """Names the saved state of `fixed`: the model file, the adapter, the context size."""
        parts: list[object] = [self._path.name, self._path.stat().st_size, self._s.n_ctx]
        parts.append(list(fixed))
        if self._lora is not None:  # appended: a plain model keeps its saved states' keys
            parts.append(self._lora_sha256)
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]

    @cached_property
    def _lora_sha256(self) -> str:
        """The adapter changes every layer's keys and values: a state saved without it, or with
        another adapter (every tune run has an adapter.gguf of the same size), must never be
        loaded with it. So the key holds the adapter's content, not only its name and size."""
        return sha256_file(self._lora) if self._lora is not None else ""

    def _remember(self, key: str) -> None:
        self._prefix_key = key
        n = int(self.llm.n_tokens)
        self._prefix_head = self.llm.input_ids[: max(0, n - _TAIL)].tolist()

    def _holds(self, head: list[int]) -> bool:
        """Whether the KV cache still starts with these tokens (a reset or another prompt may
        have replaced them)."""
        n = len(head)
        return int(self.llm.n_tokens) >= n and self.llm.input_ids[:n].tolist() == head

    def _save_state(self, path: Path) -> None:
        import llama_cpp

        n = int(self.llm.n_tokens)
        tokens = (llama_cpp.llama_token * n)(*self.llm.input_ids[:n].tolist())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        if llama_cpp.llama_state_seq_save_file(self.llm._ctx.ctx, str(tmp).encode(), 0, tokens, n):
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)

    def _load_state(self, path: Path) -> bool:
        import llama_cpp

        capacity = self._s.n_ctx
        tokens = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        ok = llama_cpp.llama_state_seq_load_file(
            self.llm._ctx.ctx, str(path).encode(), 0, tokens, capacity, ctypes.byref(count)
        )
        n = int(count.value)
        if not ok or n == 0:
            path.unlink(missing_ok=True)  # stale or from another llama.cpp: rebuild it
            self.llm.reset()
            return False
        self.llm.input_ids[:n] = tokens[:n]
        self.llm.n_tokens = n
        return True


_TAIL = 12  # tokens of the empty user turn and generation prompt after the fixed messages


def _apply_lora(llm: Any, path: Path, scale: float = 1.0) -> None:
    """Load a LoRA adapter onto the loaded model, as `Llama(lora_path=...)` would. Done here
    because llama-cpp-python 0.3.36 tests the adapter it got against None while ctypes gives a
    NULL pointer: a file llama.cpp refuses is then applied anyway, and the first prompt crashes
    the process. llama.cpp's reason is in its log, read here at debug level."""
    import llama_cpp

    log = io.StringIO()
    with _quiet(), _llama_log(log):
        adapter = llama_cpp.llama_adapter_lora_init(llm._model.model, str(path).encode())
    if not adapter:
        llm.close()
        raise BackendError(
            f"llama.cpp could not load the LoRA adapter {path}: {_reason(log.getvalue())}",
            "the adapter must be a llama.cpp LoRA GGUF trained on this base model "
            "(the adapter.gguf of a `dari tune` run)",
        )
    llm._stack.callback(llama_cpp.llama_adapter_lora_free, adapter)
    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(scale)
    if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales):
        llm.close()
        raise BackendError(
            f"llama.cpp could not apply the LoRA adapter {path}", "re-run the tune that wrote it"
        )


@contextlib.contextmanager
def _llama_log(sink: io.StringIO) -> Iterator[None]:
    """llama.cpp's log lines into `sink` (llama-cpp-python logs its errors at debug level)."""
    logger = logging.getLogger("llama-cpp-python")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stderr(sink):
            yield
    finally:
        logger.setLevel(level)


def _reason(log: str) -> str:
    """What llama.cpp's log says went wrong: its error lines, less the function names."""
    words = ("fail", "invalid", "incorrect", "mismatch", "not ", "error", "unsupported")
    lines = [line.split(": ", 1)[-1].strip() for line in log.splitlines()]
    found = [line for line in lines if any(w in line.lower() for w in words)]
    return "; ".join(dict.fromkeys(found[-3:])) or "not a LoRA adapter for this model"


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

"""A cross-encoder reranker for users who bring their own weights: an ONNX export of a
sequence-classification model that reads (question, passage) pairs, such as the bge-reranker or
ms-marco MiniLM cross-encoders exported with Hugging Face Optimum.

The folder needs `model.onnx` and `tokenizer.json`. No weights ship with dari and nothing is
downloaded: point `retrieval.cross_encoder_model` at a folder you copied in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dari.errors import ConfigError, MissingExtra
from dari.types import Hit


class CrossEncoderReranker:
    name = "cross-encoder"

    def __init__(self, folder: str, max_length: int = 512, batch_size: int = 16) -> None:
        self._folder = Path(folder).expanduser() if folder else None
        self._max_length = max_length
        self._batch = batch_size

    @cached_property
    def _parts(self) -> tuple[Any, Any, set[str]]:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingExtra("onnxruntime", "crossencoder") from exc
        hint = (
            "set retrieval.cross_encoder_model to a folder with model.onnx and tokenizer.json "
            "(an ONNX export of a cross-encoder)"
        )
        if self._folder is None:
            raise ConfigError("no cross-encoder model configured", hint)
        for name in ("model.onnx", "tokenizer.json"):
            if not (self._folder / name).is_file():
                raise ConfigError(f"cross-encoder file missing: {self._folder / name}", hint)
        tokenizer = Tokenizer.from_file(str(self._folder / "tokenizer.json"))
        tokenizer.enable_truncation(self._max_length)
        tokenizer.enable_padding()
        try:
            session = onnxruntime.InferenceSession(
                str(self._folder / "model.onnx"), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(f"cannot load {self._folder / 'model.onnx'}: {exc}", hint) from exc
        return tokenizer, session, {i.name for i in session.get_inputs()}

    def scores(self, query: str, hits: Sequence[Hit]) -> np.ndarray:
        tokenizer, session, inputs = self._parts
        out: list[np.ndarray] = []
        for i in range(0, len(hits), self._batch):
            part = hits[i : i + self._batch]
            enc = tokenizer.encode_batch([(query, h.child_text or h.text) for h in part])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            logits = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]
            logits = np.asarray(logits, dtype=np.float64).reshape(len(part), -1)
            out.append(logits[:, -1])  # one relevance logit, or the "relevant" class of two
        return np.concatenate(out) if out else np.zeros(0)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        order = np.argsort(-self.scores(query, hits), kind="stable")
        return [hits[i] for i in order]

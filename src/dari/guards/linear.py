"""A trained linear text classifier over hashed n-grams: load, score, save (numpy only).

The file is an `.npz` with int8 weights and uint8 idf (quantised: a few hundred KB, committed with
the package) and a JSON card beside it that says what it was trained on, its per-language decision
thresholds (chosen on training data for a target false-positive rate) and its measured figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dari.errors import ConfigError
from dari.guards import features

_IDF_STEP = 0.05  # idf is stored as uint8 in steps of 0.05 (0–12.75)


@dataclass(frozen=True)
class LinearModel:
    weights: np.ndarray  # float32[DIM]
    idf: np.ndarray  # float32[DIM]
    bias: float
    thresholds: dict[str, float]  # lang → decision value above which a text is flagged
    card: dict[str, Any] = field(default_factory=dict)
    # Optional: weights over a sentence embedding of the text (the embedder named in the card),
    # learnt jointly with the n-gram weights.
    embedding_weights: np.ndarray | None = None

    @property
    def embedder(self) -> str:
        return str(self.card.get("embedder", "")) if self.embedding_weights is not None else ""

    def decision(self, text: str, embedding: np.ndarray | None = None) -> float:
        ids, val = features.vector(text, self.idf)
        out = float(val @ self.weights[ids]) + self.bias
        if self.embedding_weights is not None:
            if embedding is None:
                raise ValueError(f"this model also reads a {self.embedder} embedding of the text")
            out += float(np.asarray(embedding, dtype=np.float32) @ self.embedding_weights)
        return out

    @staticmethod
    def probability(decision: float) -> float:
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, decision))))

    def threshold(self, lang: str) -> float:
        return self.thresholds.get(lang, self.thresholds.get("default", 0.0))

    def save(self, path: Path) -> None:
        scale = float(np.abs(self.weights).max() / 127) or 1.0
        arrays = {
            "w": np.round(self.weights / scale).astype(np.int8),
            "scale": np.float32(scale),
            "idf": np.clip(np.round(self.idf / _IDF_STEP), 0, 255).astype(np.uint8),
            "bias": np.float32(self.bias),
        }
        if self.embedding_weights is not None:
            arrays["emb"] = self.embedding_weights.astype(np.float32)
        np.savez_compressed(path.with_suffix(".npz"), **arrays)  # type: ignore[arg-type]
        card = self.card | {"thresholds": self.thresholds, "bits": features.BITS}
        path.with_suffix(".json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        npz, card_path = path.with_suffix(".npz"), path.with_suffix(".json")
        if not npz.is_file() or not card_path.is_file():
            raise ConfigError(
                f"the guard model {npz} (or its card {card_path.name}) is missing",
                "retrain it with `dari guard train` or reinstall dari",
            )
        card = json.loads(card_path.read_text(encoding="utf-8"))
        if card.get("bits") != features.BITS:
            raise ConfigError(
                f"the guard model {npz.name} was trained with {card.get('bits')}-bit features, "
                f"this dari hashes into {features.BITS} bits",
                "retrain it with `dari guard train`",
            )
        with np.load(npz) as z:
            weights = z["w"].astype(np.float32) * float(z["scale"])
            idf = z["idf"].astype(np.float32) * _IDF_STEP
            bias = float(z["bias"])
            emb = z["emb"].astype(np.float32) if "emb" in z.files else None
        return cls(weights, idf, bias, dict(card.pop("thresholds")), card, emb)

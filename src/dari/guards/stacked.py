"""A small neural head over the question's sentence embedding and the n-gram model's score.

The linear n-gram + embedding model cannot combine the two signals non-linearly; this head can
(measured on the English test split: TPR at 1 % FPR 0.57 → see the model card). Inference is a
two-layer ReLU network in numpy; the weights are trained by `dari guard train` (scikit-learn's
MLPClassifier) and stored beside the other guard models. The shipped model is the mean of the
networks trained on each cross-validation fold, so its scores are on the scale of the
out-of-fold ones its threshold was chosen on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dari.errors import ConfigError
from dari.guards.linear import LinearModel

EMBED_SCALE = 10.0  # unit-length embeddings have tiny components; scaled for the network
NGRAM_SCALE = 4.0  # the n-gram decision enters as tanh(decision / 4)


def forward(layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """The network's output logits for inputs `x` (ReLU between layers, none after the last)."""
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h.reshape(-1)


Net = tuple[tuple[np.ndarray, np.ndarray], ...]  # (weights, bias) per layer, last = output


@dataclass(frozen=True)
class StackedModel:
    ngram: LinearModel
    nets: tuple[Net, ...]  # the decision is the mean of their output logits
    thresholds: dict[str, float]
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def embedder(self) -> str:
        return str(self.card.get("embedder", ""))

    @staticmethod
    def inputs(embedding: np.ndarray, ngram_decision: float) -> np.ndarray:
        x = np.asarray(embedding, dtype=np.float32) * EMBED_SCALE
        return np.append(x, np.float32(math.tanh(ngram_decision / NGRAM_SCALE)))

    def decision(self, text: str, embedding: np.ndarray | None = None) -> float:
        if embedding is None:
            raise ValueError(f"this model reads a {self.embedder} embedding of the text")
        x = self.inputs(embedding, self.ngram.decision(text))
        return float(np.mean([forward(net, x)[0] for net in self.nets]))

    def threshold(self, lang: str) -> float:
        return self.thresholds.get(lang, self.thresholds.get("default", 0.0))

    def save(self, path: Path) -> None:
        arrays = {}
        for k, net in enumerate(self.nets):
            for i, (w, b) in enumerate(net):
                arrays[f"n{k}w{i}"], arrays[f"n{k}b{i}"] = (
                    w.astype(np.float32),
                    b.astype(np.float32),
                )
        np.savez_compressed(path.with_suffix(".npz"), **arrays)  # type: ignore[arg-type]
        card = self.card | {
            "thresholds": self.thresholds,
            "layers": len(self.nets[0]),
            "nets": len(self.nets),
        }
        path.with_suffix(".json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path, ngram: LinearModel) -> StackedModel:
        npz, card_path = path.with_suffix(".npz"), path.with_suffix(".json")
        if not npz.is_file() or not card_path.is_file():
            raise ConfigError(f"the guard model {npz} is missing", "run `dari guard train`")
        card = json.loads(card_path.read_text(encoding="utf-8"))
        depth = int(card["layers"])
        nets: tuple[Net, ...]
        with np.load(npz) as z:
            if "nets" not in card:  # one network, as `dari guard train` wrote before ensembles
                nets = (tuple((z[f"w{i}"], z[f"b{i}"]) for i in range(depth)),)
            else:
                nets = tuple(
                    tuple((z[f"n{k}w{i}"], z[f"n{k}b{i}"]) for i in range(depth))
                    for k in range(int(card["nets"]))
                )
        return cls(ngram, nets, dict(card.pop("thresholds")), card)

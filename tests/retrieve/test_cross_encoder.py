"""The cross-encoder adapter, run by onnxruntime on a tiny model built here: a word-level
tokenizer and a graph that scores a pair by the learned weight of its passage tokens. Real
cross-encoders have the same inputs and output; their weights are the user's to bring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dari.errors import ConfigError
from dari.retrieve.cross_encoder import CrossEncoderReranker
from dari.types import Hit

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "refund", "days", "garage", "opens", "the"]


def _model(folder: Path, relevant: str = "refund") -> Path:
    import onnx
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder.mkdir()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.save(str(folder / "tokenizer.json"))
    weights = np.zeros((len(VOCAB), 1), dtype=np.float32)
    weights[VOCAB.index(relevant)] = 1.0
    # logits[b] = Σ_t weight[input_ids[b, t]] · token_type_ids[b, t]: passage tokens only.
    nodes = [
        helper.make_node("Gather", ["w", "input_ids"], ["g"]),  # [B, T, 1]
        helper.make_node("Squeeze", ["g", "axis2"], ["s"]),  # [B, T]
        helper.make_node("Cast", ["token_type_ids"], ["tt"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["s", "tt"], ["m"]),
        helper.make_node("ReduceSum", ["m", "axis1"], ["logits"], keepdims=1),  # [B, 1]
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-cross-encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "T"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["B", "T"]),
            helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["B", "T"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 1])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.ravel()),
            helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    return folder


def hit(i: int, text: str) -> Hit:
    return Hit(f"c{i}", f"s{i}", "d", 1.0 / (i + 1), text, "s.md", "T", child_text=text)


POOL = [hit(0, "the garage opens"), hit(1, "refund refund days"), hit(2, "refund days")]


def test_ranks_by_the_models_score_of_each_pair(tmp_path: Path):
    ce = CrossEncoderReranker(str(_model(tmp_path / "ce")), batch_size=2)
    assert ce.scores("refund", POOL).tolist() == [0.0, 2.0, 1.0]  # batches of 2, then 1
    assert [h.chunk_id for h in ce.rerank("refund", POOL, 2)] == ["c1", "c2", "c0"]
    # The question's own tokens (type 0) do not count: only the passage is scored.
    assert ce.scores("refund refund refund", [hit(3, "garage")]).tolist() == [0.0]


def test_missing_or_broken_model_folders_say_what_to_do(tmp_path: Path):
    with pytest.raises(ConfigError, match="no cross-encoder model configured"):
        CrossEncoderReranker("").rerank("q", POOL, 2)
    with pytest.raises(ConfigError, match=r"model\.onnx") as err:
        CrossEncoderReranker(str(tmp_path)).rerank("q", POOL, 2)
    assert "retrieval.cross_encoder_model" in err.value.hint
    folder = _model(tmp_path / "broken")
    (folder / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot load"):
        CrossEncoderReranker(str(folder)).rerank("q", POOL, 2)

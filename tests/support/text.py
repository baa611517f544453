"""Small text packages built in code: a word-level tokenizer and an embedding model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from maaskit.registry.catalog import Registry
from tests.support.models import _finish

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = ["hello", "world", "good", "bad", "movie", "great", "awful", "the", "a", "is"]


def tokenizer_json(words: Sequence[str] = WORDS) -> str:
    """A BERT-like word-level tokenizer: ``[CLS] words [SEP]``, unknown words as ``[UNK]``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate([*SPECIALS, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return str(tokenizer.to_str())


def vocab_size(words: Sequence[str] = WORDS) -> int:
    return len(SPECIALS) + len(words)


def table(rows: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)


def embedding_model(
    rows: int, dim: int = 4, *, token_types: bool = False, seed: int = 0
) -> tuple[bytes, np.ndarray]:
    """``last_hidden_state = E[input_ids] * attention_mask`` (rank 3), and E.

    With ``token_types`` the model also takes ``token_type_ids`` (added as ``T[type]``, T = 0).
    """
    weights = table(rows, dim, seed)
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["tokens"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask3"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
    ]
    initializers = [
        numpy_helper.from_array(weights, "E"),
        numpy_helper.from_array(np.array([2], np.int64), "last_axis"),
    ]
    if token_types:
        nodes += [
            helper.make_node("Gather", ["T", "token_type_ids"], ["types"]),
            helper.make_node("Add", ["tokens", "types"], ["summed"]),
            helper.make_node("Mul", ["summed", "mask3"], ["last_hidden_state"]),
        ]
        inputs.append(
            helper.make_tensor_value_info(
                "token_type_ids", TensorProto.INT64, ["batch", "sequence"]
            )
        )
        initializers.append(numpy_helper.from_array(np.zeros((2, dim), np.float32), "T"))
    else:
        nodes.append(helper.make_node("Mul", ["tokens", "mask3"], ["last_hidden_state"]))
    graph = helper.make_graph(
        nodes,
        "embedding",
        inputs,
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim]
            )
        ],
        initializer=initializers,
    )
    return _finish(graph), weights


def classifier_model(
    rows: int, classes: int = 3, dim: int = 4, seed: int = 0
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``logits = mean_over_tokens(E[input_ids]) @ W``: returns the file, E and W."""
    weights = table(rows, dim, seed)
    head = np.random.default_rng(seed + 1).normal(size=(dim, classes)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["E", "input_ids"], ["tokens"]),
            helper.make_node("ReduceMean", ["tokens"], ["pooled"], axes=[1], keepdims=0),
            helper.make_node("MatMul", ["pooled", "W"], ["logits"]),
        ],
        "classifier",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=[
            numpy_helper.from_array(weights, "E"),
            numpy_helper.from_array(head, "W"),
        ],
    )
    return _finish(graph), weights, head


def embedding_processing(max_length: int = 8, **output: object) -> dict[str, object]:
    return {
        "input": {
            "tokenizer": "tokenizer.json",
            "max_length": max_length,
            "feeds": {"input_ids": "input_ids", "attention_mask": "attention_mask"},
        },
        "output": {"kind": "embedding", "from": "last_hidden_state", "pooling": "mean", **output},
    }


def classification_processing(labels: Sequence[str]) -> dict[str, object]:
    return {
        "input": {"tokenizer": "tokenizer.json", "feeds": {"input_ids": "input_ids"}},
        "output": {"kind": "classification", "from": "logits", "labels": list(labels)},
    }


def files() -> dict[str, bytes]:
    return {"tokenizer.json": tokenizer_json().encode()}


LABELS = ["negative", "neutral", "positive"]


def publish_words(registry: Registry) -> np.ndarray:
    """ "words": an embedding package (max 5 tokens) over the small vocabulary; its table."""
    model, weights = embedding_model(vocab_size())
    registry.publish("words", model, files=files(), processing=embedding_processing(max_length=5))
    return weights


def publish_sentiment(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    """ "sentiment": a three-class classifier package; its table and head."""
    model, weights, head = classifier_model(vocab_size(), classes=len(LABELS))
    registry.publish(
        "sentiment", model, files=files(), processing=classification_processing(LABELS)
    )
    return weights, head

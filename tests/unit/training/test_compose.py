"""Encoder + pooling + head as one ONNX graph, against the numpy path on the same texts."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from maaskit.errors import IntegrityError, InvalidModel
from maaskit.training.compose import Pooling, check_composed_parity, compose_classifier
from maaskit.training.datasets import Table
from maaskit.training.export import export_onnx
from maaskit.training.weights import ModelWeights
from tests.support.models import token_encoder

from .helpers import initial_params, make_spec, trainer_for

DIM = 6


def reference_pool(
    hidden: np.ndarray, mask: np.ndarray, pooling: str, normalize: bool
) -> np.ndarray:
    if pooling == "mean":
        weights = mask.astype(np.float64)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
    else:
        pooled = hidden[:, 0, :].astype(np.float64)
    if normalize:
        pooled = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled, dtype=np.float64)


def feeds(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 30, size=(12, 7))
    lengths = rng.integers(2, 8, size=12)
    mask = (np.arange(7)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def encoder_states(table: np.ndarray, inputs: dict[str, np.ndarray]) -> np.ndarray:
    shift = (inputs["attention_mask"] + inputs["token_type_ids"]).astype(np.float32)
    return np.asarray(table[inputs["input_ids"]] - shift[:, :, None], dtype=np.float32)


def head(embeddings: np.ndarray, labels: np.ndarray, **spec: object) -> ModelWeights:
    table = Table(embeddings, labels, tuple(f"embedding{i}" for i in range(DIM)))
    trainer, data = trainer_for(table, make_spec(**spec))
    state = trainer.start(initial_params(trainer))
    trainer.run(state, data.train)
    return ModelWeights(
        architecture=trainer.architecture,
        params=state.params,
        x_scaler=data.x_scaler,
        feature_names=data.feature_names,
        classes=data.classes,
    )


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("mean", False), ("cls", True)])
@pytest.mark.parametrize("architecture", [{"type": "softmax"}, {"type": "mlp", "hidden": [5]}])
def test_composed_graph_equals_encoder_embeddings_through_the_numpy_head(
    pooling: str, normalize: bool, architecture: dict[str, object]
) -> None:
    # Given an encoder, and a head trained on its pooled embeddings of 120 "texts"
    encoder, table = token_encoder(dim=DIM)
    train = feeds(seed=7)
    rng = np.random.default_rng(0)
    embeddings = reference_pool(
        encoder_states(table, train), train["attention_mask"], pooling, normalize
    )
    embeddings = np.repeat(embeddings, 10, axis=0) + rng.normal(scale=0.01, size=(120, DIM))
    labels = np.array(["ham", "eggs", "spam"])[embeddings[:, 0].argsort().argsort() * 3 // 120]
    weights = head(embeddings, labels, architecture=architecture, epochs=5)
    # When encoder, pooling and head are composed into one graph
    model = compose_classifier(
        encoder,
        Pooling("last_hidden_state", pooling, normalize, "attention_mask"),
        export_onnx(weights),
    )
    # Then it takes the encoder's inputs and gives the head's outputs
    graph = onnx.load_from_string(model).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["probabilities", "label"]
    # And on new texts it agrees with the encoder's embeddings through the numpy head
    texts = feeds(seed=2)
    expected = weights.predict(
        reference_pool(encoder_states(table, texts), texts["attention_mask"], pooling, normalize)
    )
    report = check_composed_parity(model, texts, expected, weights.classes)  # type: ignore[arg-type]
    assert report.rows == 12
    assert report.max_abs_diff <= 1e-5


def test_parity_check_refuses_a_graph_that_pools_wrongly() -> None:
    # Given a head composed with mean pooling, checked against CLS-pooled embeddings
    encoder, table = token_encoder(dim=DIM)
    train = feeds(seed=7)
    embeddings = reference_pool(encoder_states(table, train), train["attention_mask"], "mean", True)
    weights = head(np.repeat(embeddings, 10, axis=0), np.arange(120) % 3 * 1.0, epochs=3)
    model = compose_classifier(
        encoder, Pooling("last_hidden_state", "mean", True, "attention_mask"), export_onnx(weights)
    )
    texts = feeds(seed=2)
    wrong = weights.predict(
        reference_pool(encoder_states(table, texts), texts["attention_mask"], "cls", True)
    )
    # When it is checked, Then it is refused: nothing would be published
    with pytest.raises(IntegrityError, match="disagrees"):
        check_composed_parity(model, texts, wrong, weights.classes)  # type: ignore[arg-type]


def test_an_encoder_without_the_declared_output_or_mask_is_refused() -> None:
    encoder, table = token_encoder(dim=DIM)
    train = feeds(seed=7)
    embeddings = reference_pool(encoder_states(table, train), train["attention_mask"], "mean", True)
    head_bytes = export_onnx(
        head(np.repeat(embeddings, 10, axis=0), np.arange(120) % 3 * 1.0, epochs=1)
    )
    with pytest.raises(InvalidModel, match="no output 'pooled'"):
        compose_classifier(encoder, Pooling("pooled", "mean", True, "attention_mask"), head_bytes)
    with pytest.raises(InvalidModel, match="attention mask"):
        compose_classifier(encoder, Pooling("last_hidden_state", "mean", True, "mask"), head_bytes)

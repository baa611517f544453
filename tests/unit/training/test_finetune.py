from __future__ import annotations

import numpy as np
import pytest

from maaskit.errors import InvalidRequest
from maaskit.training.finetune import from_base
from maaskit.training.network import Architecture
from maaskit.training.scaling import Standardizer
from maaskit.training.weights import ModelWeights

FEATURES = ("a", "b", "c")


def base_weights(layer_sizes=(3, 5, 2), activation="relu", classes=(0, 1)) -> ModelWeights:
    architecture = Architecture("mlp", layer_sizes, activation, "classification")
    return ModelWeights(
        architecture=architecture,
        params=np.random.default_rng(9).normal(size=architecture.parameter_count),
        x_scaler=Standardizer.identity(3),
        feature_names=FEATURES,
        classes=np.array(classes),
    )


def finetune(base: ModelWeights, architecture: Architecture, classes, freeze=()):
    return from_base(
        architecture,
        base,
        base_label="'base' version 1",
        feature_names=FEATURES,
        classes=np.array(classes),
        freeze=freeze,
        seed=0,
    )


def test_same_classes_reuse_every_layer() -> None:
    base = base_weights()
    initial = finetune(base, base.architecture, [0, 1])
    assert not initial.new_output_layer
    assert initial.params.tobytes() == base.params.tobytes()


def test_different_classes_get_a_new_output_layer_and_keep_the_body() -> None:
    # Given a base with 2 classes, fine-tuned for 3
    base = base_weights()
    architecture = Architecture("mlp", (3, 5, 3), "relu", "classification")
    initial = finetune(base, architecture, [0, 1, 2])
    # Then the hidden layer is the base's and the output layer is fresh
    assert initial.new_output_layer
    for ours, theirs in zip(
        architecture.layer_slices(0), base.architecture.layer_slices(0), strict=True
    ):
        assert initial.params[ours].tobytes() == base.params[theirs].tobytes()
    w_out, _ = architecture.layer_slices(1)
    assert initial.params[w_out].shape == (15,)


def test_same_count_but_other_class_names_is_still_a_new_output_layer() -> None:
    base = base_weights()
    assert finetune(base, base.architecture, [3, 4]).new_output_layer


@pytest.mark.parametrize(
    "architecture",
    [
        Architecture("mlp", (3, 6, 2), "relu", "classification"),  # other hidden size
        Architecture("mlp", (3, 5, 2), "tanh", "classification"),  # other activation
        Architecture("mlp", (3, 5, 5, 2), "relu", "classification"),  # deeper
        Architecture("softmax", (3, 2), "relu", "classification"),  # other kind
    ],
)
def test_a_base_of_another_architecture_is_refused(architecture: Architecture) -> None:
    with pytest.raises(InvalidRequest, match="needs the same architecture"):
        finetune(base_weights(), architecture, [0, 1])


def test_a_base_trained_on_other_features_is_refused() -> None:
    base = base_weights()
    with pytest.raises(InvalidRequest, match="needs the same features"):
        from_base(
            base.architecture, base, base_label="b", feature_names=("x", "y", "z"),
            classes=np.array([0, 1]), freeze=(), seed=0,
        )  # fmt: skip


def test_the_new_output_layer_cannot_be_frozen() -> None:
    architecture = Architecture("mlp", (3, 5, 3), "relu", "classification")
    with pytest.raises(InvalidRequest, match="cannot freeze layer 1"):
        finetune(base_weights(), architecture, [0, 1, 2], freeze=(1,))

from __future__ import annotations

import numpy as np
import pytest

from maaskit.training.losses import mean_squared_error, softmax_cross_entropy
from maaskit.training.network import Architecture, Backprop, forward, init_params, layer_views


def batch_loss(architecture: Architecture, params: np.ndarray, x: np.ndarray, y: np.ndarray):
    out = forward(architecture, params, x)
    if architecture.task == "classification":
        return float(-np.log(out[np.arange(len(y)), y]).mean())
    return float(np.mean((out - y) ** 2))


def numeric_gradient(
    architecture: Architecture, params: np.ndarray, x: np.ndarray, y: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    grad = np.zeros_like(params)
    for i in range(params.size):
        up, down = params.copy(), params.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (batch_loss(architecture, up, x, y) - batch_loss(architecture, down, x, y)) / (
            2 * eps
        )
    return grad


ARCHITECTURES = [
    Architecture("mlp", (4, 5, 3), "relu", "classification"),
    Architecture("mlp", (4, 6, 5, 3), "tanh", "classification"),
    Architecture("softmax", (4, 2), "relu", "classification"),
    Architecture("linear", (4, 1), "relu", "regression"),
    Architecture("mlp", (4, 5, 1), "tanh", "regression"),
]


@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=lambda a: f"{a.kind}{a.layer_sizes}")
def test_backprop_gradient_matches_central_differences(architecture: Architecture) -> None:
    # Given random parameters and a batch
    rng = np.random.default_rng(0)
    params = init_params(architecture, rng)
    params += rng.normal(scale=0.1, size=params.size)  # non-zero biases too
    x = rng.normal(size=(7, architecture.n_features))
    y: np.ndarray = (
        rng.integers(0, architecture.n_outputs, size=7)
        if architecture.task == "classification"
        else rng.normal(size=(7, 1))
    )
    # When the analytic gradient is computed in preallocated buffers (batch of 10 max)
    grad = np.zeros_like(params)
    loss = Backprop(architecture, params, grad, max_batch=10).loss_and_gradient(x, y)
    # Then loss and gradient agree with the forward pass and finite differences
    assert loss == pytest.approx(batch_loss(architecture, params, x, y), rel=1e-12)
    np.testing.assert_allclose(
        grad, numeric_gradient(architecture, params, x, y), rtol=1e-5, atol=1e-8
    )


def test_parameters_are_one_flat_vector_weights_first() -> None:
    architecture = Architecture("mlp", (3, 4, 2), "relu", "classification")
    flat = np.arange(architecture.parameter_count, dtype=np.float64)
    weights, biases = layer_views(architecture, flat)
    assert [w.shape for w in weights] == [(3, 4), (4, 2)]
    assert weights[0][0, 0] == 0.0
    assert biases[0][0] == architecture.weight_count
    weights[1][...] = -1.0  # views write through
    assert (flat[12:20] == -1.0).all()


def test_softmax_cross_entropy_leaves_its_gradient_in_place() -> None:
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = softmax_cross_entropy(z, labels)
    assert loss == pytest.approx(-np.log(p[[0, 1], [2, 0]]).mean())
    expected = p.copy()
    expected[[0, 1], [2, 0]] -= 1
    np.testing.assert_allclose(z, expected / 2)


def test_mean_squared_error_and_its_gradient() -> None:
    z = np.array([[1.0], [3.0]])
    loss = mean_squared_error(z, np.array([[0.0], [1.0]]))
    assert loss == pytest.approx((1 + 4) / 2)
    np.testing.assert_allclose(z, [[1.0], [2.0]])  # 2 (z - y) / 2

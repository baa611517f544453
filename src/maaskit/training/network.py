"""Dense networks in numpy: linear, softmax (logistic) regression and MLPs are one family.

All parameters live in one flat float64 vector, weights first then biases, so optimizers,
weight decay, averaging and checkpoints are a handful of vector operations, and each
layer's ``W``/``b`` are views into it. Training reuses buffers sized for one batch:
the step loop allocates almost nothing, which is where the speed comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from maaskit.training.losses import mean_squared_error, softmax_cross_entropy
from maaskit.training.spec import Activation, ArchitectureType, Task

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Architecture:
    kind: ArchitectureType
    layer_sizes: tuple[int, ...]  # (features, hidden..., outputs)
    activation: Activation
    task: Task

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    @property
    def n_features(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def hidden(self) -> tuple[int, ...]:
        return self.layer_sizes[1:-1]

    def weight_shapes(self) -> list[tuple[int, int]]:
        return list(zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True))

    @property
    def weight_count(self) -> int:
        return sum(a * b for a, b in self.weight_shapes())

    @property
    def parameter_count(self) -> int:
        return self.weight_count + sum(self.layer_sizes[1:])

    def layer_slices(self, layer: int) -> tuple[slice, slice]:
        """Where layer ``layer``'s weights and biases sit in the flat vector."""
        shapes = self.weight_shapes()
        w_start = sum(a * b for a, b in shapes[:layer])
        b_start = self.weight_count + sum(self.layer_sizes[1 : layer + 1])
        fan_in, fan_out = shapes[layer]
        return slice(w_start, w_start + fan_in * fan_out), slice(b_start, b_start + fan_out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "layer_sizes": list(self.layer_sizes),
            "activation": self.activation,
            "task": self.task,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(
            kind=cast(ArchitectureType, data["kind"]),
            layer_sizes=tuple(int(s) for s in data["layer_sizes"]),
            activation=cast(Activation, data["activation"]),
            task=cast(Task, data["task"]),
        )


def layer_views(
    architecture: Architecture, flat: FloatArray
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Per-layer ``W`` ([in, out]) and ``b`` ([out]) as views into ``flat``."""
    weights, biases = [], []
    for layer, (fan_in, fan_out) in enumerate(architecture.weight_shapes()):
        w_slice, b_slice = architecture.layer_slices(layer)
        weights.append(flat[w_slice].reshape(fan_in, fan_out))
        biases.append(flat[b_slice])
    return weights, biases


def init_params(architecture: Architecture, rng: np.random.Generator) -> FloatArray:
    """Glorot-uniform weights, zero biases."""
    flat = np.zeros(architecture.parameter_count)
    weights, _ = layer_views(architecture, flat)
    for w in weights:
        fan_in, fan_out = w.shape
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        w[...] = rng.uniform(-bound, bound, size=w.shape)
    return flat


def forward(architecture: Architecture, params: FloatArray, x: FloatArray) -> FloatArray:
    """Model outputs for standardised ``x``: class probabilities, or standardised targets."""
    weights, biases = layer_views(architecture, params)
    a = x
    last = architecture.n_layers - 1
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        a = a @ w + b
        if layer < last:
            a = np.maximum(a, 0.0) if architecture.activation == "relu" else np.tanh(a)
    if architecture.task == "classification":
        a = a - a.max(axis=1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
    return a


class Backprop:
    """Loss and gradient of one mini-batch, written into preallocated buffers.

    ``params`` and ``grad`` are the flat vectors the optimizer updates in place; this
    object holds views into them, so it stays valid for as long as those vectors live.
    """

    def __init__(
        self,
        architecture: Architecture,
        params: FloatArray,
        grad: FloatArray,
        max_batch: int,
    ) -> None:
        self.architecture = architecture
        self.weights, self.biases = layer_views(architecture, params)
        self.grad_weights, self.grad_biases = layer_views(architecture, grad)
        sizes = architecture.layer_sizes
        self._acts = [np.empty((max_batch, size)) for size in sizes[1:]]
        self._deltas = [np.empty((max_batch, size)) for size in sizes[1:-1]]
        self._scratch = [np.empty((max_batch, size)) for size in sizes[1:-1]]
        self._relu = architecture.activation == "relu"
        self._classify = architecture.task == "classification"

    def loss_and_gradient(self, x: FloatArray, y: npt.NDArray[Any]) -> float:
        """Mean loss over the batch; the gradient of that mean lands in ``grad``."""
        m = x.shape[0]
        last = self.architecture.n_layers - 1
        inputs = [x]
        a = x
        for layer in range(last + 1):
            z = self._acts[layer][:m]
            np.matmul(a, self.weights[layer], out=z)
            z += self.biases[layer]
            if layer < last:
                if self._relu:
                    np.maximum(z, 0.0, out=z)
                else:
                    np.tanh(z, out=z)
                inputs.append(z)
            a = z
        # ``a`` (the output buffer) becomes dLoss/dOutput.
        loss = softmax_cross_entropy(a, y) if self._classify else mean_squared_error(a, y)
        delta = a
        for layer in range(last, -1, -1):
            below = inputs[layer]
            np.matmul(below.T, delta, out=self.grad_weights[layer])
            np.sum(delta, axis=0, out=self.grad_biases[layer])
            if layer == 0:
                break
            back = self._deltas[layer - 1][:m]
            np.matmul(delta, self.weights[layer].T, out=back)
            if self._relu:
                back *= below > 0.0
            else:
                slope = self._scratch[layer - 1][:m]
                np.multiply(below, below, out=slope)
                np.subtract(1.0, slope, out=slope)
                back *= slope
            delta = back
        return loss

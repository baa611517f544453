"""Losses that overwrite the output buffer with their gradient, to spare an allocation a step.

Both return the mean loss over the batch and leave d(mean loss)/d(output) in ``z``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LOG_FLOOR = 1e-300  # log(0) is -inf; a floor keeps the loss finite and the gradient exact


def softmax_cross_entropy(z: FloatArray, labels: npt.NDArray[Any]) -> float:
    """Cross-entropy of softmax(``z``) against integer ``labels``.

    The gradient of softmax followed by cross-entropy is ``(p - onehot(y)) / m``.
    """
    m = int(z.shape[0])
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    rows = np.arange(m)
    picked: FloatArray = z[rows, labels]
    loss = -float(np.log(np.maximum(picked, LOG_FLOOR)).sum()) / m
    z[rows, labels] = picked - 1.0
    z *= 1.0 / m
    return loss


def mean_squared_error(z: FloatArray, targets: FloatArray) -> float:
    """Mean of squared errors over rows and outputs: the gradient is ``2 (z - y) / (m k)``."""
    np.subtract(z, targets, out=z)
    loss = float(np.vdot(z, z)) / z.size
    z *= 2.0 / z.size
    return loss

"""SGD, momentum and Adam over the flat parameter vector, updating in place.

The optimizer objects hold only scratch space; their state (``slots``) belongs to the
training state so that a checkpoint, a resume and model averaging all see it.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from maaskit.training.spec import OptimizerSpec

FloatArray = npt.NDArray[np.float64]
Slots = dict[str, FloatArray]


class Optimizer(Protocol):
    slot_names: tuple[str, ...]

    def step(self, params: FloatArray, grad: FloatArray, slots: Slots, lr: float, t: int) -> None:
        """Apply update number ``t`` (1-based) with learning rate ``lr``."""


def new_slots(optimizer: Optimizer, size: int) -> Slots:
    return {name: np.zeros(size) for name in optimizer.slot_names}


class SGD:
    slot_names: tuple[str, ...] = ()

    def __init__(self, size: int) -> None:
        self._tmp = np.empty(size)

    def step(self, params: FloatArray, grad: FloatArray, slots: Slots, lr: float, t: int) -> None:
        np.multiply(grad, lr, out=self._tmp)
        params -= self._tmp


class Momentum:
    """Heavy-ball momentum: ``v = mu v - lr g; p += v``."""

    slot_names: tuple[str, ...] = ("velocity",)

    def __init__(self, size: int, momentum: float) -> None:
        self.momentum = momentum
        self._tmp = np.empty(size)

    def step(self, params: FloatArray, grad: FloatArray, slots: Slots, lr: float, t: int) -> None:
        velocity = slots["velocity"]
        velocity *= self.momentum
        np.multiply(grad, lr, out=self._tmp)
        velocity -= self._tmp
        params += velocity


class Adam:
    """Adam (Kingma and Ba), with the bias correction folded into the step size."""

    slot_names: tuple[str, ...] = ("m", "v")

    def __init__(self, size: int, beta1: float, beta2: float, epsilon: float) -> None:
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self._tmp = np.empty(size)

    def step(self, params: FloatArray, grad: FloatArray, slots: Slots, lr: float, t: int) -> None:
        m, v, tmp = slots["m"], slots["v"], self._tmp
        m *= self.beta1
        np.multiply(grad, 1.0 - self.beta1, out=tmp)
        m += tmp
        v *= self.beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - self.beta2
        v += tmp
        step_size = lr * math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        params -= tmp


def make_optimizer(spec: OptimizerSpec, size: int) -> Optimizer:
    if spec.type == "sgd":
        return SGD(size)
    if spec.type == "momentum":
        return Momentum(size, spec.momentum)
    return Adam(size, spec.beta1, spec.beta2, spec.epsilon)

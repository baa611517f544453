from __future__ import annotations

import math

import numpy as np
import pytest

from maaskit.training.optimizers import make_optimizer, new_slots
from maaskit.training.schedules import learning_rate
from maaskit.training.spec import OptimizerSpec, ScheduleSpec


def run(spec: OptimizerSpec, grads: list[np.ndarray], start: np.ndarray) -> np.ndarray:
    optimizer = make_optimizer(spec, start.size)
    params, slots = start.copy(), new_slots(optimizer, start.size)
    for t, grad in enumerate(grads, start=1):
        optimizer.step(params, grad, slots, spec.learning_rate, t)
    return params


GRADS = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]
START = np.array([0.3, -0.7])


def test_sgd_steps_against_the_gradient() -> None:
    params = run(OptimizerSpec("sgd", 0.1), GRADS, START)
    np.testing.assert_allclose(params, START - 0.1 * sum(GRADS))


def test_momentum_matches_the_heavy_ball_recurrence() -> None:
    # Given the textbook recurrence v = mu v - lr g, p += v
    v, p = np.zeros(2), START.copy()
    for g in GRADS:
        v = 0.5 * v - 0.1 * g
        p = p + v
    # When our optimizer runs the same gradients, Then it lands on the same point
    np.testing.assert_allclose(run(OptimizerSpec("momentum", 0.1, momentum=0.5), GRADS, START), p)


def test_adam_matches_the_paper_with_bias_correction() -> None:
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    m, v, p = np.zeros(2), np.zeros(2), START.copy()
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        p = p - step * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(run(OptimizerSpec("adam", lr), GRADS, START), p, rtol=1e-12)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_each_optimizer_minimises_a_quadratic(kind: str) -> None:
    # Given f(p) = ||p - target||^2
    target = np.array([2.0, -3.0, 0.5])
    spec = OptimizerSpec(kind, 0.05)  # type: ignore[arg-type]
    optimizer = make_optimizer(spec, 3)
    params, slots = np.zeros(3), new_slots(optimizer, 3)
    # When it takes 500 steps along the gradient 2 (p - target)
    for t in range(1, 501):
        optimizer.step(params, 2 * (params - target), slots, spec.learning_rate, t)
    # Then it is at the minimum
    np.testing.assert_allclose(params, target, atol=1e-3)


def test_step_schedule_decays_every_step_size_epochs() -> None:
    schedule = ScheduleSpec(type="step", step_size=2, gamma=0.5)
    rates = [learning_rate(schedule, 1.0, epoch=e, step=0, total_steps=10) for e in range(5)]
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_cosine_schedule_anneals_from_base_to_floor() -> None:
    schedule = ScheduleSpec(type="cosine", min_learning_rate=0.1)
    at = [learning_rate(schedule, 1.0, epoch=0, step=s, total_steps=10) for s in (0, 5, 10, 12)]
    assert at[0] == pytest.approx(1.0)
    assert at[1] == pytest.approx(0.55)
    assert at[2] == pytest.approx(0.1)
    assert at[3] == pytest.approx(0.1)

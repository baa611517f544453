"""Learning-rate schedules, as pure functions of progress so a resumed run agrees exactly."""

from __future__ import annotations

import math

from maaskit.training.spec import ScheduleSpec


def learning_rate(
    schedule: ScheduleSpec, base: float, *, epoch: int, step: int, total_steps: int
) -> float:
    """The rate for the update after ``step`` updates, in (0-based) ``epoch``.

    ``step`` decays by ``gamma`` every ``step_size`` epochs; ``cosine`` anneals from
    ``base`` to ``min_learning_rate`` over all ``total_steps`` updates.
    """
    if schedule.type == "step":
        return base * schedule.gamma ** (epoch // schedule.step_size)
    if schedule.type == "cosine":
        progress = min(step, total_steps) / max(total_steps, 1)
        floor = schedule.min_learning_rate
        return floor + (base - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base

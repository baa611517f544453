"""One update: how a mini-batch's gradient changes the weights.

The learning-rate schedule, weight decay, frozen layers and the optimizer, applied in that
order, as one unit: the step loop, a data-parallel worker and the end of an epoch all see
the same rate and the same update for the same state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from maaskit.training.checkpoint import TrainingState
from maaskit.training.network import Architecture
from maaskit.training.optimizers import Slots, make_optimizer, new_slots
from maaskit.training.schedules import learning_rate
from maaskit.training.spec import TrainingSpec

FloatArray = npt.NDArray[np.float64]


class UpdateRule:
    """The optimizer and its scratch space, the schedule, decay and freezing of one run."""

    def __init__(self, architecture: Architecture, spec: TrainingSpec, total_steps: int) -> None:
        self.spec = spec
        self.total_steps = total_steps
        self.optimizer = make_optimizer(spec.optimizer, architecture.parameter_count)
        self._weights = slice(0, architecture.weight_count)
        self._decay_tmp = np.empty(architecture.weight_count)
        self._frozen = [
            part
            for layer in (spec.base_model.freeze if spec.base_model else ())
            for part in architecture.layer_slices(layer)
        ]

    def new_slots(self, size: int) -> Slots:
        """Zeroed optimizer slots for ``size`` parameters."""
        return new_slots(self.optimizer, size)

    def learning_rate(self, state: TrainingState) -> float:
        """The rate of the next update, a pure function of the state's progress."""
        return learning_rate(
            self.spec.lr_schedule,
            self.spec.optimizer.learning_rate,
            epoch=state.epoch,
            step=state.step,
            total_steps=self.total_steps,
        )

    def apply(self, state: TrainingState, grad: FloatArray, lr: float) -> None:
        """Count one more update and apply it to ``state``'s weights; ``grad`` is scratch."""
        params = state.params
        if self.spec.weight_decay:
            np.multiply(params[self._weights], self.spec.weight_decay, out=self._decay_tmp)
            grad[self._weights] += self._decay_tmp
        for part in self._frozen:
            grad[part] = 0.0
        state.step += 1
        self.optimizer.step(params, grad, state.slots, lr, state.step)

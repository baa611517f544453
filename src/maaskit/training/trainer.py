"""The step loop: mini-batches until a step budget, a time budget or the end of training.

Determinism comes from three rules: the visiting order of an epoch is a pure function of
(seed, epoch, shard); every number that changes during training lives in
``TrainingState``; and nothing depends on *when* the loop stops. So the same state run for
10 steps twice, or 20 steps once, ends bit for bit the same, and so does a retried step.

Data-parallel runs (synchronous model averaging, as in LambdaML) use the same loop: each
worker runs ``local_steps`` updates on its shard from the shared state (``local_round``),
and ``reduce`` averages the workers' parameters and optimizer slots in worker order.

The loop is here; what one update does is ``updates``, what validation says is
``evaluation``, what the end of an epoch decides is ``epochs``, and the averaging is
``parallel``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from maaskit.training.checkpoint import TrainingState
from maaskit.training.epochs import close_epoch, diverged
from maaskit.training.evaluation import Evaluator, Shard, TargetScale
from maaskit.training.network import Architecture, Backprop
from maaskit.training.parallel import average_round, worker_copy
from maaskit.training.spec import TrainingSpec
from maaskit.training.split import epoch_order
from maaskit.training.updates import UpdateRule

__all__ = ["RunReport", "Shard", "StopCause", "TargetScale", "Trainer"]

FloatArray = npt.NDArray[np.float64]
StopCause = Literal["done", "max_steps", "time_budget", "epoch_end"]


@dataclass(frozen=True)
class RunReport:
    steps: int
    stopped_by: StopCause


class Trainer:
    """Hyper-parameters, validation data and scratch buffers for one training run."""

    def __init__(
        self,
        architecture: Architecture,
        spec: TrainingSpec,
        validation: Shard,
        shard_rows: Sequence[int],
        *,
        target_scale: TargetScale | None = None,
    ) -> None:
        self.architecture = architecture
        self.spec = spec
        self.validation = validation
        self.shard_rows = tuple(shard_rows)
        self.target_scale = target_scale
        self.steps_per_epoch = max(math.ceil(rows / spec.batch_size) for rows in shard_rows)
        self.total_steps = spec.epochs * self.steps_per_epoch
        self.updates = UpdateRule(architecture, spec, self.total_steps)
        self.evaluator = Evaluator(architecture, validation, spec.batch_size, target_scale)
        self._grad = np.zeros(architecture.parameter_count)

    def start(self, params: FloatArray) -> TrainingState:
        """Checkpoint 0: the initial weights, zeroed optimizer slots, every cursor at 0."""
        if params.shape != (self.architecture.parameter_count,):
            raise ValueError(
                f"expected {self.architecture.parameter_count} parameters, got {params.shape}"
            )
        return TrainingState(
            params=np.array(params, dtype=np.float64),
            slots=self.updates.new_slots(params.size),
            cursors=np.zeros(len(self.shard_rows), dtype=np.int64),
        )

    def current_learning_rate(self, state: TrainingState) -> float:
        return self.updates.learning_rate(state)

    def run(
        self,
        state: TrainingState,
        shard: Shard,
        *,
        worker: int = 0,
        max_steps: int | None = None,
        time_budget: float | None = None,
        stop_at_epoch_end: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> RunReport:
        """Advance ``state`` in place, one mini-batch at a time.

        ``time_budget`` (seconds) stops before a batch that might not finish in time,
        judged by twice the slowest batch plus the slowest epoch end seen so far; at least
        one batch always runs, so a loop of invocations always makes progress.
        """
        if state.done:
            return RunReport(0, "done")
        spec, updates = self.spec, self.updates
        rows = shard.rows
        batch = spec.batch_size
        backprop = Backprop(self.architecture, state.params, self._grad, min(batch, rows))
        order = epoch_order(spec.seed, state.epoch, worker, rows)
        xs, ys = shard.x[order], shard.y[order]
        cursor = int(state.cursors[worker])
        steps = 0
        started = clock()
        slowest_batch = slowest_epoch_end = 0.0
        while True:
            if cursor >= rows:
                if stop_at_epoch_end:
                    return RunReport(steps, "epoch_end")
                tick = clock()
                self.finish_epoch(state)
                slowest_epoch_end = max(slowest_epoch_end, clock() - tick)
                if state.done:
                    return RunReport(steps, "done")
                cursor = 0
                order = epoch_order(spec.seed, state.epoch, worker, rows)
                xs, ys = shard.x[order], shard.y[order]
                continue
            if max_steps is not None and steps >= max_steps:
                return RunReport(steps, "max_steps")
            tick = clock()
            reserve = 2.0 * slowest_batch + slowest_epoch_end
            if time_budget is not None and steps > 0 and tick - started + reserve > time_budget:
                return RunReport(steps, "time_budget")
            stop = min(cursor + batch, rows)
            loss = backprop.loss_and_gradient(xs[cursor:stop], ys[cursor:stop])
            lr = updates.learning_rate(state)
            if not math.isfinite(loss):
                raise diverged(loss, state, lr)
            updates.apply(state, self._grad, lr)
            state.loss_sum += loss * (stop - cursor)
            state.rows_seen += stop - cursor
            cursor = stop
            state.cursors[worker] = cursor
            steps += 1
            slowest_batch = max(slowest_batch, clock() - tick)

    def evaluate(self, params: FloatArray) -> dict[str, float]:
        """Validation metrics of ``params`` (see ``Evaluator.evaluate``)."""
        return self.evaluator.evaluate(params)

    def finish_epoch(self, state: TrainingState) -> None:
        """Record the epoch's metrics, then stop early, stop at the last epoch, or go on."""
        lr = self.updates.learning_rate(state)
        close_epoch(state, self.spec, self.evaluate(state.params), lr)

    def local_round(self, state: TrainingState, shard: Shard, worker: int) -> TrainingState:
        """One worker's share of a round: ``local_steps`` updates on its shard, or fewer at
        the end of the epoch. Returns the worker's own state; ``state`` is left alone."""
        local = worker_copy(state)
        if not state.done:
            self.run(
                local,
                shard,
                worker=worker,
                max_steps=self.spec.local_steps,
                stop_at_epoch_end=True,
            )
        return local

    def reduce(self, state: TrainingState, results: Sequence[TrainingState]) -> None:
        """Average the workers that moved this round, then close the epoch if all are done."""
        if average_round(state, results, self.shard_rows):
            self.finish_epoch(state)

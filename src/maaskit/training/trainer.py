"""The step loop: mini-batches until a step budget, a time budget or the end of training.

Determinism comes from three rules: the visiting order of an epoch is a pure function of
(seed, epoch, shard); every number that changes during training lives in
``TrainingState``; and nothing depends on *when* the loop stops. So the same state run for
10 steps twice, or 20 steps once, ends bit for bit the same, and so does a retried step.

Data-parallel runs (synchronous model averaging, as in LambdaML) use the same loop: each
worker runs ``local_steps`` updates on its shard from the shared state (``local_round``),
and ``reduce`` averages the workers' parameters and optimizer slots in worker order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from maaskit.training.checkpoint import TrainingState
from maaskit.training.errors import TrainingDiverged
from maaskit.training.metrics import classification_metrics, regression_metrics
from maaskit.training.network import Architecture, Backprop, forward
from maaskit.training.optimizers import make_optimizer, new_slots
from maaskit.training.schedules import learning_rate
from maaskit.training.spec import TrainingSpec
from maaskit.training.split import epoch_order

FloatArray = npt.NDArray[np.float64]
StopCause = Literal["done", "max_steps", "time_budget", "epoch_end"]


@dataclass(frozen=True)
class Shard:
    """Standardised features and targets: int64 class indices, or float64 [rows, 1]."""

    x: FloatArray
    y: npt.NDArray[Any]

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class TargetScale:
    """How regression targets were standardised, to report RMSE in the data's units."""

    mean: float
    scale: float


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
        size = architecture.parameter_count
        self.optimizer = make_optimizer(spec.optimizer, size)
        self._grad = np.zeros(size)
        self._decay_tmp = np.empty(architecture.weight_count)
        self._frozen = [
            part
            for layer in (spec.base_model.freeze if spec.base_model else ())
            for part in architecture.layer_slices(layer)
        ]

    # state ------------------------------------------------------------------

    def start(self, params: FloatArray) -> TrainingState:
        """Checkpoint 0: the initial weights, zeroed optimizer slots, every cursor at 0."""
        if params.shape != (self.architecture.parameter_count,):
            raise ValueError(
                f"expected {self.architecture.parameter_count} parameters, got {params.shape}"
            )
        return TrainingState(
            params=np.array(params, dtype=np.float64),
            slots=new_slots(self.optimizer, params.size),
            cursors=np.zeros(len(self.shard_rows), dtype=np.int64),
        )

    def current_learning_rate(self, state: TrainingState) -> float:
        return learning_rate(
            self.spec.lr_schedule,
            self.spec.optimizer.learning_rate,
            epoch=state.epoch,
            step=state.step,
            total_steps=self.total_steps,
        )

    # the loop ---------------------------------------------------------------

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
        spec = self.spec
        rows = shard.rows
        batch = spec.batch_size
        params, grad, slots = state.params, self._grad, state.slots
        backprop = Backprop(self.architecture, params, grad, min(batch, rows))
        weights = slice(0, self.architecture.weight_count)
        decay = spec.weight_decay
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
            lr = self.current_learning_rate(state)
            if not math.isfinite(loss):
                raise self._diverged(loss, state, lr)
            if decay:
                np.multiply(params[weights], decay, out=self._decay_tmp)
                grad[weights] += self._decay_tmp
            for part in self._frozen:
                grad[part] = 0.0
            state.step += 1
            self.optimizer.step(params, grad, slots, lr, state.step)
            state.loss_sum += loss * (stop - cursor)
            state.rows_seen += stop - cursor
            cursor = stop
            state.cursors[worker] = cursor
            steps += 1
            slowest_batch = max(slowest_batch, clock() - tick)

    def _diverged(self, loss: float, state: TrainingState, lr: float) -> TrainingDiverged:
        return TrainingDiverged(
            f"training diverged: the loss became {loss} at epoch {state.epoch + 1}, "
            f"step {state.step + 1} (learning rate {lr:g}); lower the learning rate"
        )

    # epochs -----------------------------------------------------------------

    def evaluate(self, params: FloatArray) -> dict[str, float]:
        """Validation metrics of ``params``; non-finite values are the caller's to judge.

        The forward pass goes in batch-sized chunks: memory stays bounded on a large
        validation set, and no BLAS call is bigger than the training step's. A bigger
        one makes OpenBLAS wake its worker threads, which then spin beside the
        single-threaded step loop and slowed it down several times on a busy machine.
        """
        x, chunk = self.validation.x, self.spec.batch_size
        with np.errstate(over="ignore", invalid="ignore"):
            outputs = np.concatenate(
                [
                    forward(self.architecture, params, x[start : start + chunk])
                    for start in range(0, x.shape[0], chunk)
                ]
            )
            if self.architecture.task == "classification":
                return classification_metrics(outputs, self.validation.y)
            scale = self.target_scale or TargetScale(0.0, 1.0)
            return regression_metrics(outputs, self.validation.y, scale.mean, scale.scale)

    def finish_epoch(self, state: TrainingState) -> None:
        """Record the epoch's metrics, then stop early, stop at the last epoch, or go on."""
        lr = self.current_learning_rate(state)
        metrics = self.evaluate(state.params)
        train_loss = state.loss_sum / max(state.rows_seen, 1)
        if not (math.isfinite(metrics["loss"]) and math.isfinite(train_loss)):
            bad = train_loss if not math.isfinite(train_loss) else metrics["loss"]
            raise self._diverged(bad, state, lr)
        state.epoch += 1
        record: dict[str, Any] = {
            "epoch": state.epoch,
            "step": state.step,
            "learning_rate": lr,
            "train_loss": train_loss,
        }
        record.update({f"val_{name}": value for name, value in metrics.items()})
        state.history.append(record)
        state.cursors[:] = 0
        state.loss_sum = 0.0
        state.rows_seen = 0
        patience = self.spec.patience
        if metrics["loss"] < state.best_loss:
            state.best_loss = metrics["loss"]
            state.best_epoch = state.epoch
            state.stale_epochs = 0
            if patience is not None:
                state.best_params = state.params.copy()
        else:
            state.stale_epochs += 1
        if patience is not None and state.stale_epochs >= patience:
            assert state.best_params is not None  # nosec B101  # narrows the type; epoch 1 always improves on inf
            state.params[...] = state.best_params
            state.done = True
            state.stop_reason = (
                f"early stopping: validation loss did not improve for {patience} epoch(s); "
                f"kept the weights of epoch {state.best_epoch} (loss {state.best_loss:.6g})"
            )
        elif state.epoch >= self.spec.epochs:
            if patience is not None and state.best_params is not None:
                state.params[...] = state.best_params
            state.done = True
            state.stop_reason = f"completed {state.epoch} epoch(s)"

    # data parallel ------------------------------------------------------------

    def local_round(self, state: TrainingState, shard: Shard, worker: int) -> TrainingState:
        """One worker's share of a round: ``local_steps`` updates on its shard, or fewer at
        the end of the epoch. Returns the worker's own state; ``state`` is left alone."""
        local = TrainingState(
            params=state.params.copy(),
            slots={name: slot.copy() for name, slot in state.slots.items()},
            cursors=state.cursors.copy(),
            epoch=state.epoch,
            step=state.step,
        )
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
        if len(results) != len(self.shard_rows):
            raise ValueError(f"expected {len(self.shard_rows)} worker results, got {len(results)}")
        active = [result for result in results if result.step > state.step]
        if active:
            state.params[...] = _mean(result.params for result in active)
            for name in state.slots:
                state.slots[name][...] = _mean(result.slots[name] for result in active)
            state.step = max(result.step for result in active)
        for worker, result in enumerate(results):
            state.cursors[worker] = result.cursors[worker]
            state.loss_sum += result.loss_sum
            state.rows_seen += result.rows_seen
        state.rounds += 1
        if all(int(c) >= rows for c, rows in zip(state.cursors, self.shard_rows, strict=True)):
            self.finish_epoch(state)


def _mean(arrays: Iterable[FloatArray]) -> FloatArray:
    """The mean in a fixed order (worker 0 first), so the result is reproducible."""
    items = list(arrays)
    total: FloatArray = items[0].copy()
    for item in items[1:]:
        total += item
    total /= len(items)
    return total

"""The end of an epoch: its record in the history, divergence, and when training stops."""

from __future__ import annotations

import math
from typing import Any

from maaskit.training.checkpoint import TrainingState
from maaskit.training.errors import TrainingDiverged
from maaskit.training.spec import TrainingSpec


def diverged(loss: float, state: TrainingState, lr: float) -> TrainingDiverged:
    """The error for a non-finite loss, naming where it happened and what to change."""
    return TrainingDiverged(
        f"training diverged: the loss became {loss} at epoch {state.epoch + 1}, "
        f"step {state.step + 1} (learning rate {lr:g}); lower the learning rate"
    )


def close_epoch(
    state: TrainingState, spec: TrainingSpec, metrics: dict[str, float], lr: float
) -> None:
    """Record the epoch's ``metrics``, then stop early, stop at the last epoch, or go on."""
    train_loss = state.loss_sum / max(state.rows_seen, 1)
    if not (math.isfinite(metrics["loss"]) and math.isfinite(train_loss)):
        bad = train_loss if not math.isfinite(train_loss) else metrics["loss"]
        raise diverged(bad, state, lr)
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
    patience = spec.patience
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
    elif state.epoch >= spec.epochs:
        if patience is not None and state.best_params is not None:
            state.params[...] = state.best_params
        state.done = True
        state.stop_reason = f"completed {state.epoch} epoch(s)"

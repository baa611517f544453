"""Synchronous model averaging (as in LambdaML): a worker's copy of the shared state, and
the reduction of the workers' results back into it, in worker order so it is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from maaskit.training.checkpoint import TrainingState

FloatArray = npt.NDArray[np.float64]


def worker_copy(state: TrainingState) -> TrainingState:
    """What a worker starts a round from: the shared weights, slots, cursors and counters,
    without the history or the epoch's loss sums (those are the reduction's)."""
    return TrainingState(
        params=state.params.copy(),
        slots={name: slot.copy() for name, slot in state.slots.items()},
        cursors=state.cursors.copy(),
        epoch=state.epoch,
        step=state.step,
    )


def average_round(
    state: TrainingState, results: Sequence[TrainingState], shard_rows: Sequence[int]
) -> bool:
    """Average the workers that moved this round into ``state``; True when every shard is
    through its epoch (the caller then closes the epoch)."""
    if len(results) != len(shard_rows):
        raise ValueError(f"expected {len(shard_rows)} worker results, got {len(results)}")
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
    return all(int(c) >= rows for c, rows in zip(state.cursors, shard_rows, strict=True))


def _mean(arrays: Iterable[FloatArray]) -> FloatArray:
    """The mean in a fixed order (worker 0 first), so the result is reproducible."""
    items = list(arrays)
    total: FloatArray = items[0].copy()
    for item in items[1:]:
        total += item
    total /= len(items)
    return total

"""Train/validation split by seed (stratified for classification) and data-parallel shards.

Each use of randomness draws from its own stream, ``default_rng([seed, STREAM, ...])``,
so that changing one (say, the number of workers) never shifts another (the split).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from maaskit.errors import InvalidRequest

IndexArray = npt.NDArray[np.int64]

SPLIT_STREAM = 1
SHARD_STREAM = 2
INIT_STREAM = 3
EPOCH_STREAM = 4


def _validation_count(size: int, fraction: float) -> int:
    return math.floor(size * fraction + 0.5)


def train_validation_split(
    rows: int, fraction: float, seed: int, labels: IndexArray | None = None
) -> tuple[IndexArray, IndexArray]:
    """Sorted row indices of the training and validation parts.

    With ``labels`` every class with at least two rows lands in both parts in proportion;
    a class with one row stays in training, where it can still be learnt.
    """
    rng = np.random.default_rng([seed, SPLIT_STREAM])
    if labels is None:
        order = rng.permutation(rows)
        count = min(max(_validation_count(rows, fraction), 1), rows - 1)
        validation = order[:count]
    else:
        parts = []
        for cls in np.unique(labels):
            members = np.flatnonzero(labels == cls)
            shuffled = rng.permutation(members)
            if members.size < 2:
                continue
            count = min(max(_validation_count(members.size, fraction), 1), members.size - 1)
            parts.append(shuffled[:count])
        validation = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if rows < 2 or validation.size == 0:
        raise InvalidRequest(
            f"cannot hold out a validation set from {rows} row(s): add data or raise "
            "validation_split"
        )
    mask = np.zeros(rows, dtype=bool)
    mask[validation] = True
    return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def shard_indices(rows: int, workers: int, seed: int) -> list[IndexArray]:
    """``workers`` disjoint shards of ``range(rows)``, sizes differing by at most one."""
    if rows < workers:
        raise InvalidRequest(
            f"{workers} workers need at least one training row each; there are {rows}"
        )
    order = np.random.default_rng([seed, SHARD_STREAM]).permutation(rows)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, workers)]


def epoch_order(seed: int, epoch: int, worker: int, rows: int) -> IndexArray:
    """The order one worker visits its shard in one epoch: a pure function of its inputs.

    This is the run's whole RNG state: a checkpoint needs only (seed, epoch, cursor) to
    resume mid-epoch exactly where it stopped.
    """
    return np.random.default_rng([seed, EPOCH_STREAM, epoch, worker]).permutation(rows)

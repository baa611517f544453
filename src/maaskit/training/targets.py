"""What the target column means: the task, and class labels for classification.

Classes are kept as integers when every label is a whole number (digits 0-9 stay ``0..9``
in the exported ``label`` output) and as strings otherwise, always in sorted order so the
same data gives the same class indices on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import InvalidRequest
from maaskit.training.spec import Task

MAX_INFERRED_CLASSES = 100


def infer_task(target: npt.NDArray[Any]) -> Task:
    """Classification for strings or a few whole numbers; regression otherwise."""
    if target.dtype.kind in "US":
        return "classification"
    finite = target[np.isfinite(target)]
    whole = finite.size == target.size and bool(np.all(finite == np.round(finite)))
    if whole and np.unique(finite).size <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


@dataclass(frozen=True)
class Labels:
    classes: npt.NDArray[Any]  # int64 or str, sorted: index i is class i
    indices: npt.NDArray[np.int64]  # one class index per row

    @property
    def names(self) -> list[str]:
        return [str(c) for c in self.classes.tolist()]

    def json_classes(self) -> list[int] | list[str]:
        """The class values as JSON keeps them (ints stay ints)."""
        return [int(c) for c in self.classes] if self.classes.dtype.kind == "i" else self.names


def encode_labels(target: npt.NDArray[Any]) -> Labels:
    """Class indices for ``target``; at least two classes, or there is nothing to learn."""
    if target.dtype.kind in "US":
        values: npt.NDArray[Any] = target.astype(np.str_)
    else:
        if not np.all(np.isfinite(target)):
            row = int(np.flatnonzero(~np.isfinite(target))[0]) + 1
            raise InvalidRequest(f"the target has a missing or non-finite value in row {row}")
        if np.all(target == np.round(target)):
            values = target.astype(np.int64)
        else:
            values = np.array([format(v, "g") for v in target.tolist()], dtype=np.str_)
    classes, indices = np.unique(values, return_inverse=True)
    if classes.size < 2:
        only = classes[0] if classes.size else "nothing"
        raise InvalidRequest(
            f"the target has a single class ({only!s}): a classifier needs at least two"
        )
    return Labels(classes=classes, indices=indices.astype(np.int64).reshape(-1))


def regression_target(target: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    if target.dtype.kind in "US":
        raise InvalidRequest(
            "task is regression but the target column is not numeric; "
            'set "task": "classification" for class names'
        )
    if not np.all(np.isfinite(target)):
        row = int(np.flatnonzero(~np.isfinite(target))[0]) + 1
        raise InvalidRequest(f"the target has a missing or non-finite value in row {row}")
    return target.astype(np.float64)

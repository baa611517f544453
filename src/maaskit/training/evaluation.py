"""Validation: the data a run is judged on, and the metrics of a set of weights on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.training.metrics import classification_metrics, regression_metrics
from maaskit.training.network import Architecture, forward

FloatArray = npt.NDArray[np.float64]


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


class Evaluator:
    """Validation metrics of any weights of one architecture, in batch-sized chunks."""

    def __init__(
        self,
        architecture: Architecture,
        validation: Shard,
        chunk_rows: int,
        target_scale: TargetScale | None = None,
    ) -> None:
        self.architecture = architecture
        self.validation = validation
        self.chunk_rows = chunk_rows
        self.target_scale = target_scale

    def evaluate(self, params: FloatArray) -> dict[str, float]:
        """Validation metrics of ``params``; non-finite values are the caller's to judge.

        The forward pass goes in batch-sized chunks: memory stays bounded on a large
        validation set, and no BLAS call is bigger than the training step's. A bigger
        one makes OpenBLAS wake its worker threads, which then spin beside the
        single-threaded step loop and slowed it down several times on a busy machine.
        """
        x, chunk = self.validation.x, self.chunk_rows
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

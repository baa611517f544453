"""Standardisation fitted on the training split only, so validation stays unseen.

The exported ONNX graph applies the same (x - mean) / scale, so callers send raw features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_TINY = 1e-12


@dataclass(frozen=True)
class Standardizer:
    mean: FloatArray
    scale: FloatArray

    @classmethod
    def fit(cls, values: FloatArray) -> Standardizer:
        """Per-column mean and standard deviation; constant columns keep scale 1."""
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        scale = np.where(scale < _TINY, 1.0, scale)
        return cls(mean=mean.astype(np.float64), scale=scale.astype(np.float64))

    @classmethod
    def identity(cls, columns: int) -> Standardizer:
        return cls(mean=np.zeros(columns), scale=np.ones(columns))

    def transform(self, values: FloatArray) -> FloatArray:
        return np.ascontiguousarray((values - self.mean) / self.scale)

    def inverse(self, values: FloatArray) -> FloatArray:
        return values * self.scale + self.mean

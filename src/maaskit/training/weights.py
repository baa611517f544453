"""A trained model as numpy arrays: architecture, parameters, standardisation, classes.

This is what export turns into ONNX and what fine-tuning starts from; it is stored next
to the run (``training/{run_id}/weights.npz``) and its key recorded in the manifest.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import IntegrityError
from maaskit.training.evaluation import TargetScale
from maaskit.training.network import Architecture, forward
from maaskit.training.scaling import Standardizer

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelWeights:
    architecture: Architecture
    params: FloatArray
    x_scaler: Standardizer
    feature_names: tuple[str, ...]
    classes: npt.NDArray[Any] | None = None  # int64 or str; classification only
    target_scale: TargetScale | None = None  # regression only

    def with_params(self, params: FloatArray) -> ModelWeights:
        return replace(self, params=np.array(params, dtype=np.float64))

    def class_list(self) -> list[int] | list[str] | None:
        if self.classes is None:
            return None
        if self.classes.dtype.kind == "i":
            return [int(c) for c in self.classes]
        return [str(c) for c in self.classes]

    def predict(self, raw_x: FloatArray) -> FloatArray:
        """The numpy forward pass from raw features: probabilities, or targets in data units."""
        outputs = forward(self.architecture, self.params, self.x_scaler.transform(raw_x))
        if self.target_scale is not None:
            return outputs * self.target_scale.scale + self.target_scale.mean
        return outputs

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {
            "architecture": np.array(json.dumps(self.architecture.to_dict())),
            "params": self.params,
            "x_mean": self.x_scaler.mean,
            "x_scale": self.x_scaler.scale,
            "feature_names": np.array(self.feature_names, dtype=np.str_),
        }
        if self.classes is not None:
            arrays["classes"] = self.classes
        if self.target_scale is not None:
            arrays["target_scale"] = np.array([self.target_scale.mean, self.target_scale.scale])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelWeights:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            architecture = Architecture.from_dict(json.loads(str(arrays["architecture"])))
        except Exception as err:  # truncated file, missing array, foreign archive
            raise IntegrityError(f"model weights cannot be read: {err}") from None
        target_scale = None
        if "target_scale" in arrays:
            mean, scale = (float(v) for v in arrays["target_scale"])
            target_scale = TargetScale(mean=mean, scale=scale)
        weights = cls(
            architecture=architecture,
            params=np.array(arrays["params"], dtype=np.float64),
            x_scaler=Standardizer(mean=arrays["x_mean"], scale=arrays["x_scale"]),
            feature_names=tuple(str(n) for n in arrays["feature_names"].tolist()),
            classes=arrays.get("classes"),
            target_scale=target_scale,
        )
        if weights.params.shape != (architecture.parameter_count,):
            raise IntegrityError("model weights do not match their architecture")
        return weights

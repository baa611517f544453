"""What a model takes and returns, read from the ONNX file by onnxruntime itself.

Loading with onnxruntime is also the validity check: a file it cannot load is not a model
we can serve, whatever the ``onnx`` checker thinks of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maaskit.errors import InvalidModel

Dim = int | str | None  # fixed size, symbolic name, or unknown

# ONNX tensor element types as onnxruntime names them -> Open Inference Protocol datatypes.
ORT_TO_V2 = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

V2_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

NUMPY_TO_V2 = {dtype: name for name, dtype in V2_TO_NUMPY.items()}
NUMPY_TO_V2[np.dtype(np.str_)] = "BYTES"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # an Open Inference Protocol datatype: FP32, INT64, BYTES, ...
    shape: tuple[Dim, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        return V2_TO_NUMPY[self.datatype]

    def v2_shape(self) -> list[int]:
        """The shape as V2 metadata states it: -1 for every dimension that is not fixed."""
        return [d if isinstance(d, int) and d >= 0 else -1 for d in self.shape]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(name=data["name"], datatype=data["datatype"], shape=tuple(data["shape"]))


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            inputs=tuple(TensorSpec.from_dict(d) for d in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(d) for d in data["outputs"]),
        )


def _spec(node: Any) -> TensorSpec:
    datatype = ORT_TO_V2.get(node.type)
    if datatype is None:
        raise InvalidModel(
            f"tensor {node.name!r} has type {node.type}, which maaskit cannot serve "
            "(supported: plain tensors of bool, integer, float or string elements)"
        )
    return TensorSpec(name=node.name, datatype=datatype, shape=tuple(node.shape))


def signature_of(session: Any) -> Signature:
    """The signature of an ``onnxruntime.InferenceSession``."""
    return Signature(
        inputs=tuple(_spec(node) for node in session.get_inputs()),
        outputs=tuple(_spec(node) for node in session.get_outputs()),
    )


def inspect_model(model_bytes: bytes) -> Signature:
    """Load ``model_bytes`` in onnxruntime and return its signature, or raise ``InvalidModel``."""
    import onnxruntime as ort

    if not model_bytes:
        raise InvalidModel("the model file is empty")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises several unrelated exception types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidModel(f"not a loadable ONNX model: {first_line[:300]}") from None
    return signature_of(session)

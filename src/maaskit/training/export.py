"""ONNX export of trained weights, and the parity check that guards publishing.

The graph takes raw features (one FP32 input ``input``, shape [batch, n_features]) and
applies the standardisation itself, so callers never need the training statistics.
Classifiers output ``probabilities`` and ``label`` (the class value, int64 or string);
regressors output ``prediction`` [batch] in the data's units.

Opset 17 with IR version 8 loads in every onnxruntime since 1.14, including the Lambda
python3.12 layer. Only this module needs the ``onnx`` package, and imports it lazily, so
every other step runs on numpy alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import IntegrityError
from maaskit.training.network import layer_views
from maaskit.training.weights import ModelWeights

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "input"
PARITY_TOLERANCE = 1e-5
BATCH = "batch"


class _GraphBuilder:
    """Nodes and initializers of one graph, named so the file reads well in Netron."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: npt.NDArray[Any]) -> str:
        self.initializers.append(self.numpy_helper.from_array(value, name=name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attributes))
        return output


def _float32(value: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(value, dtype=np.float32)


def _body(graph: _GraphBuilder, weights: ModelWeights) -> str:
    """Standardisation and the dense layers; returns the name of the last layer's output."""
    architecture = weights.architecture
    mean = graph.constant("standardize.mean", _float32(weights.x_scaler.mean))
    scale = graph.constant("standardize.scale", _float32(weights.x_scaler.scale))
    centered = graph.node("Sub", [INPUT_NAME, mean], "centered")
    current = graph.node("Div", [centered, scale], "standardized")
    layer_weights, layer_biases = layer_views(architecture, weights.params)
    last = architecture.n_layers - 1
    for layer, (w, b) in enumerate(zip(layer_weights, layer_biases, strict=True)):
        w_name = graph.constant(f"layer{layer}.weight", _float32(w))
        b_name = graph.constant(f"layer{layer}.bias", _float32(b))
        current = graph.node("Gemm", [current, w_name, b_name], f"layer{layer}.linear")
        if layer < last:
            act = "Relu" if architecture.activation == "relu" else "Tanh"
            current = graph.node(act, [current], f"layer{layer}.{act.lower()}")
    return current


def _classifier_head(graph: _GraphBuilder, weights: ModelWeights, logits: str) -> list[Any]:
    from onnx import TensorProto

    if weights.classes is None:
        raise ValueError("a classifier's weights must carry its classes")
    probabilities = graph.node("Softmax", [logits], "probabilities", axis=1)
    index = graph.node("ArgMax", [probabilities], "class_index", axis=1, keepdims=0)
    if weights.classes.dtype.kind == "i":
        classes = graph.constant("classes", weights.classes.astype(np.int64))
        label_type = TensorProto.INT64
    else:
        classes = graph.constant("classes", weights.classes.astype(np.object_))
        label_type = TensorProto.STRING
    graph.node("Gather", [classes, index], "label", axis=0)
    n_classes = weights.architecture.n_outputs
    return [
        graph.helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [BATCH, n_classes]),
        graph.helper.make_tensor_value_info("label", label_type, [BATCH]),
    ]


def _regressor_head(graph: _GraphBuilder, weights: ModelWeights, output: str) -> list[Any]:
    from onnx import TensorProto

    target = weights.target_scale
    if target is None:
        raise ValueError("a regressor's weights must carry its target scale")
    scale = graph.constant("target.scale", np.array([target.scale], dtype=np.float32))
    mean = graph.constant("target.mean", np.array([target.mean], dtype=np.float32))
    flat = graph.constant("flat_shape", np.array([-1], dtype=np.int64))
    scaled = graph.node("Mul", [output, scale], "target.scaled")
    value = graph.node("Add", [scaled, mean], "target.value")
    graph.node("Reshape", [value, flat], "prediction")
    return [graph.helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [BATCH])]


def export_onnx(weights: ModelWeights, *, model_name: str = "model") -> bytes:
    """The ONNX file for ``weights`` (float32 throughout), checked by ``onnx.checker``."""
    import onnx
    from onnx import TensorProto, helper

    architecture = weights.architecture
    graph = _GraphBuilder()
    last = _body(graph, weights)
    if architecture.task == "classification":
        outputs = _classifier_head(graph, weights, last)
    else:
        outputs = _regressor_head(graph, weights, last)
    model_input = helper.make_tensor_value_info(
        INPUT_NAME, TensorProto.FLOAT, [BATCH, architecture.n_features]
    )
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, model_name, [model_input], outputs, initializer=graph.initializers
        ),
        producer_name="maaskit",
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
    )
    helper.set_model_props(
        model,
        {
            "feature_names": json.dumps(list(weights.feature_names)),
            "classes": json.dumps(weights.class_list()),
            "architecture": json.dumps(architecture.to_dict()),
        },
    )
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data


@dataclass(frozen=True)
class ParityReport:
    rows: int
    max_abs_diff: float
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance}


def check_parity(
    model_bytes: bytes, weights: ModelWeights, raw_x: npt.NDArray[np.float64]
) -> ParityReport:
    """Run the ONNX file in onnxruntime and compare with the numpy forward pass.

    Both see the same float32 inputs. Probabilities must agree within 1e-5; a regression
    prediction within 1e-5 of its magnitude (float32 keeps about 7 significant digits, so
    a house price in dollars cannot agree to 1e-5 absolutely). Labels must agree wherever
    the numpy top two classes are not tied within the tolerance.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )
    inputs = np.ascontiguousarray(raw_x, dtype=np.float32)
    expected = weights.predict(inputs.astype(np.float64))
    tolerance = PARITY_TOLERANCE
    if weights.architecture.task == "classification":
        probabilities, labels = session.run(["probabilities", "label"], {INPUT_NAME: inputs})
        diff = np.abs(probabilities.astype(np.float64) - expected)
        worst = float(diff.max()) if diff.size else 0.0
        if worst > tolerance:
            raise _mismatch(worst, tolerance)
        assert weights.classes is not None  # nosec B101  # narrows the type; classification weights carry their classes
        top_two = np.sort(expected, axis=1)[:, -2:]
        decided = (top_two[:, 1] - top_two[:, 0]) > tolerance
        wanted = weights.classes[expected.argmax(axis=1)]
        if not np.array_equal(np.asarray(labels)[decided], wanted[decided]):
            raise IntegrityError("exported model's labels disagree with the numpy forward pass")
    else:
        (prediction,) = session.run(["prediction"], {INPUT_NAME: inputs})
        reference = expected.reshape(-1)
        allowed = tolerance * np.maximum(1.0, np.abs(reference))
        diff = np.abs(prediction.astype(np.float64) - reference)
        worst = float(diff.max()) if diff.size else 0.0
        if np.any(diff > allowed):
            raise _mismatch(worst, tolerance)
    return ParityReport(rows=int(inputs.shape[0]), max_abs_diff=worst, tolerance=tolerance)


def _mismatch(worst: float, tolerance: float) -> IntegrityError:
    return IntegrityError(
        f"exported ONNX model disagrees with the numpy forward pass on the validation set "
        f"(max abs diff {worst:.3g} > {tolerance:g}); not publishing it"
    )

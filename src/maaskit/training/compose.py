"""One ONNX graph for a fine-tuned text classifier: frozen encoder, pooling, trained head.

The encoder is the base package's ``model.onnx`` as published (its inputs keep their
names, so the base's tokenizer and feeds serve the new model unchanged); pooling (mean
over the attention mask, or the first token) and L2 normalisation are added as ONNX
nodes exactly as the base package declares them; the head is the numpy model exported by
``maaskit.training.export``. The three are joined with ``onnx.compose`` and checked by
``onnx.checker``; the caller compares the result with the numpy path before publishing.
Only this module and ``export`` need the ``onnx`` package, imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import IntegrityError, InvalidModel
from maaskit.training.export import INPUT_NAME, ParityReport

PREFIX = "maaskit."
HIDDEN = PREFIX + "hidden"
MASK = PREFIX + "mask"
EMBEDDING = PREFIX + "embedding"
MASK_OUT = PREFIX + "encoder.attention_mask"
CLASSIFIER_OUTPUTS = ("probabilities", "label")
COMPOSED_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Pooling:
    """How the base package turns the encoder's output into one vector per text."""

    source: str  # the encoder output read: [batch, seq, dim] or already pooled [batch, dim]
    pooling: str  # mean | cls | none
    normalize: bool
    mask_input: str | None  # the encoder input holding the attention mask (mean pooling)


def _tail(pooling: Pooling, opset: int, ir_version: int) -> Any:
    """Pooling (+ normalisation) as a model: hidden states and mask in, ``embedding`` out."""
    from onnx import TensorProto, helper

    nodes: list[Any] = []
    initializers: list[Any] = []

    def const(name: str, value: npt.NDArray[Any]) -> str:
        from onnx import numpy_helper

        initializers.append(numpy_helper.from_array(value, name=PREFIX + name))
        return PREFIX + name

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [PREFIX + output], **attributes))
        return PREFIX + output

    per_token = pooling.pooling != "none"
    hidden_shape = ["batch", "sequence", "dim"] if per_token else ["batch", "dim"]
    inputs = [helper.make_tensor_value_info(HIDDEN, TensorProto.FLOAT, hidden_shape)]
    axis1 = const("axis1", np.array([1], dtype=np.int64))
    if pooling.pooling == "mean":
        inputs.append(helper.make_tensor_value_info(MASK, TensorProto.INT64, ["batch", "sequence"]))
        mask = node("Cast", [MASK], "mask_float", to=TensorProto.FLOAT)
        last = const("axis_last", np.array([-1], dtype=np.int64))
        mask3 = node("Unsqueeze", [mask, last], "mask3")
        masked = node("Mul", [HIDDEN, mask3], "masked")
        summed = node("ReduceSum", [masked, axis1], "summed", keepdims=0)
        counts = node("ReduceSum", [mask3, axis1], "counts", keepdims=0)
        tiny = const("min_count", np.array(1e-9, dtype=np.float32))
        counts = node("Max", [counts, tiny], "counts_safe")
        current = node("Div", [summed, counts], "mean")
    elif pooling.pooling == "cls":
        first = const("first", np.array(0, dtype=np.int64))
        current = node("Gather", [HIDDEN, first], "cls", axis=1)
    else:
        current = node("Identity", [HIDDEN], "pooled")
    if pooling.normalize:
        squares = node("Mul", [current, current], "squares")
        total = node("ReduceSum", [squares, axis1], "square_sum", keepdims=1)
        norm = node("Sqrt", [total], "norm")
        floor = const("min_norm", np.array(1e-12, dtype=np.float32))
        norm = node("Max", [norm, floor], "norm_safe")
        current = node("Div", [current, norm], "normalized")
    nodes.append(helper.make_node("Identity", [current], [EMBEDDING]))
    graph = helper.make_graph(
        nodes,
        "pooling",
        inputs,
        [helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", "dim"])],
        initializer=initializers,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=ir_version,
        producer_name="maaskit",
    )


def _default_opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise InvalidModel("the encoder imports no default ONNX opset")


def compose_classifier(encoder_bytes: bytes, pooling: Pooling, head_bytes: bytes) -> bytes:
    """Encoder + pooling + head as one ONNX model with the encoder's inputs and the head's
    ``probabilities`` and ``label`` outputs."""
    import onnx
    from onnx import compose, helper, version_converter

    encoder = onnx.load_from_string(encoder_bytes)
    head = onnx.load_from_string(head_bytes)
    opset = _default_opset(encoder)
    if opset < 13:
        raise InvalidModel(
            f"the base encoder uses ONNX opset {opset}; fine-tuning needs opset 13 or later"
        )
    outputs = [output.name for output in encoder.graph.output]
    if pooling.source not in outputs:
        raise InvalidModel(
            f"the base encoder has no output {pooling.source!r} (outputs: {', '.join(outputs)})"
        )
    io_map = [(pooling.source, HIDDEN)]
    if pooling.pooling == "mean":
        inputs = [entry.name for entry in encoder.graph.input]
        mask_input = pooling.mask_input
        if mask_input is None or mask_input not in inputs:
            raise InvalidModel(
                "mean pooling needs the attention mask, but the base package feeds it to "
                f"{mask_input!r}, which is not an encoder input ({', '.join(inputs)})"
            )
        # The mask is an encoder input; exposing it as an output lets compose wire it on.
        encoder.graph.node.append(helper.make_node("Identity", [mask_input], [MASK_OUT]))
        encoder.graph.output.append(
            helper.make_tensor_value_info(MASK_OUT, onnx.TensorProto.INT64, ["batch", "sequence"])
        )
        io_map.append((MASK_OUT, MASK))
    if _default_opset(head) != opset:
        head = version_converter.convert_version(head, opset)
    ir_version = max(encoder.ir_version, head.ir_version)
    encoder.ir_version = head.ir_version = ir_version
    head = compose.add_prefix(head, PREFIX + "head.", rename_outputs=False)
    tail = compose.merge_models(
        _tail(pooling, opset, ir_version),
        head,
        io_map=[(EMBEDDING, PREFIX + "head." + INPUT_NAME)],
    )
    model = compose.merge_models(encoder, tail, io_map=io_map, outputs=list(CLASSIFIER_OUTPUTS))
    del model.metadata_props[:]
    model.metadata_props.extend(head.metadata_props)
    model.producer_name = "maaskit"
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def check_composed_parity(
    model_bytes: bytes,
    feeds: dict[str, npt.NDArray[np.int64]],
    expected: npt.NDArray[np.float64],
    classes: npt.NDArray[Any],
    *,
    tolerance: float = COMPOSED_TOLERANCE,
) -> ParityReport:
    """The composed model's probabilities against ``expected`` (encoder embeddings through
    the numpy head) on the same texts; labels must agree wherever the top two classes are
    not tied within the tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(list(CLASSIFIER_OUTPUTS), feeds)
    diff = np.abs(probabilities.astype(np.float64) - expected)
    worst = float(diff.max()) if diff.size else 0.0
    if worst > tolerance:
        raise IntegrityError(
            f"the composed model (encoder + pooling + head) disagrees with the encoder's "
            f"embeddings through the numpy head (max abs diff {worst:.3g} > {tolerance:g}); "
            "not publishing it"
        )
    top_two = np.sort(expected, axis=1)[:, -2:]
    decided = (top_two[:, 1] - top_two[:, 0]) > tolerance
    wanted = classes[expected.argmax(axis=1)]
    if not np.array_equal(np.asarray(labels)[decided], wanted[decided]):
        raise IntegrityError("the composed model's labels disagree with the numpy head's")
    return ParityReport(rows=int(expected.shape[0]), max_abs_diff=worst, tolerance=tolerance)

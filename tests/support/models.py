"""ONNX model files built by code for tests and benchmarks (never committed binaries)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


def _finish(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def linear(n_in: int = 4, n_out: int = 3, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``y = x @ W + b`` with a dynamic batch: returns the file and its weights."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(n_in, n_out)).astype(np.float32)
    bias = rng.normal(size=(n_out,)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["output"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n_out])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    return _finish(graph), weights, bias


def mlp(n_in: int = 64, hidden: int = 64, n_out: int = 10, seed: int = 0) -> bytes:
    """A small classifier (Gemm, Relu, Gemm, Softmax) like the ones maaskit trains."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(scale=0.1, size=(n_in, hidden)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = rng.normal(scale=0.1, size=(hidden, n_out)).astype(np.float32)
    b2 = np.zeros(n_out, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "W1", "B1"], ["h"]),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("Gemm", ["a", "W2", "B2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_out])],
        initializer=[
            numpy_helper.from_array(w1, "W1"),
            numpy_helper.from_array(b1, "B1"),
            numpy_helper.from_array(w2, "W2"),
            numpy_helper.from_array(b2, "B2"),
        ],
    )
    return _finish(graph)


def two_inputs() -> bytes:
    """Token ids (int64) and a float mask sharing ``batch`` and ``sequence`` dims.

    ``score = sum(mask * ids, axis=1)`` as float, and ``ids`` echoed back.
    """
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["ids_f", "mask"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axes"], ["score"], keepdims=0),
            helper.make_node("Identity", ["input_ids"], ["ids_out"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "sequence"]),
        ],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["batch", "sequence"]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    return _finish(graph)


def identity(elem_type: int, shape: list[str | int | None] | None = None) -> bytes:
    """Echo one tensor of ``elem_type``: exercises every V2 datatype end to end."""
    dims: list[str | int | None] = shape if shape is not None else ["batch", 2]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", elem_type, dims)],
        [helper.make_tensor_value_info("y", elem_type, dims)],
    )
    return _finish(graph)


def lookup(vocab: int = 10, dim: int = 2, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """``embedding[ids].sum(axis=1)``: onnxruntime refuses an id outside ``[0, vocab)``.

    The one model here whose failures depend on a row's values, not its shape: what a
    token id out of range does to a real language model.
    """
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["vectors"], axis=0),
            helper.make_node("ReduceSum", ["vectors", "axes"], ["pooled"], keepdims=0),
        ],
        "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", dim])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )
    return _finish(graph), table


def token_encoder(vocab: int = 30, dim: int = 6, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A text encoder's shape: ids, mask and type ids in, ``last_hidden_state`` out.

    Each token's state is its row of a random table plus a mask-dependent term, so padded
    positions differ from real ones and pooling that ignores the mask would show.
    """
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, dim)).astype(np.float32)
    ids, mask, types = (
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    )
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["tokens"], axis=0),
            helper.make_node("Add", ["attention_mask", "token_type_ids"], ["mask_sum"]),
            helper.make_node("Cast", ["mask_sum"], ["mask_float"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask_float", "last"], ["mask3"]),
            helper.make_node("Sub", ["tokens", "mask3"], ["last_hidden_state"]),
        ],
        "token_encoder",
        [ids, mask, types],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim]
            )
        ],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], np.int64), "last"),
        ],
    )
    return _finish(graph), table


def log(n: int = 2) -> bytes:
    """``y = log(x)``: finite inputs whose outputs are not (0 gives -inf, -1 gives NaN)."""
    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"])],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
    )
    return _finish(graph)

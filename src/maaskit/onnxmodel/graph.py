"""Just enough of an ONNX file's protobuf to find a model's inputs and embedding tables.

Publishing a text package checks that the tokenizer's ids fit the model's embedding rows.
The rows are the first dimension of the initializer that a ``Gather`` indexes with the
token ids; reading them needs the graph's nodes and initializer shapes, nothing else. The
``onnx`` package is not in the serving layer, so this walks the protobuf wire format
itself, skipping tensor data without copying it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from maaskit.errors import InvalidModel

# Field numbers from onnx.proto (stable since IR version 1).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT = 1, 5, 11
_VALUE_INFO_NAME = 1
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE = 1, 2, 4
_TENSOR_DIMS, _TENSOR_NAME = 1, 8

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5

# Ops that keep a table's shape on its way to the Gather: quantized models dequantize the
# stored table first (DequantizeLinear, or a Cast then a Mul by the scale).
_TABLE_PASS_THROUGH = frozenset(
    {"DequantizeLinear", "Cast", "Identity", "Mul", "Add", "Sub", "Div"}
)
# Ops that pass the token ids through on their way to the Gather.
_IDS_PASS_THROUGH = frozenset({"Cast", "Identity"})


@dataclass(frozen=True)
class Node:
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    initializer_dims: dict[str, tuple[int, ...]]
    declared_inputs: tuple[str, ...]

    @property
    def inputs(self) -> list[str]:
        """The inputs a caller feeds (old files also list initializers as inputs)."""
        return [name for name in self.declared_inputs if name not in self.initializer_dims]


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise InvalidModel("not a loadable ONNX model: truncated protobuf")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    """(field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == _LENGTH:
            size, pos = _varint(data, pos)
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        else:
            raise InvalidModel(f"not a loadable ONNX model: protobuf wire type {wire}")


def _text(value: memoryview | int) -> str:
    return bytes(value).decode("utf-8", errors="replace") if isinstance(value, memoryview) else ""


def _node(data: memoryview) -> Node:
    inputs: list[str] = []
    outputs: list[str] = []
    op_type = ""
    for number, _, value in _fields(data):
        if number == _NODE_INPUT:
            inputs.append(_text(value))
        elif number == _NODE_OUTPUT:
            outputs.append(_text(value))
        elif number == _NODE_OP_TYPE:
            op_type = _text(value)
    return Node(op_type, tuple(inputs), tuple(outputs))


def _tensor_dims(data: memoryview) -> tuple[str, tuple[int, ...]]:
    name = ""
    dims: list[int] = []
    for number, wire, value in _fields(data):
        if number == _TENSOR_NAME:
            name = _text(value)
        elif number == _TENSOR_DIMS:
            if wire == _VARINT and isinstance(value, int):
                dims.append(value)
            elif isinstance(value, memoryview):  # packed
                pos = 0
                while pos < len(value):
                    dim, pos = _varint(value, pos)
                    dims.append(dim)
    return name, tuple(dims)


def read_graph(model_bytes: bytes) -> Graph:
    """The main graph's nodes and initializer shapes (subgraphs are not needed here)."""
    data = memoryview(model_bytes)
    nodes: list[Node] = []
    dims: dict[str, tuple[int, ...]] = {}
    inputs: list[str] = []
    for number, _, value in _fields(data):
        if number != _MODEL_GRAPH or not isinstance(value, memoryview):
            continue
        for field, _, item in _fields(value):
            if not isinstance(item, memoryview):
                continue
            if field == _GRAPH_NODE:
                nodes.append(_node(item))
            elif field == _GRAPH_INITIALIZER:
                name, shape = _tensor_dims(item)
                dims[name] = shape
            elif field == _GRAPH_INPUT:
                inputs.extend(_text(v) for n, _, v in _fields(item) if n == _VALUE_INFO_NAME)
    return Graph(tuple(nodes), dims, tuple(inputs))


def embedding_rows(model_bytes: bytes, ids_input: str) -> int | None:
    """Rows of the table the token ids index, or None when no such table is found."""
    graph = read_graph(model_bytes)
    producers = {output: node for node in graph.nodes for output in node.outputs}
    ids_names = {ids_input}
    changed = True
    while changed:  # the ids, and whatever a Cast or Identity makes of them
        changed = False
        for node in graph.nodes:
            if node.op_type in _IDS_PASS_THROUGH and node.inputs and node.inputs[0] in ids_names:
                new = set(node.outputs) - ids_names
                if new:
                    ids_names |= new
                    changed = True
    rows: list[int] = []
    for node in graph.nodes:
        if node.op_type != "Gather" or len(node.inputs) < 2 or node.inputs[1] not in ids_names:
            continue
        shape = _stored_shape(node.inputs[0], graph, producers, depth=8)
        if shape:
            rows.append(shape[0])
    return min(rows) if rows else None


def _stored_shape(
    name: str, graph: Graph, producers: dict[str, Node], depth: int
) -> tuple[int, ...] | None:
    """The shape of the initializer ``name`` is computed from, through shape-keeping ops.

    Of an op's several inputs (a table and its scale), the one of highest rank is the table.
    """
    if name in graph.initializer_dims:
        return graph.initializer_dims[name]
    producer = producers.get(name)
    if depth == 0 or producer is None or producer.op_type not in _TABLE_PASS_THROUGH:
        return None
    shapes = [_stored_shape(i, graph, producers, depth - 1) for i in producer.inputs if i]
    found = [s for s in shapes if s]
    return max(found, key=len) if found else None

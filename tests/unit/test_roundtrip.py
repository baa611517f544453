"""Every V2 datatype round-trips through both protocols and every batch format, shape kept.

An identity model in onnxruntime echoes what it is sent, so whatever comes back different
was changed by our codecs: the simple reply, the V2 reply, or a batch reader or writer.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto

from maaskit.batch.job import COMPLETED, run_job
from maaskit.onnxmodel.signature import V2_TO_NUMPY, Signature, signature_of
from maaskit.serving import protocol
from tests.support import models
from tests.unit.test_batch_accounting import MemorySink

ELEM_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}
DATATYPES = sorted(ELEM_TYPES)
FLOAT_WIDTHS: dict[str, Literal[16, 32, 64]] = {"FP16": 16, "FP32": 32, "FP64": 64}
# A CSV record is one line: a string cell may hold commas and quotes but no line break.
ANY_TEXT = st.text()
LINE_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))


class Echo:
    """The identity model of one datatype and shape, run in onnxruntime."""

    def __init__(self, datatype: str, shape: tuple[str | int, ...]) -> None:
        data = models.identity(ELEM_TYPES[datatype], list(shape))
        self.session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        self.signature: Signature = signature_of(self.session)

    def run(self, inputs: Any, output_names: Any = None) -> dict[str, np.ndarray]:
        return dict(zip(["y"], self.session.run(["y"], dict(inputs)), strict=True))


@cache
def echo(datatype: str, shape: tuple[str | int, ...]) -> Echo:
    return Echo(datatype, shape)


def elements(datatype: str, text: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[Any]:
    if datatype == "BYTES":
        return text
    if datatype in FLOAT_WIDTHS:
        return st.floats(width=FLOAT_WIDTHS[datatype], allow_nan=False, allow_infinity=False)
    return hnp.from_dtype(V2_TO_NUMPY[datatype])


@st.composite
def tensors(
    draw: st.DrawFn,
    *,
    min_rank: int = 0,
    max_rank: int = 3,
    datatypes: list[str] = DATATYPES,
    empty: str = "any",
    text: st.SearchStrategy[str] = ANY_TEXT,
) -> tuple[str, np.ndarray]:
    """``(datatype, array)``; ``empty`` says where a zero-size dimension may appear."""
    datatype = draw(st.sampled_from(datatypes))
    rank = draw(st.integers(min_rank, max_rank))
    low = {"any": 0, "last": 1, "none": 1}[empty]
    shape = [draw(st.integers(low, 3)) for _ in range(rank)]
    if empty == "last" and rank and draw(st.booleans()):
        shape[-1] = 0
    dtype = V2_TO_NUMPY[datatype]
    array = draw(hnp.arrays(dtype, tuple(shape), elements=elements(datatype, text)))
    return datatype, array


def assert_same(got: Any, sent: np.ndarray, datatype: str) -> None:
    array = np.array(got, dtype=V2_TO_NUMPY[datatype])
    assert array.shape == sent.shape, (array.shape, sent.shape)
    assert array.tolist() == sent.tolist()


def symbolic(rank: int) -> tuple[str, ...]:
    return tuple(f"d{i}" for i in range(rank))


# Integers past float64's 53 bits, which numpy rounds when they share a list with small ones.
WIDE = ("UINT64", np.array([0, 2**63 + 1], dtype=np.uint64))

FAST = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


# the two protocols ----------------------------------------------------------------


@FAST
@example(WIDE)
@given(tensors(empty="last"))  # nested lists cannot carry dimensions after an empty one
def test_simple_predict_round_trips_every_datatype_and_shape(case: tuple[str, np.ndarray]) -> None:
    # Given an identity model and a request as a client would send it
    datatype, sent = case
    model = echo(datatype, symbolic(sent.ndim))
    body = orjson.dumps({"input": sent.tolist()})
    # When it goes through the simple codec, the model and the reply encoder
    request = protocol.parse_simple(protocol.decode_json(body, max_bytes=1 << 20))
    outputs = model.run(protocol.simple_inputs(request, model.signature))
    reply = orjson.loads(protocol.encode_json(protocol.simple_response("echo", 1, outputs)))
    # Then the reply holds exactly what was sent, in the same shape
    assert_same(reply["outputs"]["y"], sent, datatype)


@FAST
@example(WIDE)
@given(tensors())
def test_v2_infer_round_trips_every_datatype_and_shape(case: tuple[str, np.ndarray]) -> None:
    datatype, sent = case
    model = echo(datatype, symbolic(sent.ndim))
    tensor = {"name": "x", "shape": list(sent.shape), "datatype": datatype}
    body = orjson.dumps({"inputs": [{**tensor, "data": sent.reshape(-1).tolist()}]})
    request = protocol.parse_infer(protocol.decode_json(body, max_bytes=1 << 20), model.signature)
    outputs = model.run(request.inputs)
    reply = orjson.loads(protocol.encode_json(protocol.infer_response("echo", 1, outputs, None)))
    [output] = reply["outputs"]
    assert (output["datatype"], output["shape"]) == (datatype, list(sent.shape))
    assert_same(np.array(output["data"], V2_TO_NUMPY[datatype]).reshape(sent.shape), sent, datatype)


def test_a_string_output_keeps_its_rows_in_the_simple_reply() -> None:
    # Given a string model fed two rows of one string each
    model = echo("BYTES", ("batch", 1))
    outputs = model.run({"x": np.array([["a"], ["b"]], dtype=object)})
    # When the simple reply is encoded
    reply = orjson.loads(protocol.encode_json(protocol.simple_response("tags", 1, outputs)))
    # Then each row is a list holding its string, not the text of a Python list
    assert reply["outputs"]["y"] == [["a"], ["b"]]


# batch files ----------------------------------------------------------------------


def batch(fmt: str, datatype: str, rows: np.ndarray, data: bytes) -> tuple[Echo, bytes]:
    model = echo(datatype, ("batch", *rows.shape[1:]))
    sink = MemorySink()
    result = run_job(model, fmt, [data], sink)
    assert result.status == COMPLETED, (result.reason, result.accounting.failures[:3])
    assert sink.body is not None
    return model, sink.body


@FAST
@example(WIDE)
@given(tensors(min_rank=1, empty="last"))
def test_jsonl_round_trips_every_datatype_and_row_shape(case: tuple[str, np.ndarray]) -> None:
    datatype, sent = case
    lines = b"".join(orjson.dumps({"input": row}) + b"\n" for row in sent.tolist())
    if not lines:
        return  # no rows: nothing to predict (the job reports it empty)
    _, body = batch("jsonl", datatype, sent, lines)
    replies = [orjson.loads(line) for line in body.splitlines()]
    assert [r["line"] for r in replies] == list(range(1, len(sent) + 1))
    for reply, row in zip(replies, sent, strict=True):
        assert_same(reply["outputs"]["y"], np.asarray(row, sent.dtype), datatype)


def csv_cell(datatype: str, value: Any) -> Any:
    return str(value).lower() if datatype == "BOOL" else value


def from_cell(datatype: str, text: str) -> Any:
    if datatype == "BYTES":
        return text
    if datatype == "BOOL":
        return {"true": True, "false": False}[text]
    return float(text) if datatype in FLOAT_WIDTHS else int(text)


@FAST
@example(WIDE)
@given(tensors(min_rank=1, max_rank=3, empty="none", text=LINE_TEXT))
def test_csv_round_trips_every_datatype_and_row_shape(case: tuple[str, np.ndarray]) -> None:
    datatype, sent = case
    if not len(sent):
        return
    width = int(np.prod(sent.shape[1:]))
    flat = sent.reshape(len(sent), width)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["x"] if sent.ndim == 1 else [f"x_{i}" for i in range(width)])
    writer.writerows([[csv_cell(datatype, v) for v in row] for row in flat.tolist()])
    _, body = batch("csv", datatype, sent, text.getvalue().encode())
    header, *records = list(csv.reader(io.StringIO(body.decode())))
    assert header == ["line"] + (["y"] if sent.ndim == 1 else [f"y_{i}" for i in range(width)])
    assert [int(r[0]) for r in records] == list(range(2, len(sent) + 2))
    got = [[from_cell(datatype, cell) for cell in r[1:]] for r in records]
    assert_same(np.array(got, dtype=V2_TO_NUMPY[datatype]).reshape(sent.shape), sent, datatype)


@FAST
@given(tensors(min_rank=1, datatypes=[d for d in DATATYPES if d != "BYTES"], empty="none"))
def test_npy_round_trips_every_numeric_datatype_and_row_shape(
    case: tuple[str, np.ndarray],
) -> None:
    datatype, sent = case
    if not len(sent):
        return
    data = io.BytesIO()
    np.save(data, sent)
    _, body = batch("npy", datatype, sent, data.getvalue())
    out = np.load(io.BytesIO(body))
    assert out["row"].tolist() == list(range(len(sent)))
    assert out["y"].dtype == sent.dtype
    assert_same(out["y"], sent, datatype)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_string_rows_round_trip_through_text_batch_files(fmt: str) -> None:
    sent = np.array([["a", "b, c"], ['"q"', "é"]], dtype=object)
    data = (
        b'{"input": ["a", "b, c"]}\n{"input": ["\\"q\\"", "\xc3\xa9"]}\n'
        if fmt == "jsonl"
        else 'x_0,x_1\na,"b, c"\n"""q""",é\n'.encode()
    )
    _, body = batch(fmt, "BYTES", sent, data)
    if fmt == "jsonl":
        got = [orjson.loads(line)["outputs"]["y"] for line in body.splitlines()]
    else:
        got = [r[1:] for r in list(csv.reader(io.StringIO(body.decode())))[1:]]
    assert got == sent.tolist()

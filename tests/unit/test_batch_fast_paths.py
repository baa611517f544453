"""The window-at-once paths (JSON Lines and CSV parsed and encoded in C) against the
line-by-line paths they stand in for: the same rows, the same failures on the same lines,
the same bytes out, and taken whenever a window is plain numbers."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maaskit.batch.formats import RowBatch, Window, line_blocks
from maaskit.batch.formats.csv import CsvReader
from maaskit.batch.formats.jsonl import JsonLinesReader, JsonLinesWriter, _fast_encoded
from maaskit.batch.formats.npy import NpyReader
from maaskit.batch.formats.numbers import parse_csv_matrix
from maaskit.onnxmodel.signature import Signature, TensorSpec
from maaskit.serving.protocol import encode_json

FEATURES = Signature(
    inputs=(TensorSpec("input", "FP32", ("batch", 3)),),
    outputs=(TensorSpec("y", "FP32", ("batch", 2)),),
)
IDS = Signature(
    inputs=(TensorSpec("input", "INT64", ("batch", 3)),),
    outputs=(TensorSpec("y", "FP32", ("batch", 2)),),
)
TWO = Signature(
    inputs=(
        TensorSpec("input_ids", "INT64", ("batch", "sequence")),
        TensorSpec("mask", "FP32", ("batch", "sequence")),
    ),
    outputs=(TensorSpec("y", "FP32", ("batch", 2)),),
)


def rows_by_position(window: Window) -> dict[int, dict[str, list[Any]]]:
    """Each accounted line's model rows, whichever group they were stacked in, by line."""
    found: dict[int, dict[str, list[Any]]] = {}
    for group in window.groups:
        offsets = group.offsets()
        for i, position in enumerate(group.positions.tolist()):
            found[position] = {
                name: array[offsets[i] : offsets[i + 1]].tolist()
                for name, array in group.inputs.items()
            }
    return dict(sorted(found.items()))


def same_window(fast: Window, slow: Window) -> None:
    assert repr(rows_by_position(fast)) == repr(rows_by_position(slow))  # NaN equals NaN
    assert sorted((f.position, f.reason) for f in fast.failures) == sorted(
        (f.position, f.reason) for f in slow.failures
    )
    for group in fast.groups:
        for name, array in group.inputs.items():
            assert array.dtype == slow.groups[0].inputs[name].dtype


numbers = st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 4)) | st.integers(-99, 99)
good_row = st.lists(numbers, min_size=3, max_size=3)
odd_line = st.sampled_from(
    [
        b"[1, 2",  # not JSON
        b"[[1, 2, 3]",  # brackets left open...
        b"[4, 5, 6]]",  # ...and closed on the next line: each line is still bad
        b"[1, 2]",  # too short
        b'["1.5", 2, 3]',  # a string a float type would silently convert
        b"[true, 2, 3]",  # a boolean, likewise
        b"[null, 2, 3]",  # a null, which would become NaN
        b"[1.5, 2, 3]",  # a fraction: only for an integer input
        b"",  # blank: not a row at all
        b"   ",
        b'{"input": [1, 2, 3], "version": 2}',
        b"7",
    ]
)
json_line = st.one_of(
    good_row.map(orjson.dumps),
    good_row.map(lambda row: orjson.dumps({"input": row})),
    odd_line,
)


@given(lines=st.lists(json_line, min_size=1, max_size=12), integer=st.booleans())
def test_jsonl_window_at_once_matches_line_by_line(lines: list[bytes], integer: bool) -> None:
    signature = IDS if integer else FEATURES
    reader = JsonLinesReader(signature, batch_size=100, max_line_bytes=1000)
    slow = reader._slow(1, list(lines))
    fast = reader._fast(1, list(lines))
    if fast is not None:
        same_window(fast, slow)
    [window] = list(reader.windows([b"\n".join(lines)])) or [Window()]
    same_window(window, slow)


@pytest.mark.parametrize(
    "lines",
    [
        [b"[1, 2, 3]", b"[4.5, 5, 6e2]"],
        [b'{"input": [1, 2, 3]}', b'{"input": [4.5, 5, 6]}'],
        [b'{"input": [[1, 2, 3], [4, 5, 6]]}', b'{"input": [[7, 8, 9], [1, 2, 3]]}'],
    ],
)
def test_a_numeric_jsonl_window_is_parsed_at_once(lines: list[bytes]) -> None:
    reader = JsonLinesReader(FEATURES, batch_size=100, max_line_bytes=1000)
    fast = reader._fast(1, lines)
    assert fast is not None
    same_window(fast, reader._slow(1, lines))


def test_a_multi_input_jsonl_window_is_parsed_at_once() -> None:
    lines = [
        orjson.dumps({"inputs": {"input_ids": [1, 2], "mask": [1, 1]}}),
        orjson.dumps({"inputs": {"mask": [1, 0], "input_ids": [3, 4]}}),
    ]
    reader = JsonLinesReader(TWO, batch_size=100, max_line_bytes=1000)
    fast = reader._fast(1, lines)
    assert fast is not None
    assert fast.groups[0].inputs["input_ids"].dtype == np.int64
    same_window(fast, reader._slow(1, lines))


def test_lines_whose_brackets_pair_up_across_lines_each_fail() -> None:
    reader = JsonLinesReader(FEATURES, batch_size=100, max_line_bytes=1000)
    [window] = list(reader.windows([b"[1, 2, 3]\n[[5, 6, 7]\n[7, 8, 9]]\n[1, 1, 1]\n"]))
    assert rows_by_position(window) == {1: {"input": [[1, 2, 3]]}, 4: {"input": [[1, 1, 1]]}}
    assert [f.position for f in window.failures] == [2, 3]
    assert all("not valid JSON" in f.reason for f in window.failures)


csv_cell = st.one_of(
    numbers.map(lambda x: repr(x).encode()),
    st.sampled_from([b"", b"abc", b"1.5", b'"2"', b"nan", b" 3 ", b"1e3"]),
)
csv_line = st.one_of(
    st.lists(numbers.map(lambda x: repr(x).encode()), min_size=3, max_size=3).map(b",".join),
    st.lists(csv_cell, min_size=2, max_size=4).map(b",".join),
)


@given(lines=st.lists(csv_line, min_size=1, max_size=12), integer=st.booleans())
def test_csv_window_at_once_matches_line_by_line(lines: list[bytes], integer: bool) -> None:
    signature = IDS if integer else FEATURES
    reader = CsvReader(signature, batch_size=100, max_line_bytes=1000)
    assert list(reader.windows([b"a,b,c\n"])) == []  # the header alone: no rows
    assert reader.plan is not None
    fast = reader._window(2, list(lines))
    slow_reader = CsvReader(signature, batch_size=100, max_line_bytes=1000)
    slow_reader.plan = reader.plan
    slow_reader._fast = lambda lines: None  # type: ignore[method-assign]
    same_window(fast, slow_reader._window(2, list(lines)))


def test_blocks_number_every_line_and_hold_size_lines() -> None:
    data = b"a\n\nb\r\n" + b"x" * 50 + b"\nc"
    blocks = list(line_blocks([data[:3], data[3:30], data[30:]], max_line_bytes=10, size=2))
    assert blocks == [(1, [b"a", b""]), (3, [b"b", None]), (5, [b"c"])]


# the JSON Lines writer -----------------------------------------------------------------------

dtypes = st.sampled_from(["float32", "float64", "float16", "int8", "int64", "uint16", "bool"])
row_shapes = st.sampled_from([(), (1,), (3,), (2, 3), (1, 1, 2)])


@given(
    dtype=dtypes,
    shape=row_shapes,
    rows=st.integers(1, 5),
    second=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_jsonl_replies_encoded_at_once_are_the_bytes_of_each_row(
    dtype: str, shape: tuple[int, ...], rows: int, second: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    outputs = {"y": (rng.normal(size=(rows, *shape)) * 100).astype(dtype)}
    if second:
        outputs['label "x"'] = rng.integers(0, 9, size=rows)
    positions = np.arange(3, 3 + rows)
    assert _fast_encoded(RowBatch(positions, {}), outputs) is not None
    encoded = JsonLinesWriter().encode(RowBatch(positions, {}), outputs)
    expected = [
        encode_json({"line": int(p), "outputs": {k: v[i] for k, v in outputs.items()}}) + b"\n"
        for i, p in enumerate(positions)
    ]
    assert encoded.blob == b"".join(expected)
    assert [encoded.record(i) for i in range(rows)] == expected


def test_a_csv_window_of_bare_numbers_needs_no_loadtxt(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = CsvReader(FEATURES, batch_size=100, max_line_bytes=1000)
    assert list(reader.windows([b"a,b,c\n"])) == []

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("loadtxt called for a window simdjson reads")

    monkeypatch.setattr(np, "loadtxt", refuse)
    window = reader._window(2, [b"1,2.5,-3e2", b"4, 5 ,6"])
    assert rows_by_position(window) == {2: {"input": [[1, 2.5, -300]]}, 3: {"input": [[4, 5, 6]]}}


def test_csv_numbers_json_cannot_read_still_parse_at_once() -> None:
    matrix = parse_csv_matrix([b"1,2.5,-3e2", b"4,5,6"], 3)
    assert matrix is not None
    assert matrix.tolist() == [[1, 2.5, -300], [4, 5, 6]]
    assert parse_csv_matrix([b".5,+1,2", b"1,2,3"], 3) is None  # not JSON: numpy's parser takes it
    reader = CsvReader(FEATURES, batch_size=100, max_line_bytes=1000)
    assert list(reader.windows([b"a,b,c\n"])) == []
    window = reader._window(2, [b".5,+1,2", b"1,2,3"])
    assert rows_by_position(window) == {2: {"input": [[0.5, 1, 2]]}, 3: {"input": [[1, 2, 3]]}}


def test_npy_windows_grow_once_a_rows_outputs_are_known() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3000 * 3, dtype=np.float32).reshape(3000, 3))
    data = buffer.getvalue()
    reader = NpyReader(FEATURES, batch_size=100)
    windows = reader.windows([data[i : i + 4096] for i in range(0, len(data), 4096)])
    first = next(windows)
    reader.outputs_seen(8.0)  # two float32 outputs a row: 4 MiB of them is far past 3000 rows
    rest = list(windows)
    assert [len(w.groups[0]) for w in [first, *rest]][:1] == [100]
    assert len(rest) < 3000 // 100 - 1  # fewer, larger model calls after the first
    positions = np.concatenate([w.groups[0].positions for w in [first, *rest]])
    assert positions.tolist() == list(range(3000))
    rows = np.concatenate([w.groups[0].inputs["input"] for w in [first, *rest]])
    assert rows[-1].tolist() == [8997, 8998, 8999]

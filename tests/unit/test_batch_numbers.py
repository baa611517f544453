"""Numeric windows parsed whole by simdjson: exactly what line-by-line parsing gives, or nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
import simdjson
from hypothesis import given, settings
from hypothesis import strategies as st

from maaskit.batch.formats import numbers
from maaskit.batch.formats.csv import CsvReader
from maaskit.batch.formats.jsonl import JsonLinesReader
from maaskit.batch.formats.numbers import parse_csv_matrix, parse_json_rows
from maaskit.onnxmodel.signature import Signature, TensorSpec

FEATURES = Signature(
    inputs=(TensorSpec("input", "FP32", ("batch", 3)),),
    outputs=(TensorSpec("y", "FP32", ("batch", 2)),),
)


def one_array_per_line(values: list[bytes]) -> np.ndarray | None:
    """The reference: each line parsed on its own, all arrays of one shape, as float64."""
    try:
        parsed: list[Any] = [orjson.loads(value) for value in values]
    except orjson.JSONDecodeError:
        return None
    if not all(type(row) is list for row in parsed):
        return None
    try:
        array = np.asarray(parsed, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):  # ragged, or not numbers
        return None
    return array if array.ndim >= 2 else None


# Lines built from the pieces of JSON in any order: brackets that open on one line and close
# on another, several arrays on a line, ragged and empty arrays, numbers out of place, and
# strings, objects and nulls (a string holding brackets and commas among them).
token = st.sampled_from(
    [b"[", b"]", b",", b" ", b"1", b"-2.5", b"3e2", b"0", b'"[,]"', b"{", b"}", b":", b"null"]
) | st.just(b"-3.14159e-300")  # the value that stands for a line break
line = st.lists(token, min_size=1, max_size=14).map(b"".join)
regular = st.sampled_from(
    [b"[1, 2]", b"[[1, 2], [3, 4]]", b"[0.5,-1]", b"[[7,8],[9,0]]", b"[1,2,3]", b"[4]"]
) | st.sampled_from([b"[-3.14159e-300,1]", b"[2,-314159e-305]"])  # a line break's value


@given(values=st.lists(line | regular, min_size=1, max_size=6))
def test_a_window_parses_to_the_lines_own_arrays_or_to_nothing(values: list[bytes]) -> None:
    expected = one_array_per_line(values)
    got = parse_json_rows(values)
    if expected is None:
        assert got is None
    elif got is not None:
        assert got.shape == expected.shape
        assert np.array_equal(got, expected)


@pytest.mark.parametrize(
    ("values", "shape"),
    [
        ([b"[1, 2, 3]", b"[4.5,5,6e2]"], (2, 3)),
        ([b"[[1, 2], [3, 4], [5, 6]]"] * 3, (3, 3, 2)),
        ([b"  [1]  ", b"[-0.0]"], (2, 1)),
        ([b"[1.7976931348623157e308, 5e-324, 123456789012345678]"], (1, 3)),
        ([b"[1E+2, 1e-7, 0.1000000000000000055511151231257827, -0.0]"], (1, 4)),
        ([b"[\t1 ,\r2 ]", b"[3,4]"], (2, 2)),
        ([b"[-3.14159e-300, 1]", b"[2, -314159e-305]"], (2, 2)),  # a line break's value
        ([b"[1, 2]", b" [3, 4]"], (2, 2)),  # a bracket not where the line starts
    ],
)
def test_regular_windows_are_read(values: list[bytes], shape: tuple[int, ...]) -> None:
    got = parse_json_rows(values)
    expected = one_array_per_line(values)
    assert got is not None
    assert expected is not None
    assert got.shape == shape
    assert np.array_equal(got, expected)
    assert [np.signbit(x) for x in got.ravel()] == [np.signbit(x) for x in expected.ravel()]


@pytest.mark.parametrize(
    "values",
    [
        [b"[1],[2]", b"[3],[4]"],  # two arrays a line: joined, they would be four rows
        [b"[1, 2", b"3]"],  # one array over two lines
        [b"[1, 2]", b"[3", b"4], [5, 6]"],  # as many numbers as three rows of two
        [b"[[1, 2], [3]]", b"[[1, 2], [3]]"],  # ragged inside each line
        [b"[1, 2]", b"[3]", b"[4, 5, 6]"],  # ragged, yet as many numbers as (3, 2)
        [b"[3, 4]", b"[1, [2]]"],  # nested in a later line only
        [b"[1, 2]", b"[3], [4]"],  # two arrays on a later line
        [b"[1, 2]", b"[3, 4]]"],
        [b"[[1, 2], [3], [4, 5, 6]]"] * 2,  # ragged, yet as many numbers as (3, 2)
        [b"[[1], []]", b"[[2], [3]]"],  # an empty array that looks like one element
        [b"[]", b"[]"],
        [b"[1e400]"],  # out of range: the line-by-line path says so
        [b'[1, "2"]'],
        [b"[true]"],
        [b"[1] 2"],
        [b'[1, "[2]"]', b'[1, "[2]"]'],
        [b'[{"a": 1}, 2]'],
        [b"[1, 2] [3, 4]", b"[1, 2] [3, 4]"],
        [b"[1, 2]", b""],
    ],
)
def test_windows_it_cannot_vouch_for_are_left_to_the_slow_path(values: list[bytes]) -> None:
    assert parse_json_rows(values) is None


def test_jsonl_numeric_windows_never_reach_the_per_line_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("orjson.loads called for a window simdjson reads")

    monkeypatch.setattr(orjson, "loads", refuse)
    reader = JsonLinesReader(FEATURES, batch_size=100, max_line_bytes=1000)
    for lines in (
        [b"[1, 2, 3]", b"[4, 5, 6]"],
        [b'{"input": [1, 2, 3]}', b'{"input": [4, 5, 6]}'],
        [b'{"input":[[1,2,3],[7,8,9]]}', b'{"input":[[4,5,6],[1,1,1]]}'],
    ):
        window = reader._fast(1, lines)
        assert window is not None
        [group] = window.groups
        assert group.inputs["input"].dtype == np.float32
        assert group.model_rows == 2 * (2 if b"[[" in lines[0] else 1)


@pytest.mark.parametrize(
    "lines",
    [
        [b'{"input": [1, 2, 3]}', b'{"input":[4, 5, 6]}'],  # spelled differently
        [b'{"input": [1, 2, 3], "version": 2}'],
        [b'{"inputs": {"input": [1, 2, 3]}}'],
    ],
)
def test_wrapped_lines_spelled_unlike_the_first_go_the_per_line_way(lines: list[bytes]) -> None:
    reader = JsonLinesReader(FEATURES, batch_size=100, max_line_bytes=1000)
    assert reader._simd_arrays(lines) is None
    fast, slow = reader._fast(1, lines), reader._slow(1, lines)
    got = fast or slow
    assert [g.positions.tolist() for g in got.groups] == [g.positions.tolist() for g in slow.groups]


def test_csv_matrix_counts_fields_per_line() -> None:
    matrix = parse_csv_matrix([b"1,2,3", b"4,5,6"], 3)
    assert matrix is not None
    assert matrix.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert parse_csv_matrix([b"1,2", b"3,4,5,6"], 3) is None  # as many numbers, ragged
    assert parse_csv_matrix([b"1,,3", b"4,5,6"], 3) is None  # an empty cell
    assert parse_csv_matrix([b"1,2,3", b"4,5,"], 3) is None
    assert parse_csv_matrix([b"1e400,2,3"], 3) is None
    assert parse_csv_matrix([b'"1,2",3'], 3) is None  # a quoted cell: loadtxt's
    assert parse_csv_matrix([b"[1,2],3"], 3) is None  # JSON would flatten it
    assert parse_csv_matrix([b"1,2,3", b"4,5,6", b""], 3) is None  # a blank line


def one_row_per_csv_line(text: bytes, rows: int, columns: int) -> np.ndarray | None:
    """The reference: each cell of each line read as one JSON number, ``columns`` a line."""
    lines = text.split(b"\n")
    if len(lines) != rows:
        return None
    matrix = []
    for line in lines:
        cells = line.split(b",")
        if len(cells) != columns:
            return None
        try:
            values = [orjson.loads(cell) for cell in cells]
        except orjson.JSONDecodeError:
            return None
        if not all(type(value) in (int, float) for value in values):
            return None
        try:
            matrix.append([float(value) for value in values])
        except OverflowError:
            return None
    return np.array(matrix, dtype=np.float64).reshape(rows, columns)


numbers_in_cells = [b"1", b"-2.5", b"3e2", b"0", b" 7 ", b"-0.0", b"1e-7"]
odd_cells = [b"", b"[1]", b"[1,2]", b"[]", b'"1"', b".5", b"nan", b"+1", b"[", b"]", b"1 2"]
break_cells = [b"-3.14159e-300", b"-314159e-305"]  # the line break's value, two ways


@given(data=st.data(), columns=st.integers(1, 4), rows=st.integers(1, 4))
@settings(max_examples=500)
def test_a_csv_window_parses_to_its_cells_or_to_nothing(
    data: st.DataObject, columns: int, rows: int
) -> None:
    # Given lines of mostly `columns` numbers, some with a cell more or less, some odd cells
    lines = []
    for _ in range(data.draw(st.sampled_from([rows, rows, rows, rows + 1, max(rows - 1, 1)]))):
        width = data.draw(st.sampled_from([columns, columns, columns + 1, columns - 1]))
        cell = st.sampled_from(numbers_in_cells * 6 + odd_cells + break_cells)  # mostly numbers
        cells = data.draw(st.lists(cell, min_size=width, max_size=width))
        lines.append(b",".join(cells))
    text = b"\n".join(lines)
    # When the window is parsed whole
    got = parse_csv_matrix(lines, columns)
    # Then it gives exactly each line's cells, or nothing (a cell holding the break's value
    # is one thing it may decline)
    expected = one_row_per_csv_line(text, len(lines), columns)
    if got is None:
        assert expected is None or np.isin(-3.14159e-300, expected)
    else:
        assert expected is not None
        assert np.array_equal(got, expected)
        assert [np.signbit(x) for x in got.ravel()] == [np.signbit(x) for x in expected.ravel()]


def test_a_regular_csv_window_is_read() -> None:
    lines = [b"1,-2.5,3e2", b"0.1,0.2,0.3", b"-0.0,5e-324,1.7976931348623157e308"]
    got = parse_csv_matrix(lines, 3)
    expected = one_row_per_csv_line(b"\n".join(lines), 3, 3)
    assert got is not None
    assert expected is not None
    assert np.array_equal(got, expected)


def test_a_wide_integer_column_is_never_rounded_through_float64() -> None:
    signature = Signature(
        inputs=(TensorSpec("input", "INT64", ("batch", 2)),),
        outputs=(TensorSpec("y", "FP32", ("batch", 1)),),
    )
    reader = CsvReader(signature, batch_size=10, max_line_bytes=1000)
    [window] = list(reader.windows([b"a,b\n9007199254740993,1\n"]))
    [group] = window.groups
    assert group.inputs["input"].tolist() == [[9007199254740993, 1]]


def test_the_kept_parser_reads_on_after_a_refused_window() -> None:
    # Given windows simdjson parses but refuses to flatten (a string among the numbers)
    for _ in range(3):
        assert parse_json_rows([b'[1, "x"]', b"[2, 3]"]) is None
        assert parse_csv_matrix([b"1,2", b"[3],4"], 2) is None
    # Then the same thread's parser still reads the next windows, not only a fresh one
    matrix = parse_csv_matrix([b"1,2", b"3,4"], 2)
    assert matrix is not None
    assert matrix.tolist() == [[1, 2], [3, 4]]
    rows = parse_json_rows([b"[1.5, 2]", b"[3, 4]"])
    assert rows is not None
    assert rows.tolist() == [[1.5, 2], [3, 4]]


class RecordingParser:
    """simdjson's parser, noting the size of every document it reads."""

    def __init__(self) -> None:
        self.inner = simdjson.Parser()
        self.sizes: list[int] = []

    def parse(self, document: bytes) -> Any:
        self.sizes.append(len(document))
        return self.inner.parse(document)


def test_a_huge_window_gets_a_parser_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given this thread's kept parser, and a window far larger than usual (about 12 MB)
    kept = RecordingParser()
    monkeypatch.setattr(numbers._parsers, "parser", kept, raising=False)
    lines = [b",".join([b"0.123456"] * 1000)] * 1300
    # When it is parsed, and an ordinary window after it
    matrix = parse_csv_matrix(lines, 1000)
    ordinary = parse_csv_matrix([b"1,2", b"3,4"], 2)
    # Then both are read, and the kept parser (whose buffers grow to the largest document it
    # reads, for good) read only the ordinary one
    assert matrix is not None
    assert matrix.shape == (1300, 1000)
    assert ordinary is not None
    assert len(kept.sizes) == 1
    assert kept.sizes[0] < 100

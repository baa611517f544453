"""Readers and writers on their own: line splitting, CSV column plans, .npy headers, encoders."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maaskit.batch.formats import Encoded, FileError, RowBatch, merge, split_lines
from maaskit.batch.formats.csv import CsvReader, CsvWriter, plan_columns
from maaskit.batch.formats.jsonl import JsonLinesReader, JsonLinesWriter
from maaskit.batch.formats.npy import NpyReader, NpyWriter, row_aligned
from maaskit.onnxmodel.signature import Signature, TensorSpec


def sig(
    *inputs: tuple[str, str, tuple[Any, ...]],
    outputs: tuple[tuple[str, str, tuple[Any, ...]], ...] = (),
) -> Signature:
    return Signature(
        inputs=tuple(TensorSpec(n, d, s) for n, d, s in inputs),
        outputs=tuple(TensorSpec(n, d, s) for n, d, s in outputs)
        or (TensorSpec("y", "FP32", ("batch", 2)),),
    )


FEATURES = sig(("input", "FP32", ("batch", 4)))
TOKENS = sig(("input_ids", "INT64", ("batch", "sequence")), ("mask", "FP32", ("batch", "sequence")))


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# line splitting --------------------------------------------------------------------------

line_text = st.binary(max_size=30).filter(lambda b: b"\n" not in b and not b.endswith(b"\r"))


@given(
    lines=st.lists(line_text, max_size=20), size=st.integers(1, 40), newline_at_end=st.booleans()
)
def test_lines_survive_any_chunking(lines: list[bytes], size: int, newline_at_end: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    got = list(split_lines(chunked(data, size), max_line_bytes=1000))
    expected = data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    assert got == list(enumerate(expected, start=1))


@given(size=st.integers(1, 50))
def test_an_over_long_line_is_refused_without_being_held(size: int) -> None:
    data = b"short\n" + b"x" * 100 + b"\nafter\r\n" + b"y" * 30
    got = list(split_lines(chunked(data, size), max_line_bytes=20))
    assert got == [(1, b"short"), (2, None), (3, b"after"), (4, None)]


# CSV column plans --------------------------------------------------------------------------


def test_positional_columns_feed_a_single_input() -> None:
    plan = plan_columns(["sepal_l", "sepal_w", "petal_l", "petal_w"], FEATURES)
    assert not plan.named
    assert plan.inputs[0].columns.tolist() == [0, 1, 2, 3]


def test_named_columns_may_come_in_any_order() -> None:
    plan = plan_columns(["mask_1", "input_ids_1", "mask_0", "input_ids_0"], TOKENS)
    assert plan.named
    assert [item.columns.tolist() for item in plan.inputs] == [[3, 1], [2, 0]]
    assert [item.row_shape for item in plan.inputs] == [(2,), (2,)]
    # each input takes its own columns, in element order, whether or not they are adjacent
    matrix = np.array([[10.0, 11.0, 12.0, 13.0], [20.0, 21.0, 22.0, 23.0]])
    assert [item.of(matrix).tolist() for item in plan.inputs] == [
        [[13.0, 11.0], [23.0, 21.0]],
        [[12.0, 10.0], [22.0, 20.0]],
    ]
    adjacent = plan_columns(["input_ids_0", "input_ids_1", "mask_0", "mask_1"], TOKENS)
    views = [item.of(matrix) for item in adjacent.inputs]
    assert [view.tolist() for view in views] == [
        [[10.0, 11.0], [20.0, 21.0]],
        [[12.0, 13.0], [22.0, 23.0]],
    ]
    assert all(np.shares_memory(view, matrix) for view in views)


@pytest.mark.parametrize(
    ("header", "signature", "message"),
    [
        (["a", "b", "c"], FEATURES, "takes 4 values per row"),
        (
            ["input_ids_0", "mask_0", "maks_1"],
            TOKENS,
            "unknown column 'maks_1' (did you mean 'mask_1'?)",
        ),
        (["input_ids_0", "input_ids_2", "mask_0"], TOKENS, "missing column input_ids_1"),
        (["input_ids_0", "input_ids_1"], TOKENS, "no column for input 'mask'"),
        (["x", "x"], FEATURES, "repeats column(s) 'x'"),
        ([""], FEATURES, "the header line is empty"),
        (["input"], FEATURES, "name its columns 'input_0'"),
    ],
)
def test_headers_that_cannot_feed_the_model(
    header: list[str], signature: Signature, message: str
) -> None:
    with pytest.raises(FileError) as caught:
        plan_columns(header, signature)
    assert message in caught.value.message


def test_scalar_column_for_a_rank_one_input() -> None:
    signature = sig(("age", "FP32", ("batch",)), ("income", "FP32", ("batch", 1)))
    plan = plan_columns(["income", "age"], signature)
    assert [(item.columns.tolist(), item.row_shape) for item in plan.inputs] == [
        ([1], ()),
        ([0], (1,)),
    ]


def test_csv_strings_and_booleans_take_the_slow_path() -> None:
    signature = sig(("text", "BYTES", ("batch",)), ("flag", "BOOL", ("batch",)))
    reader = CsvReader(signature, batch_size=10, max_line_bytes=100)
    body = b'text,flag\n"hello, world",true\nplain,0\nbad,maybe\n'
    [window] = list(reader.windows([body]))
    [group] = window.groups
    assert group.inputs["text"].tolist() == ["hello, world", "plain"]
    assert group.inputs["flag"].tolist() == [True, False]
    assert [(f.position, f.reason) for f in window.failures] == [
        (4, "column 'flag' must be true or false, got 'maybe'")
    ]


def test_csv_integer_inputs_refuse_fractions_row_by_row() -> None:
    reader = CsvReader(TOKENS, batch_size=10, max_line_bytes=100)
    body = b"input_ids_0,mask_0\n1,1\n1.5,1\n3,0\n"
    [window] = list(reader.windows([body]))
    assert window.groups[0].positions.tolist() == [2, 4]
    assert window.groups[0].inputs["input_ids"].dtype == np.int64
    assert window.failures[0].position == 3
    assert "fractional" in window.failures[0].reason


def test_csv_header_with_byte_order_mark_and_crlf() -> None:
    reader = CsvReader(FEATURES, batch_size=10, max_line_bytes=100)
    [window] = list(reader.windows([b"\xef\xbb\xbfa,b,c,d\r\n1,2,3,4\r\n"]))
    assert window.groups[0].inputs["input"].tolist() == [[1, 2, 3, 4]]


# CSV and JSONL writers ---------------------------------------------------------------------------


def test_csv_writer_formats_numbers_and_non_finite_values() -> None:
    writer = CsvWriter(FEATURES)
    batch = RowBatch(np.array([2, 5]), {})
    encoded = writer.encode(batch, {"y": np.array([[0.5, np.nan], [np.inf, -1.25]], np.float32)})
    assert writer.prefix() == b"line,y_0,y_1\n"
    assert writer.prefix() == b""  # the header goes once
    assert encoded.blob == b"2,0.5,nan\n5,inf,-1.25\n"
    refused = writer.encode(RowBatch(np.array([7]), {}), {"y": np.zeros((1, 3), np.float32)})
    assert [f.position for f in refused.refused] == [7]
    assert "use JSON Lines" in refused.refused[0].reason


def test_csv_writer_with_no_rows_still_writes_a_header() -> None:
    writer = CsvWriter(
        sig(
            ("x", "FP32", ("batch", 1)),
            outputs=(("label", "INT64", ("batch",)), ("p", "FP32", ("batch", 3))),
        )
    )
    assert writer.finish(0) == (b"", b"line,label,p_0,p_1,p_2\n")


def test_jsonl_writer_keeps_the_shape_each_line_sent() -> None:
    batch = RowBatch(
        positions=np.array([1, 3]),
        inputs={},
        sizes=np.array([1, 2]),
        batched=np.array([False, True]),
    )
    encoded = JsonLinesWriter().encode(batch, {"y": np.array([[1.0], [2.0], [3.0]], np.float32)})
    assert [orjson.loads(x) for x in encoded.blob.splitlines()] == [
        {"line": 1, "outputs": {"y": [1.0]}},
        {"line": 3, "outputs": {"y": [[2.0], [3.0]]}},
    ]


def test_jsonl_groups_lines_by_shape_within_a_window() -> None:
    lines = [
        {"inputs": {"input_ids": [1, 2], "mask": [1, 1]}},
        {"inputs": {"input_ids": [1, 2, 3], "mask": [1, 1, 1]}},
        {"inputs": {"input_ids": [4, 5], "mask": [1, 0]}},
        {"inputs": {"input_ids": [1, 2], "mask": [1]}},
        {"inputs": {"input_ids": [[1, 2], [3, 4]], "mask": [[1, 1], [1, 1]]}},
    ]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    [window] = list(JsonLinesReader(TOKENS, batch_size=10, max_line_bytes=1000).windows([body]))
    assert sorted(group.positions.tolist() for group in window.groups) == [[1, 3, 5], [2]]
    assert [f.position for f in window.failures] == [4]
    assert "must agree on dimension 'sequence'" in window.failures[0].reason


def test_merge_puts_rows_back_in_position_order() -> None:
    a = Encoded.from_records(np.array([1, 4]), [b"a1\n", b"a4\n"])
    b = Encoded.from_records(np.array([2, 3, 5]), [b"b2\n", b"b3\n", b"b5\n"])
    assert merge([a, b]) == (b"a1\nb2\nb3\na4\nb5\n", 5)
    assert merge([]) == (b"", 0)
    # fixed-size rows (.npy) are found by their offsets in the blob
    c = Encoded(np.array([0, 6]), b"c0c6", offsets=np.array([0, 2, 4]))
    assert merge([a, c, b]) == (b"c0a1\nb2\nb3\na4\nb5\nc6", 7)
    # records joined in C from two pieces each are made one by one only when interleaved
    d = Encoded.from_pairs(
        np.array([7, 9]), [b"7", b"9"], [b"x", b"y"], opening=b"<", middle=b":", closing=b">\n"
    )
    assert d.blob == b"<7:x>\n<9:y>\n"
    assert merge([d, a]) == (b"a1\na4\n<7:x>\n<9:y>\n", 4)


def test_records_from_pairs_need_a_pair_for_every_row() -> None:
    empty = Encoded.from_pairs(np.array([], np.int64), [], [], middle=b",", closing=b"\n")
    assert empty.blob == b""
    with pytest.raises(ValueError, match="2 rows, 2 first and 1 second pieces"):
        Encoded.from_pairs(np.array([1, 2]), [b"1", b"2"], [b"a"], middle=b",", closing=b"\n")


# .npy ---------------------------------------------------------------------------------------------


@given(size=st.integers(1, 200), batch_size=st.integers(1, 7))
def test_npy_header_and_rows_split_across_any_chunks(size: int, batch_size: int) -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    windows = list(NpyReader(FEATURES, batch_size=batch_size).windows(chunked(npy(x), size)))
    rows = np.concatenate([g.inputs["input"] for w in windows for g in w.groups])
    positions = np.concatenate([g.positions for w in windows for g in w.groups])
    assert rows.tolist() == x.tolist()
    assert positions.tolist() == list(range(10))


def _reads(data: bytes) -> Callable[[int], bytes]:
    stream = io.BytesIO(data)
    return stream.read


@given(
    rows=st.integers(0, 300), row_values=st.sampled_from([1, 2, 4, 6]), piece_rows=st.integers(1, 9)
)
def test_npy_pieces_after_the_second_start_on_a_row(
    rows: int, row_values: int, piece_rows: int
) -> None:
    # Given a .npy file (a 128-byte header, rows of 4 to 24 bytes) and pieces that hold the
    # header and a whole number of 4-, 8- and 16-byte rows, but never of 24-byte ones
    data = npy(np.arange(rows * row_values, dtype=np.float32).reshape(rows, row_values))
    header = len(data) - rows * row_values * 4
    size = 128 + 96 * piece_rows
    # When it is read in row-aligned pieces
    pieces = list(row_aligned(_reads(data), size))
    # Then the pieces are the file, and each after the second starts on a row when it can
    assert b"".join(pieces) == data
    assert all(0 < len(piece) <= size for piece in pieces)
    starts = np.cumsum([0] + [len(p) for p in pieces])[2:-1]
    assert header == 128
    if row_values != 6:
        assert all((start - header) % (row_values * 4) == 0 for start in starts)
    else:  # rows that do not fill a piece evenly: plain pieces, all but the last full
        assert all(len(piece) == size for piece in pieces[:-1])


@pytest.mark.parametrize(
    "data", [b"", b"not numpy at all" * 10, npy(np.ones((3, 4), np.float32))[:20]]
)
def test_npy_pieces_of_what_is_not_a_whole_header_are_plain(data: bytes) -> None:
    pieces = list(row_aligned(_reads(data), 16))
    assert b"".join(pieces) == data
    assert all(len(piece) == 16 for piece in pieces[:-1])


@given(size=st.sampled_from([16, 32, 48, 160]), batch_size=st.integers(1, 7))
def test_npy_rows_read_from_aligned_pieces_are_the_file_s_rows(size: int, batch_size: int) -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    pieces = row_aligned(_reads(npy(x)), size)
    windows = list(NpyReader(FEATURES, batch_size=batch_size).windows(pieces))
    rows = np.concatenate([g.inputs["input"] for w in windows for g in w.groups])
    positions = np.concatenate([g.positions for w in windows for g in w.groups])
    assert rows.tolist() == x.tolist()
    assert positions.tolist() == list(range(10))


@pytest.mark.parametrize("batch_size", [1, 3, 8, 64])
def test_npy_rows_of_aligned_pieces_after_the_second_are_read_in_place(batch_size: int) -> None:
    # Given aligned pieces of 8 rows and a reader whose first windows do not divide a piece
    x = np.arange(60 * 4, dtype=np.float32).reshape(60, 4)
    pieces = list(row_aligned(_reads(npy(x)), 128 + 16 * 8))
    reader = NpyReader(FEATURES, batch_size=batch_size)
    # When its windows are read, one row's outputs weighing 4 bytes once the first is out
    seen: list[np.ndarray] = []
    for i, window in enumerate(reader.windows(iter(pieces))):
        seen.extend(g.inputs["input"] for g in window.groups)
        if i == 0:
            reader.outputs_seen(4.0)
    # Then every row of the third piece on is read from the piece itself, never from a copy
    later = [np.frombuffer(piece, np.float32) for piece in pieces[2:]]
    rows_of_later = sum(len(p) for p in pieces[2:]) // 16
    in_place = [a for a in seen if any(np.shares_memory(a, p) for p in later)]
    assert sum(len(a) for a in in_place) == rows_of_later
    assert np.concatenate(seen).tolist() == x.tolist()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not numpy at all", "does not start with the NUMPY magic"),
        (npy(np.asfortranarray(np.ones((3, 4), np.float32))), "Fortran order"),
        (npy(np.array([{"a": 1}], dtype=object)), "Python objects (a pickle)"),
        (npy(np.array(3.0, np.float32)), "a 0-d array"),
        (npy(np.ones((2, 4), np.float32))[:20], "truncated inside its header"),
        (npy(np.ones((2, 4), np.float32))[:-3], "truncated"),
        (npy(np.ones((2, 4), np.float32)) + b"\x00" * 16, "more data than the 2 rows"),
        (npy(np.ones((2, 4), np.int64)), None),
    ],
    ids=["magic", "fortran", "pickle", "scalar", "header-cut", "data-cut", "extra-data", "ints-ok"],
)
def test_npy_files_refused_whole(data: bytes, message: str | None) -> None:
    reader = NpyReader(FEATURES, batch_size=1)
    if message is None:
        assert sum(w.count for w in reader.windows(chunked(data, 7))) == 2
        return
    with pytest.raises(FileError) as caught:
        list(reader.windows(chunked(data, 7)))
    assert message in caught.value.message


def test_npy_multi_input_model_needs_a_structured_array() -> None:
    with pytest.raises(FileError, match="save a structured array with one field per input"):
        list(NpyReader(TOKENS, batch_size=4).windows([npy(np.ones((2, 3), np.int64))]))


def test_npy_values_the_input_type_refuses_fail_row_by_row() -> None:
    records = np.zeros(3, dtype=[("input_ids", "<f8", (2,)), ("mask", "<f4", (2,))])
    records["input_ids"] = [[1, 2], [1.5, 2], [3, 4]]
    [window] = list(NpyReader(TOKENS, batch_size=8).windows([npy(records)]))
    assert window.groups[0].positions.tolist() == [0, 2]
    assert window.failures[0].position == 1


def test_npy_writer_states_the_rows_written_in_its_header() -> None:
    writer = NpyWriter(FEATURES)
    encoded = writer.encode(RowBatch(np.array([0, 2]), {}), {"y": np.ones((2, 2), np.float32)})
    preamble, trailer = writer.finish(2)
    out = np.load(io.BytesIO(preamble + encoded.blob + trailer))
    assert out["row"].tolist() == [0, 2]
    assert out["y"].shape == (2, 2)


def test_npy_writer_refuses_string_outputs_up_front() -> None:
    with pytest.raises(FileError, match="string tensor"):
        NpyWriter(sig(("x", "FP32", ("batch", 1)), outputs=(("label", "BYTES", ("batch",)),)))


def test_jsonl_lines_for_a_scalar_input_fail_alone_with_a_reason() -> None:
    # Given a model whose one input is a scalar (rank 0: no batch dimension to stack rows on)
    scalar = sig(("x", "FP32", ()))
    body = b'{"input": 5}\n[1]\n"text"\n'

    # When the lines are read
    [window] = list(JsonLinesReader(scalar, batch_size=10, max_line_bytes=1000).windows([body]))

    # Then every line fails with a reason, and nothing is lost or crashes
    assert [f.position for f in window.failures] == [1, 2, 3]
    assert "scalar" in window.failures[0].reason
    assert not window.groups

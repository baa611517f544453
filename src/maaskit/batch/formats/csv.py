"""CSV with a header: columns become the model's inputs, replies become columns.

Two ways for columns to map to inputs, decided once from the header:

* named: every column is an input's name (one value per row) or ``{input}_{i}`` (element
  ``i`` of the input's row, flattened), so ``input_ids_0..input_ids_15,mask_0..mask_15``
  feeds a two-input model;
* positional: a single-input model takes all columns, in order, as its row; the header
  names are labels (``sepal_length,sepal_width,...``).

The output has a ``line`` column (the input's line number) and then each output the same
way: ``probabilities_0..probabilities_9``. Records are lines: a quoted field may hold commas
but not line breaks. Numeric files parse a window at a time in C (simdjson, or numpy's
loadtxt for spellings JSON lacks); a window both refuse is parsed again line by line to
name each bad line and keep the good ones.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from maaskit.batch.formats.base import (
    Encoded,
    Failure,
    FileError,
    RowBatch,
    Window,
    decimals,
    first_line,
    line_blocks,
    too_long,
)
from maaskit.batch.formats.numbers import parse_csv_matrix
from maaskit.errors import InvalidRequest
from maaskit.onnxmodel.signature import Signature, TensorSpec
from maaskit.onnxmodel.tensors import check_shape, to_array

CONTENT_TYPE = "text/csv"
_INDEXED = re.compile(r"(.+)_(\d+)")
_INTEGER = re.compile(r"[+-]?\d+")
_EXACT_IN_FLOAT64 = 2**53


@dataclass(frozen=True)
class _InputColumns:
    spec: TensorSpec
    columns: np.ndarray  # indices into the header, in element order
    row_shape: tuple[int, ...]

    @cached_property
    def _span(self) -> slice | None:
        """The columns as one slice when they are adjacent and in order (the usual file),
        found once per file, not once per window."""
        first, count = int(self.columns[0]), len(self.columns)
        if np.array_equal(self.columns, np.arange(first, first + count)):
            return slice(first, first + count)
        return None

    def of(self, matrix: np.ndarray) -> np.ndarray:
        """This input's columns of ``matrix``: a view when they are one slice, so the only
        copy is the conversion to the input's type."""
        span = self._span
        return matrix[:, self.columns] if span is None else matrix[:, span]


@dataclass(frozen=True)
class ColumnPlan:
    """How the header's columns feed the model's inputs."""

    header: list[str]
    inputs: list[_InputColumns]
    named: bool

    @property
    def numeric(self) -> bool:
        return all(item.spec.dtype.kind in "iuf" for item in self.inputs)

    @property
    def wide_integers(self) -> bool:
        """An INT64/UINT64 input, whose values past 2**53 a float64 matrix would round."""
        return any(
            item.spec.dtype.kind in "iu" and item.spec.dtype.itemsize == 8 for item in self.inputs
        )


def _row_shape(spec: TensorSpec, count: int, how: str) -> tuple[int, ...]:
    """The per-row shape ``count`` columns make for ``spec``, or a ``FileError`` saying why not."""
    dims = spec.shape[1:]
    if not dims:
        if count != 1:
            raise FileError(f"input {spec.name!r} takes one value per row; {how} {count} columns")
        return ()
    fixed = [d if isinstance(d, int) and d >= 0 else None for d in dims]
    if len(dims) == 1:
        if fixed[0] is not None and fixed[0] != count:
            raise FileError(
                f"input {spec.name!r} takes {fixed[0]} values per row (shape {list(spec.shape)}); "
                f"{how} {count} columns"
            )
        return (count,)
    if any(d is None for d in fixed):
        raise FileError(
            f"input {spec.name!r} has shape {list(spec.shape)}: a CSV row can only feed inputs "
            "whose dimensions after the first are fixed (or one dimension, for a 2-D input); "
            "use JSON Lines or .npy"
        )
    size = math.prod(d for d in fixed if d is not None)
    if size != count:
        raise FileError(
            f"input {spec.name!r} takes {size} values per row (shape {list(spec.shape)}); "
            f"{how} {count} columns"
        )
    return tuple(d for d in fixed if d is not None)


def plan_columns(header: list[str], signature: Signature) -> ColumnPlan:
    """Decide how columns map to inputs, or raise a ``FileError`` a person can act on."""
    if not header or header == [""]:
        raise FileError("the header line is empty: the first line must name the columns")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise FileError(f"the header repeats column(s) {', '.join(map(repr, duplicates))}")
    names = [spec.name for spec in signature.inputs]
    by_input: dict[str, dict[int, int]] = {name: {} for name in names}
    unmatched: list[str] = []
    for column, label in enumerate(header):
        if label in by_input:
            by_input[label][-1] = column
            continue
        match = _INDEXED.fullmatch(label)
        owners = [] if match is None else [n for n in names if n == match.group(1)]
        if match is not None and owners:
            by_input[owners[0]][int(match.group(2))] = column
        else:
            unmatched.append(label)
    if not unmatched:
        return ColumnPlan(
            header, [_named(spec, by_input[spec.name]) for spec in signature.inputs], True
        )
    if (
        len(signature.inputs) == 1
        and signature.inputs[0].datatype == "BYTES"
        and -1 in by_input[names[0]]
    ):
        # a text model's column among others (an id, a label): only that column is read
        return ColumnPlan(header, [_named(signature.inputs[0], by_input[names[0]])], True)
    if len(signature.inputs) == 1:
        spec = signature.inputs[0]
        shape = _row_shape(spec, len(header), "the header has")
        return ColumnPlan(header, [_InputColumns(spec, np.arange(len(header)), shape)], False)
    label = unmatched[0]
    hint = difflib.get_close_matches(label, _expected_labels(signature), n=1)
    raise FileError(
        f"unknown column {label!r}{f' (did you mean {hint[0]!r}?)' if hint else ''}: this model "
        f"takes {len(names)} inputs ({', '.join(map(repr, names))}), so columns must be named "
        "after them: 'name' for one value per row, or 'name_0', 'name_1', ... for several"
    )


def _expected_labels(signature: Signature) -> list[str]:
    labels = []
    for spec in signature.inputs:
        labels.append(spec.name)
        labels.extend(f"{spec.name}_{i}" for i in range(4))
    return labels


def _named(spec: TensorSpec, found: dict[int, int]) -> _InputColumns:
    if not found:
        raise FileError(
            f"no column for input {spec.name!r}: add a column {spec.name!r} (one value per row) "
            f"or columns '{spec.name}_0', '{spec.name}_1', ..."
        )
    if -1 in found:
        if len(found) > 1:
            raise FileError(f"input {spec.name!r} has both a plain and numbered columns")
        return _InputColumns(spec, np.array([found[-1]]), _scalar_shape(spec))
    indices = sorted(found)
    missing = sorted(set(range(indices[-1] + 1)) - set(indices))
    if missing:
        raise FileError(f"missing column {spec.name}_{missing[0]} for input {spec.name!r}")
    shape = _row_shape(spec, len(indices), "the header has")
    return _InputColumns(spec, np.array([found[i] for i in indices]), shape)


def _scalar_shape(spec: TensorSpec) -> tuple[int, ...]:
    dims = spec.shape[1:]
    if not dims:
        return ()
    if len(dims) == 1 and (dims[0] == 1 or not isinstance(dims[0], int) or dims[0] < 0):
        return (1,)
    raise FileError(
        f"input {spec.name!r} takes {list(spec.shape)} per batch: name its columns "
        f"'{spec.name}_0', '{spec.name}_1', ..."
    )


def _parse_header(raw: bytes) -> list[str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError("the header line is not valid UTF-8") from None
    return [label.strip() for label in next(csv.reader([text]))]


def _cell(spec: TensorSpec, label: str, text: str) -> Any:
    """One cell for ``spec`` (slow path: strings and booleans, and naming bad cells)."""
    if spec.datatype == "BYTES":
        return text
    value = text.strip()
    if spec.datatype == "BOOL":
        lowered = value.lower()
        if lowered in {"true", "1"}:
            return True
        if lowered in {"false", "0"}:
            return False
        raise InvalidRequest(f"column {label!r} must be true or false, got {text!r}")
    if not value:
        raise InvalidRequest(f"column {label!r} is empty")
    try:
        return int(value) if spec.dtype.kind in "iu" and _INTEGER.fullmatch(value) else float(value)
    except ValueError:
        raise InvalidRequest(f"column {label!r} is not a number: {text[:40]!r}") from None


class CsvReader:
    label = "line"

    def __init__(self, signature: Signature, *, batch_size: int, max_line_bytes: int) -> None:
        self.signature = signature
        self.batch_size = batch_size
        self.max_line_bytes = max_line_bytes
        self.plan: ColumnPlan | None = None

    def outputs_seen(self, output_bytes_per_row: float) -> None:
        """Windows stay ``batch_size`` lines: parsing, not the model call, is their cost."""

    def windows(self, chunks: Iterable[bytes]) -> Iterator[Window]:
        for first, lines in line_blocks(chunks, self.max_line_bytes, self.batch_size):
            header = 0 if self.plan is not None else self._read_header(lines)
            if self.plan is None:
                continue  # blank lines before the header
            window = self._window(first + header, lines[header:] if header else lines)
            if window.count:
                yield window

    def _read_header(self, lines: Sequence[bytes | None]) -> int:
        """Plan the columns from the first non-blank line; return the index after it."""
        for index, raw in enumerate(lines):
            if raw is None:
                raise FileError(f"the header line is longer than {self.max_line_bytes} bytes")
            if raw.strip():
                self.plan = plan_columns(_parse_header(raw), self.signature)
                return index + 1
        return len(lines)

    def _window(self, first: int, lines: Sequence[bytes | None]) -> Window:
        assert self.plan is not None  # nosec B101  # narrows the type; the header sets the plan before any row
        if lines and self.plan.numeric and None not in lines:
            matrix = self._fast(lines)  # type: ignore[arg-type]
            if matrix is not None:
                numbers = np.arange(first, first + len(lines), dtype=np.int64)
                batch = self._batch(numbers, matrix)
                if batch is not None:
                    return Window(groups=[batch])
        window = Window()
        good_numbers, good_rows = [], []
        for number, raw in enumerate(lines, first):
            if raw is None:
                window.failures.append(Failure(number, too_long(self.max_line_bytes)))
                continue
            if not raw.strip():
                continue
            try:
                good_rows.append(self._slow(raw))
            except InvalidRequest as err:
                window.failures.append(Failure(number, err.message))
                continue
            good_numbers.append(number)
        if not good_rows:
            return window
        try:
            window.groups.append(RowBatch(np.array(good_numbers, np.int64), self._build(good_rows)))
            return window
        except InvalidRequest:
            pass
        kept_numbers, kept_rows = [], []
        for number, row in zip(good_numbers, good_rows, strict=True):
            try:  # which rows does the input type refuse (a fraction for an integer input)?
                self._build([row])
            except InvalidRequest as err:
                window.failures.append(Failure(number, err.message))
                continue
            kept_numbers.append(number)
            kept_rows.append(row)
        if kept_rows:
            window.groups.append(RowBatch(np.array(kept_numbers, np.int64), self._build(kept_rows)))
        return window

    def _build(self, rows: list[list[Any]]) -> dict[str, np.ndarray]:
        assert self.plan is not None  # nosec B101  # narrows the type; the header sets the plan before any row
        if self.plan.numeric and not self.plan.wide_integers:
            return self._inputs(np.array(rows, dtype=np.float64))
        return self._inputs_from_cells(rows)

    def _fast(self, lines: Sequence[bytes]) -> np.ndarray | None:
        """All lines through a C parser, or ``None`` if any line is not clean numbers.

        No decoding and no Python per line: simdjson takes the lines joined in one pass
        (about 5x faster than loadtxt), and when it declines (a quoted cell, ``.5``, ``nan``,
        a blank line) numpy's loadtxt takes them as one text, with quote handling (a third
        dearer) only when the window holds a quote.
        """
        assert self.plan is not None  # nosec B101  # narrows the type; the header sets the plan before any row
        shape = (len(lines), len(self.plan.header))
        matrix = parse_csv_matrix(lines, shape[1])
        if matrix is None:
            text = b"\n".join(lines)
            if not text.strip():
                return None  # blank lines only: not rows, and numpy would warn of no data
            try:
                matrix = np.loadtxt(
                    io.BytesIO(text),
                    delimiter=",",
                    dtype=np.float64,
                    ndmin=2,
                    comments=None,
                    quotechar='"' if b'"' in text else None,
                    encoding="utf-8",
                )
            except (ValueError, UnicodeDecodeError):
                return None
        if matrix.shape != shape:
            return None
        if self.plan.wide_integers and matrix.size and np.abs(matrix).max() >= _EXACT_IN_FLOAT64:
            return None  # parsed again exactly, cell by cell
        return matrix

    def _batch(self, numbers: np.ndarray, matrix: np.ndarray) -> RowBatch | None:
        try:
            return RowBatch(numbers, self._inputs(matrix))
        except InvalidRequest:
            return None  # a value the input type refuses (a fraction for an integer input)

    def _slow(self, raw: bytes) -> list[Any]:
        """One line as cells converted for their inputs; ``InvalidRequest`` names the problem."""
        assert self.plan is not None  # nosec B101  # narrows the type; the header sets the plan before any row
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("the line is not valid UTF-8") from None
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as err:
            raise InvalidRequest(f"not a valid CSV line: {first_line(err)}") from None
        header = self.plan.header
        if len(cells) != len(header):
            raise InvalidRequest(f"the line has {len(cells)} fields; the header has {len(header)}")
        row: list[Any] = [None] * len(header)
        for item in self.plan.inputs:
            for column in item.columns.tolist():
                row[column] = _cell(item.spec, header[column], cells[column])
        return row

    def _inputs(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        assert self.plan is not None  # nosec B101  # narrows the type; the header sets the plan before any row
        inputs = {}
        for item in self.plan.inputs:
            values = item.of(matrix).reshape((len(matrix), *item.row_shape))
            array = to_array(values, item.spec)
            check_shape(array, item.spec)
            inputs[item.spec.name] = array
        return inputs

    def _inputs_from_cells(self, rows: list[list[Any]]) -> dict[str, np.ndarray]:
        assert self.plan is not None  # nosec B101  # narrows the type; the header sets the plan before any row
        inputs = {}
        for item in self.plan.inputs:
            columns = item.columns.tolist()
            values = np.array([[row[c] for c in columns] for row in rows], dtype=object)
            values = values.reshape((len(rows), *item.row_shape))
            array = to_array(
                values if item.spec.datatype == "BYTES" else values.tolist(), item.spec
            )
            check_shape(array, item.spec)
            inputs[item.spec.name] = array
        return inputs


def _columns(name: str, row_shape: tuple[int, ...]) -> list[str]:
    return [name] if not row_shape else [f"{name}_{i}" for i in range(math.prod(row_shape))]


def _text_rows(matrix: np.ndarray) -> list[bytes]:
    """Each row of a 2-D array as comma-separated text, formatted in C where possible."""
    if matrix.shape[1] == 0:
        return [b""] * len(matrix)
    kind = matrix.dtype.kind
    if kind in "iub" or (kind == "f" and bool(np.isfinite(matrix).all())):
        blob = orjson.dumps(np.ascontiguousarray(matrix), option=orjson.OPT_SERIALIZE_NUMPY)
        return blob[2:-2].split(b"],[")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in matrix.tolist():
        writer.writerow(
            [
                v.decode("utf-8", "replace")
                if isinstance(v, bytes)
                else str(v).lower()
                if isinstance(v, float) and not math.isfinite(v)
                else v
                for v in row
            ]
        )
    return [line.encode() for line in buffer.getvalue().split("\n")[:-1]]


class CsvWriter:
    content_type = CONTENT_TYPE
    label = "line"
    hold_first_part = False

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self._layout: dict[str, tuple[int, ...]] | None = None  # output -> per-row shape
        self._header_sent = False

    def _header(self, layout: Mapping[str, tuple[int, ...]]) -> bytes:
        labels = ["line"]
        for name, shape in layout.items():
            labels.extend(_columns(name, shape))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(labels)
        return buffer.getvalue().encode()

    def encode(self, batch: RowBatch, outputs: Mapping[str, np.ndarray]) -> Encoded:
        layout = {name: tuple(array.shape[1:]) for name, array in outputs.items()}
        if self._layout is None:
            self._layout = layout
        elif layout != self._layout:
            reason = (
                f"the outputs have per-row shapes {layout} but earlier rows had {self._layout}; "
                "a CSV needs the same columns on every line: use JSON Lines for this model"
            )
            return Encoded.refuse_all(batch.positions, reason)
        n = len(batch.positions)
        positions = decimals(batch.positions)
        columns = [_text_rows(array.reshape(n, -1)) for array in outputs.values()]
        cells = columns[0]  # the common case: one output, a row's cells already joined
        if len(columns) > 1:
            cells = list(map(b",".join, zip(*columns, strict=True)))
        return Encoded.from_pairs(batch.positions, positions, cells, middle=b",", closing=b"\n")

    def prefix(self) -> bytes:
        if self._header_sent or self._layout is None:
            return b""
        self._header_sent = True
        return self._header(self._layout)

    def finish(self, rows_out: int) -> tuple[bytes, bytes]:
        if self._header_sent:
            return b"", b""
        self._header_sent = True
        layout = self._layout or {spec.name: _fixed(spec) for spec in self.signature.outputs}
        return b"", self._header(layout)


def _fixed(spec: TensorSpec) -> tuple[int, ...]:
    """A per-row shape for the header of a file with no rows: unknown sizes count as one."""
    return tuple(d if isinstance(d, int) and d >= 0 else 1 for d in spec.shape[1:])

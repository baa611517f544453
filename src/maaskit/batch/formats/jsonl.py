"""JSON Lines: one request per line, one reply per line.

A line is what the API's simple shape takes: ``{"input": X}``, ``{"inputs": {"name": X}}``,
or a bare array ``X`` (single-input models), or a bare string (text models). ``X`` is one row (the input's rank less the
batch dimension) or a batch of rows (full rank); the reply keeps the same form::

    {"line": 7, "outputs": {"probabilities": [0.1, 0.9]}}

Lines whose rows have the same shapes are stacked into one ``session.run`` call; lines of
other shapes (token sequences of another length, say) form their own group in the same
window, and the writer puts every reply back in line order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from maaskit.batch.formats.base import (
    NUMBER_TEXT,
    Encoded,
    Failure,
    RowBatch,
    Window,
    decimals,
    first_line,
    line_blocks,
    too_long,
)
from maaskit.batch.formats.numbers import parse_json_rows
from maaskit.errors import InvalidRequest
from maaskit.onnxmodel.signature import Signature
from maaskit.onnxmodel.tensors import check_names, prepare_inputs
from maaskit.serving.protocol import encode_json, parse_simple

CONTENT_TYPE = "application/x-ndjson"
_INPUT_ONLY = frozenset({"input"})
_INPUTS_ONLY = frozenset({"inputs"})


@dataclass(frozen=True)
class _Line:
    number: int
    values: dict[str, Any]  # input name -> nested lists
    batched: bool
    size: int
    shape_key: tuple[tuple[int, ...], ...]


def _shape(value: Any) -> tuple[int, ...]:
    """The shape of a nested list, read along its first elements (ragged lists show later)."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(dims)


class JsonLinesReader:
    label = "line"

    def __init__(self, signature: Signature, *, batch_size: int, max_line_bytes: int) -> None:
        self.signature = signature
        self.batch_size = batch_size
        self.max_line_bytes = max_line_bytes
        self._single = signature.inputs[0].name if len(signature.inputs) == 1 else None
        self._names = frozenset(spec.name for spec in signature.inputs)

    def outputs_seen(self, output_bytes_per_row: float) -> None:
        """Windows stay ``batch_size`` lines: parsing, not the model call, is their cost."""

    def windows(self, chunks: Iterable[bytes]) -> Iterator[Window]:
        for first, lines in line_blocks(chunks, self.max_line_bytes, self.batch_size):
            window = self._fast(first, lines) or self._slow(first, lines)
            if window.count:
                yield window

    # a whole window in C ------------------------------------------------------------

    def _fast(self, first: int, lines: Sequence[bytes | None]) -> Window | None:
        """Every line of a numeric window parsed and stacked at once, or ``None`` (use ``_slow``).

        Anything that is not a window of numeric rows of one shape (text, a bad line, ragged
        rows, a value the input type refuses) sends the whole window to the line-by-line
        path, which names each bad line.
        """
        if None in lines:
            return None
        arrays = self._simd_arrays(lines) or self._orjson_arrays(lines)  # type: ignore[arg-type]
        if arrays is None:
            return None
        forms: set[tuple[bool, int]] = set()
        for spec in self.signature.inputs:
            array = arrays[spec.name]
            rank = len(spec.shape)
            if array.dtype.kind not in "biuf" or rank == 0:
                return None
            if spec.dtype.kind in "iu" and array.dtype.kind == "f":
                return None  # integers numpy made floats (past 2**53): converted exactly per line
            if array.ndim == rank:  # one row per line
                forms.add((False, 1))
            elif array.ndim == rank + 1 and array.shape[1] > 0:  # a batch of rows per line
                forms.add((True, array.shape[1]))
                arrays[spec.name] = array.reshape((-1, *array.shape[2:]))
            else:
                return None
        if len(forms) != 1:
            return None
        batched, size = forms.pop()
        try:
            inputs = prepare_inputs(self.signature, arrays)
        except InvalidRequest:
            return None
        count = len(lines)
        batch = RowBatch(
            positions=np.arange(first, first + count, dtype=np.int64),
            inputs=inputs,
            sizes=np.full(count, size, np.int64),
            batched=np.full(count, batched, np.bool_),
        )
        return Window(groups=[batch])

    def _simd_arrays(self, lines: Sequence[bytes]) -> dict[str, np.ndarray] | None:
        """A single float input's window of bare arrays or ``{"input": array}`` lines, read
        by simdjson into one float64 array (see ``numbers.parse_json_rows``); ``None``: not that.
        """
        if self._single is None or self.signature.inputs[0].dtype.kind != "f":
            return None
        values = _unwrapped(lines)
        if values is None:
            return None
        array = parse_json_rows(values)
        return None if array is None else {self._single: array}

    def _orjson_arrays(self, lines: Sequence[bytes]) -> dict[str, np.ndarray] | None:
        """Each line through ``orjson.loads`` on its own, then stacked by numpy per input.

        One parse of the lines joined into an array would be a little cheaper, but brackets
        left open on one line and closed on the next would then parse as rows that no single
        line holds (``numbers.parse_json_rows`` proves they cannot before it joins lines).
        """
        try:
            bodies = list(map(orjson.loads, lines))
        except orjson.JSONDecodeError:  # a bad line, or a blank one
            return None
        bound = self._bind_window(bodies)
        if bound is None:
            return None
        values, wrapper = bound
        numbers = wrapper is not None and _numbers_only(lines, wrapper)
        arrays: dict[str, np.ndarray] = {}
        for spec in self.signature.inputs:
            # numpy finds a common type slowly; told one, it converts at C speed (6x here)
            dtype = np.float64 if numbers and spec.dtype.kind == "f" else None
            try:
                arrays[spec.name] = np.asarray(values[spec.name], dtype=dtype)
            except (ValueError, TypeError, OverflowError):  # ragged
                return None
        return arrays

    def _bind_window(self, bodies: list[Any]) -> tuple[dict[str, list[Any]], bytes | None] | None:
        """Input name -> one value per line, when every line has the same plain form; with
        the text that wraps each line's value (``b""`` for a bare array; ``None``: several)."""
        if self._single is not None:
            kinds = set(map(type, bodies))
            if kinds == {list}:
                return {self._single: bodies}, b""
            if kinds == {dict} and all(body.keys() == _INPUT_ONLY for body in bodies):
                return {self._single: [body["input"] for body in bodies]}, b'"input"'

        names = self._names
        if all(
            type(body) is dict
            and body.keys() == _INPUTS_ONLY
            and type(body["inputs"]) is dict
            and body["inputs"].keys() == names
            for body in bodies
        ):
            return {name: [body["inputs"][name] for body in bodies] for name in names}, None
        return None

    # line by line -------------------------------------------------------------------

    def _slow(self, first: int, lines: Sequence[bytes | None]) -> Window:
        parsed: list[_Line] = []
        failures: list[Failure] = []
        for number, raw in enumerate(lines, first):
            if raw is None:
                failures.append(Failure(number, too_long(self.max_line_bytes)))
            elif not raw.strip():
                continue  # blank lines are not rows (a trailing newline, say)
            else:
                try:
                    parsed.append(self._parse(number, raw))
                except InvalidRequest as err:
                    failures.append(Failure(number, err.message))
        return self._window(parsed, failures)

    # one line ---------------------------------------------------------------------

    def _parse(self, number: int, raw: bytes) -> _Line:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise InvalidRequest(f"not valid JSON: {first_line(err)}") from None
        if isinstance(body, list | str):
            values = self._bind_single(body)
        elif isinstance(body, dict):
            request = parse_simple(body)
            if request.version is not None or request.alias is not None:
                raise InvalidRequest(
                    "a line cannot choose the model version: the whole file uses one, chosen by "
                    "the key (batch/in/{model}@{version}/...) or the object's metadata"
                )
            values = (
                self._bind_single(request.values[""])
                if "" in request.values
                else dict(request.values)
            )
        else:
            raise InvalidRequest(
                'each line must be a JSON object like {"input": [...]} or '
                '{"inputs": {"name": [...]}}, or a bare array (or a string, for a text model)'
            )
        check_names(self.signature, list(values))
        forms: set[bool] = set()
        sizes: set[int] = set()
        key = []
        for spec in self.signature.inputs:
            shape = _shape(values[spec.name])
            rank = len(spec.shape)
            if rank == 0:
                raise InvalidRequest(
                    f"input {spec.name!r} is a scalar (shape []): a batch file needs inputs with "
                    "a batch dimension to put rows on; call the API once per value instead"
                )
            if len(shape) == rank - 1:
                forms.add(False)
                sizes.add(1)
                key.append(shape)
            elif len(shape) == rank and shape[0] > 0:
                forms.add(True)
                sizes.add(shape[0])
                key.append(shape[1:])
            else:
                raise InvalidRequest(
                    f"input {spec.name!r} must be one row (rank {rank - 1}) or a batch of rows "
                    f"(rank {rank}) for shape {list(spec.shape)}; got a value of shape {list(shape)}"
                )
        if len(forms) > 1 or len(sizes) > 1:
            raise InvalidRequest(
                "the inputs of one line must all be single rows, or all batches of the same length"
            )
        return _Line(number, values, forms.pop(), sizes.pop(), tuple(key))

    def _bind_single(self, value: Any) -> dict[str, Any]:
        if self._single is None:
            names = ", ".join(repr(s.name) for s in self.signature.inputs)
            raise InvalidRequest(
                f"this model takes {len(self.signature.inputs)} inputs ({names}): send them by "
                'name as {"inputs": {"name": ...}}'
            )
        return {self._single: value}

    # a window -----------------------------------------------------------------------

    def _window(self, lines: list[_Line], failures: list[Failure]) -> Window:
        buckets: dict[tuple[tuple[int, ...], ...], list[_Line]] = {}
        for line in lines:
            buckets.setdefault(line.shape_key, []).append(line)
        window = Window(failures=list(failures))
        for bucket in buckets.values():
            try:
                window.groups.append(self._stack(bucket))
                continue
            except InvalidRequest:
                pass
            good: list[_Line] = []
            for line in bucket:  # find the lines that spoil the stack, with their own reasons
                try:
                    self._stack([line])
                    good.append(line)
                except InvalidRequest as err:
                    window.failures.append(Failure(line.number, err.message))
            if good:
                try:
                    window.groups.append(self._stack(good))
                except InvalidRequest:  # still ragged between lines: run them one by one
                    window.groups.extend(self._stack([line]) for line in good)
        return window

    def _stack(self, lines: list[_Line]) -> RowBatch:
        stacked: dict[str, list[Any]] = {spec.name: [] for spec in self.signature.inputs}
        for line in lines:
            for name, value in line.values.items():
                if line.batched:
                    stacked[name].extend(value)
                else:
                    stacked[name].append(value)
        return RowBatch(
            positions=np.fromiter((line.number for line in lines), np.int64, len(lines)),
            inputs=prepare_inputs(self.signature, stacked),
            sizes=np.fromiter((line.size for line in lines), np.int64, len(lines)),
            batched=np.fromiter((line.batched for line in lines), np.bool_, len(lines)),
        )


class JsonLinesWriter:
    content_type = CONTENT_TYPE
    label = "line"
    hold_first_part = False

    def encode(self, batch: RowBatch, outputs: Mapping[str, np.ndarray]) -> Encoded:
        encoded = _fast_encoded(batch, outputs)
        if encoded is not None:
            return encoded
        offsets = batch.offsets()
        records = []
        for i, position in enumerate(batch.positions.tolist()):
            start, stop = int(offsets[i]), int(offsets[i + 1])
            keep = batch.batched is not None and bool(batch.batched[i])
            values = {
                name: array[start:stop] if keep else array[start] for name, array in outputs.items()
            }
            records.append(encode_json({"line": position, "outputs": values}) + b"\n")
        return Encoded.from_records(batch.positions, records)

    def prefix(self) -> bytes:
        return b""

    def finish(self, rows_out: int) -> tuple[bytes, bytes]:
        return b"", b""


def _unwrapped(lines: Sequence[bytes]) -> list[bytes] | None:
    """The value of each line when all are bare, or all are ``{"input": value}`` spelled
    alike (the same text before the value and after it, as one writer makes them)."""
    head = lines[0]
    opening = head.find(b"[")
    if opening < 0:
        return None
    if opening == 0 or not head[:opening].strip():
        return list(lines)
    prefix = head[:opening]
    suffix = head[head.rfind(b"]") + 1 :]
    if prefix.translate(None, b" \t") != b'{"input":' or suffix.strip() != b"}":
        return None
    start, cut = len(prefix), len(suffix)
    if not all(line.startswith(prefix) and line.endswith(suffix) for line in lines):
        return None
    return [line[start : len(line) - cut] for line in lines]


def _numbers_only(lines: Sequence[bytes], wrapper: bytes) -> bool:
    """Whether the lines hold nothing but numbers in arrays (inside ``{wrapper: ...}``): no
    strings, booleans or nulls, which numpy would convert to numbers if told a float type.
    (A string equal to the wrapper would pass this, and then fail to convert.)"""
    text = b"".join(lines)
    if wrapper:
        return not text.replace(wrapper, b"").translate(None, NUMBER_TEXT + b"[],{}:")
    return not text.translate(None, NUMBER_TEXT + b"[],")


def json_rows(array: np.ndarray) -> list[bytes] | None:
    """Each row of ``array`` (along axis 0) as JSON, from one ``orjson`` call over the array,
    the same bytes ``orjson`` writes for each row on its own; ``None`` for arrays it does not
    encode natively (strings) or whose rows would hold empty lists. Returns the rows without
    their ``ndim - 1`` outer brackets (see :func:`brackets`): the caller adds them back.
    """
    if array.dtype.kind not in "biuf" or 0 in array.shape or array.ndim == 0:
        return None
    try:
        blob = orjson.dumps(np.ascontiguousarray(array), option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # a dtype orjson does not serialize natively
        return None
    depth = array.ndim - 1
    opening, closing = brackets(depth)
    return blob[depth + 1 : len(blob) - depth - 1].split(closing + b"," + opening)


def brackets(depth: int) -> tuple[bytes, bytes]:
    return b"[" * depth, b"]" * depth


def _fast_encoded(batch: RowBatch, outputs: Mapping[str, np.ndarray]) -> Encoded | None:
    """One reply line per row, encoded by ``orjson`` an output at a time (not a row at a time),
    when every line is one row and every output is finite numbers; ``None`` otherwise."""
    rows = len(batch.positions)
    if batch.batched is not None and bool(batch.batched.any()):
        return None
    columns: list[tuple[bytes, list[bytes], bytes]] = []
    for name, array in outputs.items():
        if len(array) != rows or (array.dtype.kind == "f" and not bool(np.isfinite(array).all())):
            return None
        encoded = json_rows(array)
        if encoded is None:
            return None
        opening, closing = brackets(array.ndim - 1)
        columns.append((orjson.dumps(name) + b":" + opening, encoded, closing))
    positions = decimals(batch.positions)
    if len(columns) == 1:
        ((key, values, closing),) = columns
        return Encoded.from_pairs(
            batch.positions,
            positions,
            values,
            opening=b'{"line":',
            middle=b',"outputs":{' + key,
            closing=closing + b"}}\n",
        )
    outputs_of_row = [
        b",".join(key + values[i] + closing for key, values, closing in columns)
        for i in range(rows)
    ]
    return Encoded.from_pairs(
        batch.positions,
        positions,
        outputs_of_row,
        opening=b'{"line":',
        middle=b',"outputs":{',
        closing=b"}}\n",
    )

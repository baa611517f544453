"""JSON Lines: one request per line, one reply per line.

A line is what the API's simple shape takes: ``{"input": X}``, ``{"inputs": {"name": X}}``,
or a bare array ``X`` (single-input models). ``X`` is one row (the input's rank less the
batch dimension) or a batch of rows (full rank); the reply keeps the same form::

    {"line": 7, "outputs": {"probabilities": [0.1, 0.9]}}

Lines whose rows have the same shapes are stacked into one ``session.run`` call; lines of
other shapes (token sequences of another length, say) form their own group in the same
window, and the writer puts every reply back in line order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from maaskit.batch.formats.base import (
    Encoded,
    Failure,
    RowBatch,
    Window,
    first_line,
    split_lines,
    too_long,
)
from maaskit.errors import InvalidRequest
from maaskit.protocol import encode_json, parse_simple
from maaskit.signature import Signature
from maaskit.tensors import check_names, prepare_inputs

CONTENT_TYPE = "application/x-ndjson"


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

    def windows(self, chunks: Iterable[bytes]) -> Iterator[Window]:
        lines: list[_Line] = []
        failures: list[Failure] = []
        for number, raw in split_lines(chunks, self.max_line_bytes):
            if raw is None:
                failures.append(Failure(number, too_long(self.max_line_bytes)))
            elif not raw.strip():
                continue  # blank lines are not rows (a trailing newline, say)
            else:
                try:
                    lines.append(self._parse(number, raw))
                except InvalidRequest as err:
                    failures.append(Failure(number, err.message))
            if len(lines) + len(failures) >= self.batch_size:
                yield self._window(lines, failures)
                lines, failures = [], []
        if lines or failures:
            yield self._window(lines, failures)

    # one line ---------------------------------------------------------------------

    def _parse(self, number: int, raw: bytes) -> _Line:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise InvalidRequest(f"not valid JSON: {first_line(err)}") from None
        if isinstance(body, list):
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
                '{"inputs": {"name": [...]}}, or a bare array'
            )
        check_names(self.signature, list(values))
        forms: set[bool] = set()
        sizes: set[int] = set()
        key = []
        for spec in self.signature.inputs:
            shape = _shape(values[spec.name])
            rank = len(spec.shape)
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

""".npy: rows straight from the file's bytes into the model, no parsing.

A plain array ``[rows, ...]`` feeds a single-input model; a structured array (one field per
input, each field a row's shape) feeds a model with several inputs, such as token ids with
their attention mask. The file's header is checked once against the model's signature, so
a wrong dtype or rank refuses the whole file up front; the rows then stream through
``np.frombuffer`` a batch at a time. Object arrays (pickles) are never loaded.

The output is a structured array: a ``row`` field (the input's 0-based row index, which
keeps outputs aligned when a row fails) and one field per model output::

    out = np.load("preds.npy"); out["probabilities"], out["row"]
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from maaskit.batch.formats.base import Encoded, Failure, FileError, RowBatch, Window, first_line
from maaskit.errors import InvalidRequest
from maaskit.onnxmodel.signature import Signature, TensorSpec
from maaskit.onnxmodel.tensors import check_names, check_shape, to_array

CONTENT_TYPE = "application/x-npy"
_MAGIC = b"\x93NUMPY"
_MAX_HEADER_BYTES = 1024 * 1024
WINDOW_BYTES = 4 * 1024 * 1024  # half a read chunk: a window rarely straddles two


def _header(
    buffer: bytes | bytearray, at_end: bool
) -> tuple[np.dtype[Any], tuple[int, ...], int] | None:
    """``(dtype, shape, header length)`` once the buffer holds the whole header, else ``None``."""
    if len(buffer) < 12 and not at_end:
        return None
    if not bytes(buffer[:6]) == _MAGIC:
        raise FileError("not a .npy file: it does not start with the NUMPY magic bytes")
    major = buffer[6] if len(buffer) > 6 else 0
    if major not in (1, 2):
        raise FileError(f".npy format version {major} is not supported: save with numpy.save")
    start = 10 if major == 1 else 12
    if len(buffer) < start:
        raise FileError("the .npy file is truncated inside its header")
    length = int.from_bytes(buffer[8:start], "little")
    if length > _MAX_HEADER_BYTES:
        raise FileError(f"the .npy header claims {length} bytes: not a file numpy wrote")
    if len(buffer) < start + length:
        if at_end:
            raise FileError("the .npy file is truncated inside its header")
        return None
    stream = io.BytesIO(bytes(buffer[: start + length]))
    try:
        version = np.lib.format.read_magic(stream)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = reader(stream, max_header_size=_MAX_HEADER_BYTES)
    except ValueError as err:
        raise FileError(f"the .npy header is not valid: {first_line(err)}") from None
    if dtype.hasobject:
        raise FileError(
            "the .npy file holds Python objects (a pickle), which are never loaded: save a "
            "numeric or string array"
        )
    if fortran_order and len(shape) > 1:
        raise FileError(
            "the .npy array is stored in Fortran order, whose rows cannot be streamed: save "
            "numpy.ascontiguousarray(x)"
        )
    return dtype, tuple(shape), start + length


def row_aligned(read: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    """A ``.npy`` file's bytes, ``read`` in pieces of ``size``, except that the second is cut
    short so that every later piece starts on a row (when ``size`` holds whole rows).

    :class:`NpyReader` reads the rows of a piece in place, but a row split across a piece's
    edge makes it copy the whole next piece to join it: a copy of the file, a piece at a
    time, on the thread that also runs the model. Aligned, only the second piece is copied.
    The header is only peeked at here: a file whose header cannot be read in the first piece
    is read in plain pieces, and the reader says what is wrong with it.
    """
    first = read(size)
    if not first:
        return
    yield first
    try:
        parsed = _header(first, at_end=False)
    except FileError:
        parsed = None
    if parsed is not None:
        dtype, shape, length = parsed
        row_bytes = dtype.itemsize * math.prod(shape[1:]) if shape else 0
        split = (len(first) - length) % row_bytes if row_bytes > 0 and size % row_bytes == 0 else 0
        if split:  # the bytes of a row cut by the first piece's end
            piece = read(size - split)
            if not piece:
                return
            yield piece
    yield from iter(lambda: read(size), b"")


def _check_column(
    spec: TensorSpec, dtype: np.dtype[Any], row_shape: tuple[int, ...], what: str
) -> None:
    """Refuse a dtype or rank that cannot feed ``spec``, before any row is read."""
    sample = np.zeros((1, *row_shape), dtype=dtype)
    try:
        check_shape(sample, spec)
        to_array(sample, spec)
    except InvalidRequest as err:
        raise FileError(
            f"{what} ({dtype.str}, rows of shape {list(row_shape)}): {err.message}"
        ) from None


class NpyReader:
    label = "row"

    def __init__(self, signature: Signature, *, batch_size: int) -> None:
        self.signature = signature
        self.batch_size = batch_size
        self.rows_per_window = batch_size  # grows once the size of a row's outputs is known
        self.rows_declared: int | None = None
        self._row_bytes = 1

    def outputs_seen(self, output_bytes_per_row: float) -> None:
        """Fewer, larger ``session.run`` calls: as many rows a window as ``WINDOW_BYTES`` of
        input and of output hold, never fewer than ``batch_size``. A small model's cost is
        our work per window, not onnxruntime's (a 64-feature MLP: 1024 rows in about 0.1 ms).
        """
        widest = max(self._row_bytes, output_bytes_per_row, 1.0)
        self.rows_per_window = max(self.batch_size, int(WINDOW_BYTES // widest))

    def _layout(self, dtype: np.dtype[Any], shape: tuple[int, ...]) -> np.dtype[Any]:
        """The dtype of one row, after checking the file against the signature."""
        if not shape:
            raise FileError("the .npy file holds a single value (a 0-d array), not rows")
        if dtype.names is None:
            if len(self.signature.inputs) != 1:
                names = ", ".join(repr(s.name) for s in self.signature.inputs)
                raise FileError(
                    f"this model takes {len(self.signature.inputs)} inputs ({names}): save a "
                    "structured array with one field per input"
                )
            spec = self.signature.inputs[0]
            _check_column(spec, dtype, shape[1:], f"the .npy array cannot feed input {spec.name!r}")
            return np.dtype((dtype, shape[1:])) if len(shape) > 1 else dtype
        if len(shape) != 1:
            raise FileError(
                f"a structured .npy array must be 1-D (one record per row); got shape {list(shape)}"
            )
        try:
            check_names(self.signature, list(dtype.names))
        except InvalidRequest as err:
            raise FileError(f"the .npy fields do not match the model: {err.message}") from None
        for spec in self.signature.inputs:
            field = dtype.fields[spec.name][0] if dtype.fields else dtype
            _check_column(
                spec, field.base, field.shape, f"field {spec.name!r} cannot feed its input"
            )
        return dtype

    def _start(
        self, parsed: tuple[np.dtype[Any], tuple[int, ...], int], buffer: bytearray
    ) -> np.dtype[Any]:
        dtype, shape, length = parsed
        row_dtype = self._layout(dtype, shape)
        if row_dtype.itemsize == 0:
            raise FileError(f"the .npy rows hold no values (shape {list(shape)})")
        self.rows_declared = shape[0]
        self._row_bytes = row_dtype.itemsize
        del buffer[:length]
        return row_dtype

    def windows(self, chunks: Iterable[bytes]) -> Iterator[Window]:
        # Only the header, or the bytes of one row split by a chunk's edge, are carried to
        # the next chunk: a chunk's whole rows all go out with it (its last window may be
        # short), so a chunk that starts on a row is read in place. Carrying whole rows
        # instead would join every later chunk to them, a copy of the whole file.
        pending = bytearray()
        row_dtype: np.dtype[Any] | None = None
        seen = 0
        for chunk in chunks:
            if row_dtype is None:
                pending += chunk
                parsed = _header(pending, at_end=False)
                if parsed is None:
                    continue
                row_dtype = self._start(parsed, pending)
                data: bytes | memoryview = bytes(pending)
            else:  # rows are read in place from the chunk, copied only across its edges
                data = bytes(pending) + chunk if pending else chunk
            pending = bytearray()
            view = memoryview(data)
            offset = 0
            whole = len(data) - len(data) % row_dtype.itemsize
            step = self._window_bytes(len(data), row_dtype)
            while offset < whole:
                end = min(offset + step, whole)
                yield self._window(view[offset:end], row_dtype, seen)
                seen += (end - offset) // row_dtype.itemsize
                offset = end
                step = self._window_bytes(len(data), row_dtype)  # grown after the first run
            pending += view[offset:]
        if row_dtype is None:
            if not pending:
                return  # an empty file holds no rows
            parsed = _header(pending, at_end=True)
            assert parsed is not None  # nosec B101  # narrows the type; at the end, _header raises rather than wait
            row_dtype = self._start(parsed, pending)
        count, stray = divmod(len(pending), row_dtype.itemsize)
        if count:
            yield self._window(bytes(pending[: count * row_dtype.itemsize]), row_dtype, seen)
            seen += count
        if stray or seen != self.rows_declared:
            raise FileError(
                f"the .npy file is truncated: its header promises {self.rows_declared} rows, "
                f"the data holds {seen}" + (f" and {stray} stray bytes" if stray else "")
            )

    def _window_bytes(self, chunk_bytes: int, row_dtype: np.dtype[Any]) -> int:
        """A window's bytes: grown, but never past a chunk (memory stays a chunk, a window
        and the parts, never more than the service was configured for)."""
        rows = min(self.rows_per_window, max(self.batch_size, chunk_bytes // row_dtype.itemsize))
        return rows * row_dtype.itemsize

    def _window(self, data: bytes | memoryview, row_dtype: np.dtype[Any], start: int) -> Window:
        rows = np.frombuffer(data, dtype=row_dtype)
        assert self.rows_declared is not None  # nosec B101  # narrows the type; set with the header, before any window
        if start + len(rows) > self.rows_declared:
            raise FileError(
                f"the .npy file holds more data than the {self.rows_declared} rows its header states"
            )
        positions = np.arange(start, start + len(rows), dtype=np.int64)
        try:
            return Window(groups=[RowBatch(positions, self._inputs(rows))])
        except InvalidRequest:
            pass
        window = Window()  # some rows hold values the input type refuses: name them
        good = []
        for i in range(len(rows)):
            try:
                self._inputs(rows[i : i + 1])
                good.append(i)
            except InvalidRequest as err:
                window.failures.append(Failure(int(positions[i]), err.message))
        if good:
            kept = np.array(good)
            window.groups.append(RowBatch(positions[kept], self._inputs(rows[kept])))
        return window

    def _inputs(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        if rows.dtype.names is None:
            spec = self.signature.inputs[0]
            return {spec.name: np.ascontiguousarray(to_array(rows, spec))}
        return {
            spec.name: np.ascontiguousarray(to_array(rows[spec.name], spec))
            for spec in self.signature.inputs
        }


class NpyWriter:
    content_type = CONTENT_TYPE
    label = "row"
    hold_first_part = True

    def __init__(self, signature: Signature) -> None:
        strings = [spec.name for spec in signature.outputs if spec.datatype == "BYTES"]
        if strings:
            raise FileError(
                f"output {strings[0]!r} is a string tensor, which .npy cannot hold without a "
                "pickle: send this file as JSON Lines or CSV"
            )
        self.signature = signature
        self._dtype: np.dtype[Any] | None = None

    def encode(self, batch: RowBatch, outputs: Mapping[str, np.ndarray]) -> Encoded:
        fields: list[Any] = [("row", "<i8")]
        fields.extend(
            (name, array.dtype.newbyteorder("<"), array.shape[1:])
            for name, array in outputs.items()
        )
        dtype = np.dtype(fields)
        if self._dtype is None:
            self._dtype = dtype
        elif dtype != self._dtype:
            reason = (
                f"the outputs have row dtype {dtype} but earlier rows had {self._dtype}; one "
                ".npy array needs the same shape on every row: use JSON Lines for this model"
            )
            return Encoded.refuse_all(batch.positions, reason)
        records = np.empty(len(batch.positions), dtype=dtype)
        records["row"] = batch.positions
        for name, array in outputs.items():
            records[name] = array
        offsets = np.arange(len(records) + 1, dtype=np.int64) * dtype.itemsize
        return Encoded(positions=batch.positions, blob=records.tobytes(), offsets=offsets)

    def prefix(self) -> bytes:
        return b""

    def finish(self, rows_out: int) -> tuple[bytes, bytes]:
        dtype = self._dtype or np.dtype(
            [("row", "<i8")]
            + [
                (
                    spec.name,
                    spec.dtype,
                    tuple(d if isinstance(d, int) and d >= 0 else 0 for d in spec.shape[1:]),
                )
                for spec in self.signature.outputs
            ]
        )
        header = {
            "descr": np.lib.format.dtype_to_descr(dtype),
            "fortran_order": False,
            "shape": (rows_out,),
        }
        stream = io.BytesIO()
        try:
            np.lib.format.write_array_header_1_0(stream, header)
        except ValueError:  # over 64 KiB of header: a very wide structured dtype
            stream = io.BytesIO()
            np.lib.format.write_array_header_2_0(stream, header)
        return stream.getvalue(), b""

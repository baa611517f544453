"""The streaming loop: chunks in, windows of rows through the model, encoded rows out.

Memory is bounded by one read chunk, one window of rows and the sink's part buffer, never
by the file. Each group of rows goes to ``session.run`` in one call; when onnxruntime
refuses a group, its rows are run one by one, so one bad row fails alone and its
neighbours are still predicted. Rows are written in input order, and every row read ends
up written or failed with a reason (``Accounting.check`` enforces it).

The job knows nothing about S3: chunks are any iterable of bytes and the sink anything
with ``write``/``finish``/``abort``, so the whole loop is testable in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from maaskit.batch.accounting import Accounting
from maaskit.batch.formats import (
    Encoded,
    Failure,
    FileError,
    Reader,
    RowBatch,
    Window,
    Writer,
    make_reader,
    make_writer,
    merge,
)
from maaskit.onnxmodel.signature import Signature
from maaskit.serving.runtime import ModelRunError

COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
EMPTY = "empty"


class Predictor(Protocol):
    """What the job needs of a model (``maaskit.serving.runtime.LoadedModel`` is one)."""

    @property
    def signature(self) -> Signature: ...

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Sink(Protocol):
    """Where encoded bytes go (``maaskit.registry.store.MultipartWriter`` is one)."""

    def write(self, data: bytes) -> None: ...

    def finish(self, preamble: bytes = b"") -> str: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class JobConfig:
    batch_size: int = 1024
    max_line_bytes: int = 6 * 1024 * 1024
    max_listed_failures: int = 1000


@dataclass
class JobStats:
    chunks_read: int = 0
    bytes_read: int = 0
    windows: int = 0
    model_calls: int = 0
    fallback_groups: int = 0  # groups onnxruntime refused, then run row by row
    bytes_written: int = 0
    read_s: float = 0.0
    parse_s: float = 0.0
    model_s: float = 0.0
    write_s: float = 0.0

    def timings_ms(self) -> dict[str, float]:
        return {
            "read": round(self.read_s * 1000, 3),
            "parse": round(self.parse_s * 1000, 3),
            "model": round(self.model_s * 1000, 3),
            "encode_and_write": round(self.write_s * 1000, 3),
        }


@dataclass
class JobResult:
    status: str
    accounting: Accounting
    stats: JobStats
    label: str  # what a position is called: "line" or "row"
    reason: str | None = None
    output_etag: str | None = None


def _misaligned(outputs: Mapping[str, np.ndarray], rows: int) -> str | None:
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != rows:
            return (
                f"output {name!r} has shape {list(array.shape)} for {rows} input rows: batch "
                "predictions need outputs whose first dimension follows the input rows"
            )
    return None


class _Loop:
    def __init__(self, model: Predictor, reader: Reader, writer: Writer, stats: JobStats) -> None:
        self.model = model
        self.reader = reader
        self.writer = writer
        self.stats = stats
        self._sized = False

    def chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        iterator = iter(chunks)
        while True:
            started = time.perf_counter()
            chunk = next(iterator, None)
            self.stats.read_s += time.perf_counter() - started
            if chunk is None:
                return
            self.stats.chunks_read += 1
            self.stats.bytes_read += len(chunk)
            yield chunk

    def predict(self, group: RowBatch) -> tuple[list[Encoded], list[Failure]]:
        started = time.perf_counter()
        try:
            outputs = self.model.run(group.inputs)
        except ModelRunError as err:
            self.stats.model_s += time.perf_counter() - started
            if len(group) == 1:
                return [], [Failure(int(group.positions[0]), err.message)]
            self.stats.fallback_groups += 1
            pieces: list[Encoded] = []
            failures: list[Failure] = []
            for i in range(len(group)):
                one_pieces, one_failures = self.predict(group.take([i]))
                pieces.extend(one_pieces)
                failures.extend(one_failures)
            return pieces, failures
        self.stats.model_s += time.perf_counter() - started
        self.stats.model_calls += 1
        problem = _misaligned(outputs, group.model_rows)
        if problem is not None:
            return [], [Failure(int(p), problem) for p in group.positions.tolist()]
        if not self._sized:  # once: what a row's outputs weigh sizes the windows that follow
            self._sized = True
            weight = sum(array.nbytes for array in outputs.values()) / max(group.model_rows, 1)
            self.reader.outputs_seen(weight)
        encoded = self.writer.encode(group, outputs)
        return [encoded], encoded.refused

    def consume(
        self,
        windows_of: Callable[[Iterable[bytes]], Iterator[Window]],
        chunks: Iterable[bytes],
        accounting: Accounting,
        sink: Sink,
    ) -> None:
        """Every window through the model and into the sink, in order, accounting for each row."""
        stats = self.stats
        windows = windows_of(self.chunks(chunks))
        while True:
            started, read_before = time.perf_counter(), stats.read_s
            window = next(windows, None)
            stats.parse_s += (time.perf_counter() - started) - (stats.read_s - read_before)
            if window is None:
                return
            stats.windows += 1
            accounting.received(window.count)
            pieces: list[Encoded] = []
            failures = list(window.failures)
            for group in window.groups:
                group_pieces, group_failures = self.predict(group)
                pieces.extend(group_pieces)
                failures.extend(group_failures)
            started = time.perf_counter()
            data, written = merge(pieces)
            accounting.wrote(written)
            accounting.failed(failures)
            prefix = self.writer.prefix()
            if prefix:  # once, at most: no copy of every window for it
                data = prefix + data
            if data:
                sink.write(data)
                stats.bytes_written += len(data)
            stats.write_s += time.perf_counter() - started


def run_job(
    model: Predictor,
    fmt: str,
    chunks: Iterable[bytes],
    sink: Sink,
    config: JobConfig | None = None,
    *,
    before_commit: Callable[[], None] | None = None,
) -> JobResult:
    """Predict every row of ``chunks`` (a file in format ``fmt``) into ``sink``.

    ``before_commit`` runs just before the sink makes the output visible; raising there
    (the source changed meanwhile, say) abandons the output.
    """
    config = config or JobConfig()
    accounting = Accounting(max_listed=config.max_listed_failures)
    stats = JobStats()
    label = "row" if fmt == "npy" else "line"
    try:
        writer = make_writer(fmt, model.signature)
        reader = make_reader(
            fmt, model.signature, batch_size=config.batch_size, max_line_bytes=config.max_line_bytes
        )
        _Loop(model, reader, writer, stats).consume(reader.windows, chunks, accounting, sink)
        if accounting.rows_in == 0:
            sink.abort()
            return JobResult(
                EMPTY, accounting, stats, label, reason="the file holds no rows: nothing to predict"
            )
        started = time.perf_counter()
        preamble, trailer = writer.finish(accounting.rows_out)
        if trailer:
            sink.write(trailer)
        stats.bytes_written += len(preamble) + len(trailer)
        if before_commit is not None:
            before_commit()
        etag = sink.finish(preamble)
        stats.write_s += time.perf_counter() - started
    except FileError as err:
        sink.abort()
        accounting.discard_output()
        accounting.check()
        return JobResult(FAILED, accounting, stats, label, reason=err.message)
    except BaseException:
        sink.abort()
        raise
    accounting.check()
    status = COMPLETED if accounting.rows_failed == 0 else COMPLETED_WITH_ERRORS
    return JobResult(status, accounting, stats, label, output_etag=etag)

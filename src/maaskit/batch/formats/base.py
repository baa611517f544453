"""What every batch format shares: rows in flight, failures, encoded output, line splitting.

Readers turn a stream of byte chunks into *windows*: a contiguous span of positions (line
numbers, or row indices for ``.npy``) split into the rows that parsed, stacked into groups
that can each go to ``session.run`` in one call, and the rows that did not parse, with a
reason. Writers turn a group and its outputs into bytes plus per-row offsets, so rows from
several groups (or from a row-by-row fallback) can be put back in input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import orjson

from maaskit.errors import InvalidRequest

# The bytes of JSON numbers (and the blanks between them): a window of text that holds no
# other byte holds no strings, booleans or nulls, whatever its brackets and commas say.
NUMBER_TEXT = b"0123456789+-.eE \t"


class FileError(InvalidRequest):
    """The file as a whole cannot be processed (header, dtype, truncation): no row is predicted."""


@dataclass(frozen=True)
class Failure:
    """One accounted row that produced no output, and why."""

    position: int
    reason: str


@dataclass
class RowBatch:
    """Rows that parsed, stacked along axis 0: one position per accounted row.

    A JSON line may carry a batch of several model rows (``sizes``) and may or may not keep
    that batch dimension in its reply (``batched``); every other format has one model row
    per position and leaves both as ``None``.
    """

    positions: np.ndarray
    inputs: dict[str, np.ndarray]
    sizes: np.ndarray | None = None
    batched: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def model_rows(self) -> int:
        return len(self.positions) if self.sizes is None else int(self.sizes.sum())

    def offsets(self) -> np.ndarray:
        """Model-row offset of each position, plus the total at the end."""
        if self.sizes is None:
            return np.arange(len(self.positions) + 1, dtype=np.int64)
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def take(self, indices: Sequence[int]) -> RowBatch:
        """The sub-batch of the given positions (by index into this batch)."""
        picked = np.asarray(indices, dtype=np.int64)
        if self.sizes is None:
            rows = picked
        else:
            offsets = self.offsets()
            rows = np.concatenate(
                [np.arange(offsets[i], offsets[i + 1]) for i in picked] or [np.empty(0, np.int64)]
            )
        return RowBatch(
            positions=self.positions[picked],
            inputs={name: array[rows] for name, array in self.inputs.items()},
            sizes=None if self.sizes is None else self.sizes[picked],
            batched=None if self.batched is None else self.batched[picked],
        )


@dataclass
class Window:
    """A contiguous span of positions: groups that parsed, and failures that did not."""

    groups: list[RowBatch] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(group) for group in self.groups) + len(self.failures)


@dataclass
class Encoded:
    """Output bytes for some rows, in ``positions`` order.

    Row ``i``'s bytes are ``records[i]`` when the writer made one record per row (text), or
    ``blob[offsets[i]:offsets[i + 1]]`` (fixed-size rows). They are looked up only when rows of
    several pieces must be interleaved; a window of one piece is written as its blob.
    """

    positions: np.ndarray
    blob: bytes
    offsets: np.ndarray | None = None
    records: Sequence[bytes] | None = None
    refused: list[Failure] = field(default_factory=list)

    @classmethod
    def refuse_all(cls, positions: np.ndarray, reason: str) -> Encoded:
        """No output for these rows: each goes to the report with ``reason``."""
        return cls(
            positions=positions[:0],
            blob=b"",
            records=[],
            refused=[Failure(int(p), reason) for p in positions.tolist()],
        )

    @classmethod
    def from_records(cls, positions: np.ndarray, records: list[bytes]) -> Encoded:
        return cls(positions=positions, blob=b"".join(records), records=records)

    @classmethod
    def from_pairs(
        cls,
        positions: np.ndarray,
        firsts: Sequence[bytes],
        seconds: Sequence[bytes],
        *,
        opening: bytes = b"",
        middle: bytes,
        closing: bytes,
    ) -> Encoded:
        """Row ``i``'s record is ``opening + firsts[i] + middle + seconds[i] + closing``."""
        if not len(positions) == len(firsts) == len(seconds):
            raise ValueError(
                f"{len(positions)} rows, {len(firsts)} first and {len(seconds)} second pieces"
            )
        records = _Pairs(firsts, seconds, opening, middle, closing)
        return cls(positions=positions, blob=records.joined(), records=records)

    def record(self, index: int) -> bytes:
        if self.records is not None:
            return self.records[index]
        if self.offsets is None:
            raise ValueError("an Encoded needs records or offsets")
        return self.blob[self.offsets[index] : self.offsets[index + 1]]


@dataclass(frozen=True)
class _Pairs(Sequence[bytes]):
    """Records ``opening + firsts[i] + middle + seconds[i] + closing`` (a row's line number
    and its encoded outputs), never made one by one: :meth:`joined` builds the window's bytes
    in two C-level joins, a third of the cost of formatting each record in Python; a record
    is made only if it is looked up (when pieces interleave)."""

    firsts: Sequence[bytes]
    seconds: Sequence[bytes]
    opening: bytes
    middle: bytes
    closing: bytes

    def joined(self) -> bytes:
        if not self.firsts:
            return b""
        records = map(self.middle.join, zip(self.firsts, self.seconds, strict=True))
        return self.opening + (self.closing + self.opening).join(records) + self.closing

    def __len__(self) -> int:
        return len(self.firsts)

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        return self.opening + self.firsts[index] + self.middle + self.seconds[index] + self.closing


def decimals(positions: np.ndarray) -> list[bytes]:
    """Each integer as its decimal text, from one ``orjson`` call: formatting ``%d`` row by
    row cost twice as much."""
    if not len(positions):
        return []
    text = orjson.dumps(np.ascontiguousarray(positions), option=orjson.OPT_SERIALIZE_NUMPY)
    return text[1:-1].split(b",")


def merge(pieces: list[Encoded]) -> tuple[bytes, int]:
    """The rows of all pieces as one blob in position order, and how many rows that is."""
    pieces = [piece for piece in pieces if len(piece.positions)]
    if not pieces:
        return b"", 0
    if len(pieces) == 1:
        return pieces[0].blob, len(pieces[0].positions)
    positions = np.concatenate([piece.positions for piece in pieces])
    owner = np.concatenate([np.full(len(p.positions), i) for i, p in enumerate(pieces)])
    index = np.concatenate([np.arange(len(p.positions)) for p in pieces])
    order = np.argsort(positions, kind="stable")
    records = [pieces[owner[k]].record(int(index[k])) for k in order]
    return b"".join(records), len(order)


class Reader(Protocol):
    """Parses a stream of chunks into windows of at most ``batch_size`` positions."""

    label: str  # what a position is called in reports: "line" or "row"

    def windows(self, chunks: Iterable[bytes]) -> Iterator[Window]: ...

    def outputs_seen(self, output_bytes_per_row: float) -> None:
        """What a row's outputs weigh, from the first call: a reader may size windows by it."""
        ...


class Writer(Protocol):
    """Encodes outputs in the input's format."""

    content_type: str
    label: str
    hold_first_part: bool  # the header is known only at the end (.npy)

    def encode(self, batch: RowBatch, outputs: Mapping[str, np.ndarray]) -> Encoded: ...

    def prefix(self) -> bytes:
        """Bytes that must precede the rows encoded so far (once), e.g. a CSV header."""
        ...

    def finish(self, rows_out: int) -> tuple[bytes, bytes]:
        """``(preamble, trailer)``: bytes to put before everything, and after it."""
        ...


def line_blocks(
    chunks: Iterable[bytes], max_line_bytes: int, size: int
) -> Iterator[tuple[int, list[bytes | None]]]:
    """``(first line number, lines)``: every line, in blocks of ``size`` consecutive lines.

    Lines are 1-based, without their line break (LF or CRLF); blank lines are kept,
    so a line's number is ``first + index``. A line longer than ``max_line_bytes`` is ``None``
    and never held whole, so memory stays bounded by the chunk size and the limit. A chunk
    is split in C (``bytes.split``); Python touches a line only when it ends in CR or is
    over-long, so a reader can hand a whole block to a C parser.
    """
    carry = b""
    skipping = False  # inside an over-long line
    pending: list[bytes | None] = []
    first = 1
    for chunk in chunks:
        if not chunk:
            continue
        # the carried start of a line joins the chunk's first line only: the chunk is not copied
        parts: list[bytes | None] = chunk.split(b"\n")  # type: ignore[assignment]
        carriage = b"\r" in chunk or b"\r" in carry
        if carry:
            parts[0] = carry + parts[0]  # type: ignore[operator]
        carry = parts.pop()  # type: ignore[assignment]
        if parts:
            if skipping:
                skipping = False
                parts[0] = None
            pending.extend(_clean(parts, max_line_bytes, carriage))
        if len(carry) > max_line_bytes:
            skipping = True
            carry = b""
        if len(pending) >= size:
            whole = len(pending) - len(pending) % size
            for start in range(0, whole, size):
                yield first, pending[start : start + size]
                first += size
            pending = pending[whole:]
    if skipping or carry:
        pending.extend(_clean([None if skipping else carry], max_line_bytes, True))
    for start in range(0, len(pending), size):
        yield first, pending[start : start + size]
        first += size


def _clean(parts: list[bytes | None], max_line_bytes: int, carriage: bool) -> list[bytes | None]:
    """Over-long lines as ``None``, CR line ends dropped: a Python pass only when needed."""
    known = parts[1:] if parts[0] is None else parts  # only the first can be None yet
    if max(map(len, known), default=0) > max_line_bytes:  # type: ignore[arg-type]
        parts = [None if p is None or len(p) > max_line_bytes else p for p in parts]
    if carriage:
        parts = [p[:-1] if p is not None and p.endswith(b"\r") else p for p in parts]
    return parts


def split_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` for each line, as :func:`line_blocks` numbers them."""
    for first, lines in line_blocks(chunks, max_line_bytes, 4096):
        yield from enumerate(lines, first)


def too_long(max_line_bytes: int) -> str:
    return (
        f"the line is longer than {max_line_bytes} bytes (MAASKIT_MAX_REQUEST_MB): "
        "split it into several lines"
    )


def first_line(message: object) -> str:
    text = str(message).strip()
    return text.splitlines()[0][:300] if text else ""

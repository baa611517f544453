"""Readers and writers for each batch format: JSON Lines, CSV with a header, and .npy."""

from __future__ import annotations

from maaskit.batch.formats.base import (
    Encoded,
    Failure,
    FileError,
    Reader,
    RowBatch,
    Window,
    Writer,
    line_blocks,
    merge,
    split_lines,
)
from maaskit.batch.formats.csv import CsvReader, CsvWriter
from maaskit.batch.formats.jsonl import JsonLinesReader, JsonLinesWriter
from maaskit.batch.formats.npy import NpyReader, NpyWriter
from maaskit.onnxmodel.signature import Signature

__all__ = [
    "Encoded",
    "Failure",
    "FileError",
    "Reader",
    "RowBatch",
    "Window",
    "Writer",
    "content_type",
    "holds_first_part",
    "line_blocks",
    "make_reader",
    "make_writer",
    "merge",
    "split_lines",
]


_WRITERS: dict[str, type[JsonLinesWriter] | type[CsvWriter] | type[NpyWriter]] = {
    "jsonl": JsonLinesWriter,
    "csv": CsvWriter,
    "npy": NpyWriter,
}


def content_type(fmt: str) -> str:
    return _WRITERS[fmt].content_type


def holds_first_part(fmt: str) -> bool:
    """Whether the output's header is known only at the end (so its first part waits)."""
    return _WRITERS[fmt].hold_first_part


def make_reader(fmt: str, signature: Signature, *, batch_size: int, max_line_bytes: int) -> Reader:
    if fmt == "jsonl":
        return JsonLinesReader(signature, batch_size=batch_size, max_line_bytes=max_line_bytes)
    if fmt == "csv":
        return CsvReader(signature, batch_size=batch_size, max_line_bytes=max_line_bytes)
    if fmt == "npy":
        return NpyReader(signature, batch_size=batch_size)
    raise ValueError(f"unknown batch format {fmt!r}")


def make_writer(fmt: str, signature: Signature) -> Writer:
    """A writer for ``fmt``; raises ``FileError`` if the model's outputs cannot be written in it."""
    if fmt == "jsonl":
        return JsonLinesWriter()
    if fmt == "csv":
        return CsvWriter(signature)
    if fmt == "npy":
        return NpyWriter(signature)
    raise ValueError(f"unknown batch format {fmt!r}")

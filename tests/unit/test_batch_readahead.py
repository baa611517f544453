"""Reading ahead on a thread: same chunks, same order, errors where the consumer is."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maaskit.batch.readahead import ReadAhead


@given(chunks=st.lists(st.binary(max_size=8), max_size=30), depth=st.integers(0, 3))
def test_chunks_come_through_unchanged(chunks: list[bytes], depth: int) -> None:
    with ReadAhead(iter(chunks), depth) as reader:
        assert list(reader) == chunks


def test_a_read_error_is_raised_to_the_consumer() -> None:
    def source() -> Iterator[bytes]:
        yield b"first"
        raise ConnectionError("S3 dropped the connection")

    reader = ReadAhead(source())
    assert next(reader) == b"first"
    with pytest.raises(ConnectionError, match="dropped"):
        next(reader)


def test_stopping_early_stops_the_reader_with_bounded_read_ahead() -> None:
    produced: list[int] = []

    def source() -> Iterator[bytes]:
        for i in range(1000):
            produced.append(i)
            yield b"x"

    reader = ReadAhead(source(), depth=2)
    assert next(reader) == b"x"
    reader.close()  # the consumer gave up (a file error, say)
    assert len(produced) <= 5  # one consumed, two queued, one in hand: never the file
    assert not [t for t in threading.enumerate() if t.name == "maaskit-read-ahead"]

"""The row accounting, as a property: whatever a file holds and however it is chunked and
batched, rows out + rows failed = rows in, outputs keep input order, and each failure is
the row it should be."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import onnxruntime as ort
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maaskit.batch.accounting import Accounting, AccountingError
from maaskit.batch.formats import Failure
from maaskit.batch.job import JobConfig, run_job
from maaskit.onnxmodel.signature import Signature, signature_of
from maaskit.serving.runtime import ModelRunError
from tests.support import models

VOCAB = 10


class LookupModel:
    """The ``lookup`` model in onnxruntime: an id outside [-10, 10) makes its batch fail."""

    def __init__(self) -> None:
        data, self.table = models.lookup(vocab=VOCAB)
        self.session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        self.signature: Signature = signature_of(self.session)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            [pooled] = self.session.run(["pooled"], dict(inputs))
        except Exception as err:
            raise ModelRunError(str(err).splitlines()[0][:200]) from None
        return {"pooled": pooled}


@cache
def lookup_model() -> LookupModel:
    return LookupModel()


@dataclass
class MemorySink:
    parts: list[bytes] = field(default_factory=list)
    body: bytes | None = None
    aborted: bool = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def finish(self, preamble: bytes = b"") -> str:
        self.body = preamble + b"".join(self.parts)
        return '"etag"'

    def abort(self) -> None:
        self.aborted = True
        self.parts.clear()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# One row of a file: what it holds, and whether it should come out.
GOOD, MODEL_FAILS, UNPARSEABLE, WRONG_TYPE, BLANK = "good", "model", "parse", "type", "blank"
kinds = st.sampled_from([GOOD, GOOD, GOOD, MODEL_FAILS, UNPARSEABLE, WRONG_TYPE, BLANK])
lengths = st.sampled_from([2, 2, 2, 3])  # a second sequence length makes a second group


def ids(kind: str, length: int, seed: int) -> list[int]:
    values = [(seed + i) % VOCAB for i in range(length)]
    if kind == MODEL_FAILS:
        values[-1] = VOCAB + 5  # only onnxruntime can tell
    return values


def jsonl_line(kind: str, length: int, seed: int) -> bytes:
    if kind == BLANK:
        return b"  "
    if kind == UNPARSEABLE:
        return b'{"input": [1, 2'
    if kind == WRONG_TYPE:
        return orjson.dumps({"input": ["a"] * length})
    return orjson.dumps({"input": ids(kind, length, seed)})


def csv_line(kind: str, length: int, seed: int) -> bytes:
    del length  # a CSV has one width
    if kind == BLANK:
        return b""
    if kind == UNPARSEABLE:
        return b"1,2,3"
    if kind == WRONG_TYPE:
        return b"1.5,2"
    return ",".join(map(str, ids(kind, 2, seed))).encode()


@given(
    rows=st.lists(st.tuples(kinds, lengths, st.integers(0, 9)), max_size=40),
    chunk=st.integers(1, 64),
    batch_size=st.integers(1, 9),
    fmt=st.sampled_from(["jsonl", "csv"]),
)
@settings(max_examples=120)
def test_rows_out_plus_rows_failed_equals_rows_in(
    rows: list[tuple[str, int, int]], chunk: int, batch_size: int, fmt: str
) -> None:
    # Given a text file whose lines are good, bad in one of several ways, or blank
    if fmt == "jsonl":
        lines = [jsonl_line(*row) for row in rows]
        first = 1
        body = b"\n".join(lines)
    else:
        lines = [csv_line(*row) for row in rows]
        first = 2  # line 1 is the header
        body = b"a,b\n" + b"\n".join(lines)
    numbered = [(first + i, kind) for i, (kind, _, _) in enumerate(rows)]
    expected_out = [n for n, kind in numbered if kind == GOOD]
    expected_failed = [n for n, kind in numbered if kind not in (GOOD, BLANK)]
    # When it is read in arbitrary chunks and predicted in arbitrary batches
    sink = MemorySink()
    result = run_job(
        lookup_model(),
        fmt,
        chunked(body, chunk),
        sink,
        JobConfig(batch_size=batch_size, max_line_bytes=1000),
    )
    # Then every row is accounted for: written, in order, or failed with a reason
    accounting = result.accounting
    assert accounting.rows_in == len(expected_out) + len(expected_failed)
    assert accounting.rows_out + accounting.rows_failed == accounting.rows_in
    assert [f.position for f in accounting.failures] == expected_failed
    assert all(f.reason for f in accounting.failures)
    if accounting.rows_in == 0:
        assert (result.status, sink.body, sink.aborted) == ("empty", None, True)
        return
    assert sink.body is not None
    if fmt == "jsonl":
        written = [orjson.loads(line)["line"] for line in sink.body.splitlines()]
    else:
        written = [int(line.split(b",")[0]) for line in sink.body.splitlines()[1:]]
    assert written == expected_out


@given(
    bad_rows=st.sets(st.integers(0, 29), max_size=30),
    chunk=st.integers(1, 200),
    batch_size=st.integers(1, 12),
)
@settings(max_examples=60)
def test_npy_rows_failing_in_the_model_keep_the_others_aligned(
    bad_rows: set[int], chunk: int, batch_size: int
) -> None:
    x = np.tile(np.arange(2, dtype=np.int64), (30, 1))
    for row in bad_rows:
        x[row, 1] = VOCAB + 1
    buffer = io.BytesIO()
    np.save(buffer, x)
    sink = MemorySink()
    result = run_job(
        lookup_model(),
        "npy",
        chunked(buffer.getvalue(), chunk),
        sink,
        JobConfig(batch_size=batch_size),
    )
    assert result.accounting.rows_in == 30
    assert result.accounting.rows_out + result.accounting.rows_failed == 30
    assert [f.position for f in result.accounting.failures] == sorted(bad_rows)
    assert sink.body is not None
    out = np.load(io.BytesIO(sink.body))
    assert out["row"].tolist() == sorted(set(range(30)) - bad_rows)


def test_failure_list_is_capped_but_counts_are_exact() -> None:
    accounting = Accounting(max_listed=2)
    accounting.received(5)
    accounting.failed([Failure(4, "d"), Failure(1, "a"), Failure(3, "c")])
    accounting.wrote(2)
    accounting.check()
    report = accounting.to_dict("line")
    assert report["rows_failed"] == 3
    assert report["failures"] == [{"line": 1, "reason": "a"}, {"line": 3, "reason": "c"}]
    assert report["failures_truncated"] is True


def test_a_file_failing_whole_counts_every_row_read_as_failed() -> None:
    accounting = Accounting()
    accounting.received(7)
    accounting.wrote(6)
    accounting.failed([Failure(2, "bad")])
    accounting.discard_output()
    assert (accounting.rows_out, accounting.rows_failed) == (0, 7)
    assert accounting.to_dict("row")["failures_truncated"] is False
    accounting.check()


def test_unbalanced_counts_are_a_bug_not_a_report() -> None:
    accounting = Accounting()
    accounting.received(2)
    accounting.wrote(1)
    with pytest.raises(AccountingError, match=r"rows in \(2\)"):
        accounting.check()

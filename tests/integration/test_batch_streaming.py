"""Streaming: files read in many chunks and written in many parts, with bounded buffers.

Memory is checked through what the service counts (chunks read, parts uploaded, the
largest buffer held), never through time.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path
from types import ModuleType
from typing import IO

import numpy as np
import orjson
import pytest

from maaskit.batch.job import JobConfig
from maaskit.batch.service import NPY_READ_BYTES, BatchService, SourceChanged
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectInfo, ObjectStore
from maaskit.serving.runtime import Runtime
from tests.conftest import BUCKET
from tests.integration.conftest import cold_start
from tests.support import models
from tests.support.events import FakeContext, s3_event

KB = 1024
MB = 1024 * 1024


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture
def iris(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    data, weights, bias = models.linear(4, 3)
    registry.publish("iris", data)
    return weights, bias


# through the handler, with the smallest settings S3 allows ------------------------------


@pytest.fixture
def batch(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("MAASKIT_BATCH_CHUNK_KB", "64")
    monkeypatch.setenv("MAASKIT_BATCH_PART_MB", "5")
    monkeypatch.setenv("MAASKIT_BATCH_SIZE", "2048")
    return cold_start("functions.batch.app")


def test_a_large_file_is_read_in_chunks_and_written_in_parts(
    batch: ModuleType, store: ObjectStore, iris: tuple
) -> None:
    # Given a 4 MB CSV of 150k rows, made here, whose predictions take over 5 MiB
    weights, bias = iris
    x = np.random.default_rng(7).normal(size=(150_000, 4)).round(4)
    key = "batch/in/iris/large.csv"
    data = ("a,b,c,d\n" + "\n".join(",".join(map(str, row)) for row in x.tolist())).encode()
    store.put(key, data)
    # When its event is delivered
    [outcome] = batch.lambda_handler(
        s3_event("s3_batch_object_created.json", key, size=len(data)), FakeContext()
    )["outcomes"]
    # Then every row is predicted, in order
    assert (outcome["status"], outcome["rows_in"], outcome["rows_out"]) == (
        "completed",
        150_000,
        150_000,
    )
    output = store.get_bytes("batch/out/iris/large.csv")
    lines = output.splitlines()
    assert len(lines) == 150_001
    last = np.array(lines[-1].split(b","), dtype=np.float64)
    assert last[0] == 150_001  # the line number of the last row
    np.testing.assert_allclose(last[1:], x[-1].astype(np.float32) @ weights + bias, rtol=1e-5)
    # And the file was read 64 KiB at a time and written in parts, never held whole
    counters = store.get_json(outcome["report"])["counters"]
    assert counters["bytes_read"] == len(data)
    assert counters["chunks_read"] == math.ceil(len(data) / (64 * KB))
    assert counters["windows"] == math.ceil(150_000 / 2048)
    assert counters["parts_uploaded"] == math.ceil(len(output) / (5 * MB)) == 2
    largest_window = 2048 * max(len(line) + 1 for line in lines)
    # one part filling and one uploading behind it
    assert counters["peak_buffered_bytes"] <= 2 * (5 * MB + largest_window)


# through the service, with parts far smaller than S3 allows (moto told to accept them) ---


@pytest.fixture
def tiny_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 256)


def service(
    store: ObjectStore, registry: Registry, tmp_path: Path, *, chunk: int, part: int
) -> BatchService:
    return BatchService(
        store,
        Runtime(registry, cache_dir=tmp_path / "cache"),
        config=JobConfig(batch_size=64),
        chunk_bytes=chunk,
        part_bytes=part,
    )


def _files(rows: int) -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 4)).round(3)
    csv = "a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in x) + "\n"
    jsonl = b"\n".join(orjson.dumps(r.tolist()) for r in x) + b"\n"
    return {"csv": csv.encode(), "jsonl": jsonl, "npy": npy(x.astype(np.float32))}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npy"])
def test_chunk_and_part_sizes_do_not_change_the_output(
    store: ObjectStore, registry: Registry, iris: tuple, tiny_parts: None, tmp_path: Path, fmt: str
) -> None:
    # Given the same 12000 rows processed whole and in 1000-byte chunks with 4 KiB parts
    body = _files(12_000)[fmt]
    store.put(f"batch/in/iris/whole.{fmt}", body)
    store.put(f"batch/in/iris@1/pieces.{fmt}", body)
    whole = service(store, registry, tmp_path, chunk=64 * MB, part=64 * MB)
    pieces = service(store, registry, tmp_path, chunk=1000, part=4 * KB)
    # When both run
    assert whole.process(f"batch/in/iris/whole.{fmt}").status == "completed"
    assert pieces.process(f"batch/in/iris@1/pieces.{fmt}").status == "completed"
    # Then the outputs are identical, byte for byte
    expected = store.get_bytes(f"batch/out/iris/whole.{fmt}")
    assert store.get_bytes(f"batch/out/iris@1/pieces.{fmt}") == expected
    counters = store.get_json(f"batch/out/iris@1/pieces.{fmt}.report.json")["counters"]
    assert counters["chunks_read"] == math.ceil(len(body) / 1000)
    assert counters["parts_uploaded"] >= len(expected) // (8 * KB)  # parts hold 4-8 KiB each
    # bounded by parts (one filling, one uploading, and for .npy the first, held for its
    # header), each at most a part plus one window of 64 rows, never by the file
    window = 64 * max(len(line) + 1 for line in expected.splitlines()) if fmt != "npy" else 64 * 20
    assert counters["peak_buffered_bytes"] <= 3 * (4 * KB + window) < len(expected) / 5


def test_a_file_failing_after_parts_were_uploaded_leaves_nothing_behind(
    store: ObjectStore, registry: Registry, iris: tuple, tiny_parts: None, tmp_path: Path
) -> None:
    # Given a .npy cut short: the problem shows only at its end, after parts went up
    body = npy(np.ones((3000, 4), np.float32))[:-100]
    store.put("batch/in/iris/cut.npy", body)
    outcome = service(store, registry, tmp_path, chunk=1000, part=4 * KB).process(
        "batch/in/iris/cut.npy"
    )
    # Then there is no output object and no multipart upload left open
    assert outcome.status == "failed"
    assert not store.exists("batch/out/iris/cut.npy")
    assert store.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    report = store.get_json(outcome.report)  # type: ignore[arg-type]
    assert report["counters"]["parts_uploaded"] >= 2
    assert report["rows_in"] == report["rows_failed"] > 0


def test_a_source_replaced_while_read_is_left_to_its_own_event(
    store: ObjectStore,
    registry: Registry,
    iris: tuple,
    tiny_parts: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.put("batch/in/iris/moving.jsonl", b"[1, 2, 3, 4]\n" * 500)
    batch_service = service(store, registry, tmp_path, chunk=1000, part=1 * KB)
    real_head = store.head

    def head_after_overwrite(key: str) -> ObjectInfo | None:
        if key == "batch/in/iris/moving.jsonl":
            store.put(key, b"[4, 3, 2, 1]\n")  # a new version lands mid-run
        return real_head(key)

    monkeypatch.setattr(store, "head", head_after_overwrite)
    outcome = batch_service.process("batch/in/iris/moving.jsonl")
    assert outcome.status == "superseded"
    assert "changed while it was read" in (outcome.reason or "")
    monkeypatch.undo()
    assert not store.exists("batch/out/iris/moving.jsonl")
    assert not store.exists("batch/out/iris/moving.jsonl.report.json")
    assert store.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert SourceChanged.http_status == 409


def test_a_npy_file_is_read_in_pieces_so_the_model_starts_before_a_whole_chunk_arrives(
    store: ObjectStore, registry: Registry, iris: tuple, tmp_path: Path
) -> None:
    # Given a 6.4 MB .npy and a service whose read chunk is 8 MiB
    x = np.random.default_rng(5).normal(size=(400_000, 4)).astype(np.float32)
    body = npy(x)
    store.put("batch/in/iris/big.npy", body)
    batch_service = service(store, registry, tmp_path, chunk=8 * MB, part=8 * MB)
    # When it runs
    outcome = batch_service.process("batch/in/iris/big.npy")
    # Then every row is predicted, in order, from pieces smaller than a chunk
    assert (outcome.status, outcome.rows_out) == ("completed", 400_000)
    output = np.load(io.BytesIO(store.get_bytes("batch/out/iris/big.npy")))
    assert output["row"].tolist() == list(range(400_000))
    counters = store.get_json(outcome.report)["counters"]  # type: ignore[arg-type]
    assert counters["chunks_read"] == math.ceil(len(body) / NPY_READ_BYTES) == 4


@pytest.mark.parametrize("fmt", ["jsonl", "npy"])
def test_the_source_is_checked_once_after_its_last_byte_is_read(
    store: ObjectStore,
    registry: Registry,
    iris: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    # Given a file read in many chunks, and a note of how much was read at each check
    body = _files(3_000)[fmt]
    key = f"batch/in/iris/checked.{fmt}"
    store.put(key, body)
    real_open, real_head = store.open, store.head
    read = [0]
    checked_after: list[int] = []

    class CountingBody:
        def __init__(self, body: IO[bytes]) -> None:
            self.body = body

        def read(self, amt: int = -1) -> bytes:
            data = self.body.read(amt)
            read[0] += len(data)
            return data

        def close(self) -> None:
            self.body.close()

    def counting_open(name: str) -> tuple[IO[bytes] | CountingBody, ObjectInfo]:
        opened, info = real_open(name)
        return (CountingBody(opened) if name == key else opened), info

    def noting_head(name: str) -> ObjectInfo | None:
        if name == key:
            checked_after.append(read[0])
        return real_head(name)

    monkeypatch.setattr(store, "open", counting_open)
    monkeypatch.setattr(store, "head", noting_head)
    # When it runs
    outcome = service(store, registry, tmp_path, chunk=1000, part=8 * MB).process(key)
    # Then the source was checked once, with every byte of it read
    assert (outcome.status, outcome.rows_out) == ("completed", 3_000)
    assert checked_after == [len(body)]


@pytest.mark.parametrize("body", [_files(3_000)["npy"], b"not numpy at all"], ids=["rows", "bad"])
def test_a_redelivered_file_whose_report_arrives_late_is_still_skipped_with_nothing_written(
    store: ObjectStore,
    registry: Registry,
    iris: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
) -> None:
    # Given a file already processed once, its output and report as they were
    key = "batch/in/iris/again.npy"
    store.put(key, body)
    batch_service = service(store, registry, tmp_path, chunk=1000, part=8 * MB)
    first = batch_service.process(key)
    written = {k: store.head(k) for k in ("batch/out/iris/again.npy", first.report or "")}
    # And a previous report that only arrives once the whole file has been read and the
    # source's pre-commit check asked for (which must not wait behind it)
    real_get_json, real_head = store.get_json, store.head
    checked = threading.Event()

    def late_get_json(name: str) -> object:
        if name == first.report:
            assert checked.wait(timeout=30)
        return real_get_json(name)

    def noting_head(name: str) -> ObjectInfo | None:
        if name == key:
            checked.set()
        return real_head(name)

    monkeypatch.setattr(store, "get_json", late_get_json)
    monkeypatch.setattr(store, "head", noting_head)
    # When its event is delivered again
    again = batch_service.process(key)
    monkeypatch.undo()
    # Then it is skipped, and nothing was written: no output, report or upload of this run
    assert again.status == "skipped"
    assert (again.rows_in, again.rows_out) == (first.rows_in, first.rows_out)
    assert {k: store.head(k) for k in written} == written
    assert store.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []

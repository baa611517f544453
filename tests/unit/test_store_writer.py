"""The streaming multipart writer: visible only when finished, nothing left when aborted."""

from __future__ import annotations

import pytest

from maaskit.registry.store import BULK_CHECKSUM, ObjectStore
from tests.conftest import BUCKET


@pytest.fixture(autouse=True)
def _small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 4)


def open_uploads(store: ObjectStore) -> list[str]:
    return [u["Key"] for u in store.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def test_parts_are_invisible_until_finished(store: ObjectStore) -> None:
    writer = store.writer("out/a.bin", content_type="text/plain", part_bytes=10)
    for piece in (b"0123456789", b"abcdefghij", b"KLMNO"):
        writer.write(piece)
    assert writer.parts_uploaded == 2
    assert not store.exists("out/a.bin")
    assert open_uploads(store) == ["out/a.bin"]
    writer.finish()
    assert store.get_bytes("out/a.bin") == b"0123456789abcdefghijKLMNO"
    assert writer.parts_uploaded == 3
    assert open_uploads(store) == []


def test_small_output_is_one_put(store: ObjectStore) -> None:
    writer = store.writer("out/small.bin", content_type="text/plain", part_bytes=1000)
    writer.write(b"hello")
    writer.finish()
    assert (store.get_bytes("out/small.bin"), writer.parts_uploaded) == (b"hello", 0)


def test_a_held_first_part_takes_a_preamble_known_only_at_the_end(store: ObjectStore) -> None:
    writer = store.writer("out/h.bin", content_type="x", part_bytes=4, hold_first_part=True)
    for piece in (b"aaaa", b"bbbb", b"cc"):
        writer.write(piece)
    assert writer.parts_uploaded == 1  # part 2 went up; part 1 waits
    writer.finish(preamble=b"HEADER:")
    assert store.get_bytes("out/h.bin") == b"HEADER:aaaabbbbcc"
    assert writer.peak_buffered_bytes <= 8


def test_abort_leaves_the_key_as_it_was(store: ObjectStore) -> None:
    store.put("out/keep.bin", b"previous")
    writer = store.writer("out/keep.bin", content_type="x", part_bytes=4)
    writer.write(b"new data that spans parts")
    writer.abort()
    assert store.get_bytes("out/keep.bin") == b"previous"
    assert open_uploads(store) == []
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_a_preamble_needs_the_first_part_held(store: ObjectStore) -> None:
    writer = store.writer("out/p.bin", content_type="x", part_bytes=4)
    writer.write(b"aaaabbbb")
    with pytest.raises(ValueError, match="hold_first_part"):
        writer.finish(preamble=b"late")
    assert open_uploads(store) == []


def test_background_uploads_keep_part_order_and_one_part_in_flight(store: ObjectStore) -> None:
    writer = store.writer("out/bg.bin", content_type="x", part_bytes=4, background=True)
    pieces = [bytes([65 + i]) * 4 for i in range(12)]
    for piece in pieces:
        writer.write(piece)
    writer.finish()
    assert store.get_bytes("out/bg.bin") == b"".join(pieces)
    assert writer.parts_uploaded == 12
    assert writer.peak_buffered_bytes <= 8  # the part filling and the one uploading
    assert open_uploads(store) == []


def test_a_failed_background_upload_surfaces_and_leaves_nothing(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = store.writer("out/fail.bin", content_type="x", part_bytes=4, background=True)
    real = store.client.upload_part
    calls = []

    def flaky(**kwargs: object) -> object:
        calls.append(kwargs["PartNumber"])
        if kwargs["PartNumber"] == 2:
            raise ConnectionError("S3 went away")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.client, "upload_part", flaky)

    def write_all() -> None:  # the error shows at the next part handed over, or at finish
        for piece in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
            writer.write(piece)
        writer.finish()

    with pytest.raises(ConnectionError, match="went away"):
        write_all()
    writer.abort()
    assert not store.exists("out/fail.bin")
    assert open_uploads(store) == []


@pytest.mark.parametrize("parts", [1, 3])
def test_bulk_outputs_are_checked_by_s3_with_crc32(store: ObjectStore, parts: int) -> None:
    writer = store.writer("out/bulk.bin", content_type="x", part_bytes=4, checksum=BULK_CHECKSUM)
    for piece in (b"ab",) if parts == 1 else (b"abcd", b"efgh", b"ij"):
        writer.write(piece)
    writer.finish()
    head = store.client.head_object(Bucket=BUCKET, Key="out/bulk.bin", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" in head
    assert "ChecksumSHA256" not in head
    assert writer.parts_uploaded == (0 if parts == 1 else 3)

"""S3 access for the whole core: the only module that calls boto3's S3 client.

Writes can be conditional (``IfNoneMatch``/``IfMatch``), which is how the registry claims
versions and moves aliases without a database, and every put carries a checksum that S3
verifies on arrival: SHA-256 for documents, CRC32 for bulk bytes (model files, whose sha256
the manifest holds and every loader checks; batch outputs).

What is retried (``S3_CONFIG``, set here on purpose rather than left to botocore's legacy
defaults): every call runs in botocore's *standard* retry mode, up to 4 attempts in all,
with exponential backoff and jitter, on throttling (``SlowDown``, 503), S3's transient 500,
502 and 504 answers, and connection errors or timeouts before a reply; it connects within
3 s and waits at most 20 s for each read, so a stuck socket fails inside a 29 s API Gateway
request instead of hanging it. A connection dropped while a body is streaming is not
something botocore retries: :class:`ResumingBody` picks the download up where it stopped
with a ranged GET pinned to the first ETag (up to 3 times), so a reader gets the whole
object as it was or an error, never a short or spliced one. When S3 keeps failing after all
that, reads raise ``StoreUnavailable`` (503); an object that changed mid-read raises
``ObjectChanged``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from maaskit.errors import (
    AlreadyExists,
    CorruptObject,
    NotFound,
    ObjectChanged,
    StoreUnavailable,
    UnreadableObject,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=3,
    read_timeout=20,
    tcp_keepalive=True,
)
RESUME_ATTEMPTS = 3  # ranged re-reads of one body after its connection dropped
_READ_PIECE = 1024 * 1024
_STREAM_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
)


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_UNREADABLE = {"AccessDenied", "403", "InvalidObjectState", "KMS.DisabledException"}
_UNAVAILABLE = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "503",
    "InternalError",
    "500",
    "RequestTimeout",
}


def _read_error(err: ClientError, uri: str) -> Exception:
    """What a failed read means to the caller: gone, refused, or S3 still failing after retries."""
    code = _error_code(err)
    if code in _MISSING:
        return NotFound(f"{uri} does not exist")
    if code in _UNREADABLE:
        return UnreadableObject(f"{uri} could not be read ({code})")
    if code in _UNAVAILABLE:
        return StoreUnavailable(
            f"S3 kept failing to return {uri} ({code}) after retries: try again shortly"
        )
    return err


class ObjectStore:
    """One bucket, with the few operations the core needs.

    The client is created lazily so that importing the core costs nothing, and can be
    injected for tests.
    """

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = boto3.client("s3", config=S3_CONFIG)
        return self._client

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # reads -----------------------------------------------------------------

    def get(self, key: str) -> StoredObject:
        body, info = self.open(key)
        return StoredObject(key=key, body=body.read(), etag=info.etag, metadata=info.metadata)

    def get_bytes(self, key: str) -> bytes:
        return self.get(key).body

    def get_json(self, key: str) -> Any:
        """The decoded JSON at ``key``; ``CorruptObject`` if it is not UTF-8 JSON."""
        data = self.get_bytes(key)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise CorruptObject(f"{self.uri(key)} is not valid JSON ({err})") from None

    def open(self, key: str) -> tuple[IO[bytes], ObjectInfo]:
        """A streaming body, for files too big to hold in memory (resumed if it drops)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            raise _read_error(err, self.uri(key)) from None
        info = ObjectInfo(
            key=key,
            etag=response["ETag"],
            size=int(response.get("ContentLength", 0)),
            metadata=response.get("Metadata", {}),
        )
        return ResumingBody(self, info, response["Body"]), info  # type: ignore[return-value]

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                return None
            raise _read_error(err, self.uri(key)) from None
        return ObjectInfo(
            key=key,
            etag=response["ETag"],
            size=int(response.get("ContentLength", 0)),
            metadata=response.get("Metadata", {}),
        )

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def list_keys(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(key=item["Key"], etag=item["ETag"], size=int(item["Size"]))

    def list_prefixes(self, prefix: str) -> list[str]:
        """The next path segments under ``prefix`` (like ``ls``), without the prefix."""
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for item in page.get("CommonPrefixes", []):
                found.append(item["Prefix"][len(prefix) :].rstrip("/"))
        return found

    # writes ----------------------------------------------------------------

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
        checksum: str = "SHA256",
    ) -> str:
        """Write ``body``; return its ETag. A lost condition raises ``AlreadyExists``.

        S3 checks ``body`` against the ``checksum`` we send (SHA256, or CRC32 for bulk data
        where hashing would cost more CPU than the upload: see :data:`BULK_CHECKSUM`).
        """
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "ChecksumAlgorithm": checksum,
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        if metadata:
            args["Metadata"] = dict(metadata)
        try:
            response = self.client.put_object(**args)
        except ClientError as err:
            if _error_code(err) in _PRECONDITION:
                raise AlreadyExists(f"{self.uri(key)} was written by someone else first") from None
            raise
        return response["ETag"]

    def put_json(self, key: str, value: Any, **kwargs: Any) -> str:
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        return self.put(key, data, content_type="application/json", **kwargs)

    def upload_file(self, key: str, fileobj: IO[bytes], *, content_type: str) -> None:
        """Multipart upload of a large local file (s3transfer chunks it)."""
        self.client.upload_fileobj(
            fileobj, self.bucket, key, ExtraArgs={"ContentType": content_type}
        )

    def writer(
        self,
        key: str,
        *,
        content_type: str,
        part_bytes: int = 8 * 1024 * 1024,
        hold_first_part: bool = False,
        background: bool = False,
        checksum: str = "SHA256",
    ) -> MultipartWriter:
        """A streaming writer to ``key``: nothing is visible there until it finishes."""
        return MultipartWriter(
            self,
            key,
            content_type=content_type,
            part_bytes=part_bytes,
            hold_first_part=hold_first_part,
            background=background,
            checksum=checksum,
        )

    def copy(self, source_key: str, dest_key: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket, Key=dest_key, CopySource={"Bucket": self.bucket, "Key": source_key}
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class ResumingBody:
    """A GET's body that survives a dropped connection: it re-reads from the byte where it
    stopped, with ``IfMatch`` on the first ETag, so the bytes all come from one object."""

    def __init__(self, store: ObjectStore, info: ObjectInfo, body: Any) -> None:
        self.store = store
        self.info = info
        self.resumes = 0
        self._body = body
        self._offset = 0

    def read(self, amt: int | None = None) -> bytes:
        if amt is None:  # in pieces, so a drop loses one piece rather than the whole read
            return b"".join(iter(lambda: self.read(_READ_PIECE), b""))
        while True:
            try:
                data: bytes = self._body.read(amt)
            except _STREAM_ERRORS as err:
                if self._offset >= self.info.size:
                    return b""  # everything arrived; only the end of the stream was lost
                self._resume(err)
                continue
            self._offset += len(data)
            return data

    def _resume(self, err: Exception) -> None:
        uri = self.store.uri(self.info.key)
        if self.resumes >= RESUME_ATTEMPTS:
            raise StoreUnavailable(
                f"the download of {uri} kept dropping ({type(err).__name__}) after "
                f"{RESUME_ATTEMPTS} resumes: try again shortly"
            ) from None
        self.resumes += 1
        with contextlib.suppress(Exception):
            self._body.close()
        try:
            response = self.store.client.get_object(
                Bucket=self.store.bucket,
                Key=self.info.key,
                IfMatch=self.info.etag,
                Range=f"bytes={self._offset}-",
            )
        except ClientError as failed:
            if _error_code(failed) in _PRECONDITION:
                raise ObjectChanged(f"{uri} was replaced while it was being read") from None
            raise _read_error(failed, uri) from None
        self._body = response["Body"]

    def close(self) -> None:
        self._body.close()


MIN_PART_BYTES = 5 * 1024 * 1024  # S3's floor for every part but the last
# S3 verifies a CRC32 as it verifies a SHA256, and it costs a tenth of the CPU: for outputs
# of many megabytes on a sandbox of one or two vCPUs, that is most of the upload's cost.
BULK_CHECKSUM = "CRC32"


class MultipartWriter:
    """Streams an object of any size to one key in parts, holding at most two parts in memory.

    The object appears at its key only when :meth:`finish` completes the multipart upload,
    which S3 does atomically: a reader sees the previous object or the whole new one, never
    a partial file. That is the "write to a temporary place, then move it into place" step
    without the copy: :meth:`abort` (or a crash, cleaned up by the bucket's lifecycle rule for
    incomplete uploads) leaves the key as it was. An output no larger than one part is
    written with a single PUT at the end instead.

    ``hold_first_part`` keeps the first part back until :meth:`finish`, so a header that is
    known only at the end (a ``.npy`` header states the row count) can still go first.
    ``background`` uploads each part on a thread while the caller fills the next one (at
    most one part in flight, so memory grows by one part, not by the file).
    """

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        content_type: str,
        part_bytes: int = 8 * 1024 * 1024,
        hold_first_part: bool = False,
        background: bool = False,
        checksum: str = "SHA256",
    ) -> None:
        self.store = store
        self.checksum = checksum
        self.key = key
        self.content_type = content_type
        self.part_bytes = part_bytes
        self.hold_first_part = hold_first_part
        self.parts_uploaded = 0
        self.bytes_written = 0
        self.peak_buffered_bytes = 0
        self._buffer = bytearray()
        self._held: bytes | None = None
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._next_part = 2 if hold_first_part else 1  # part 1 waits for the preamble
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1) if background else None
        self._in_flight: Future[None] | None = None
        self._in_flight_bytes = 0

    @property
    def _client(self) -> S3Client:
        return self.store.client

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError(f"the writer for {self.store.uri(self.key)} is closed")
        self._buffer += data
        self.bytes_written += len(data)
        self._note_buffered()
        while len(self._buffer) >= self.part_bytes:  # a big write is several parts, in order
            self._flush_buffer()

    def _note_buffered(self) -> None:
        held = len(self._held) if self._held is not None else 0
        total = len(self._buffer) + held + self._in_flight_bytes
        self.peak_buffered_bytes = max(self.peak_buffered_bytes, total)

    def _flush_buffer(self) -> None:
        data = bytes(self._buffer[: self.part_bytes])
        del self._buffer[: self.part_bytes]
        if self.hold_first_part and self._held is None:
            self._held = data
            return
        number, self._next_part = self._next_part, self._next_part + 1
        if self._executor is None:
            self._upload_part(number, data)
            return
        self._wait_in_flight()
        self._start()
        self._in_flight_bytes = len(data)
        self._in_flight = self._executor.submit(self._upload_part, number, data)

    def _wait_in_flight(self) -> None:
        """Let the part being uploaded finish; its error, if any, is raised here."""
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            try:
                in_flight.result()
            finally:
                self._in_flight_bytes = 0

    def _start(self) -> str:
        if self._upload_id is None:
            response = self._client.create_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.key,
                ContentType=self.content_type,
                ChecksumAlgorithm=self.checksum,  # type: ignore[arg-type]
            )
            self._upload_id = response["UploadId"]
        return self._upload_id

    def _upload_part(self, number: int, data: bytes) -> None:
        upload_id = self._start()
        response = self._client.upload_part(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=self.checksum,  # type: ignore[arg-type]
        )
        field = f"Checksum{self.checksum}"
        self._parts.append(
            {"PartNumber": number, "ETag": response["ETag"], field: response[field]}  # type: ignore[literal-required]
        )
        self.parts_uploaded += 1

    def finish(self, preamble: bytes = b"") -> str:
        """Complete the object (``preamble`` first); return its ETag."""
        if self._closed:
            raise ValueError(f"the writer for {self.store.uri(self.key)} is closed")
        self._closed = True
        try:
            self._wait_in_flight()
            if self._upload_id is None:  # everything fits in one request
                body = b"".join((preamble, self._held or b"", self._buffer))  # one copy
                return self.store.put(
                    self.key, body, content_type=self.content_type, checksum=self.checksum
                )
            if self._held is not None:
                self._upload_part(1, preamble + self._held)
                self._held = None
            elif preamble:
                raise ValueError("a preamble needs hold_first_part=True once parts are uploaded")
            if self._buffer:
                self._upload_part(self._next_part, bytes(self._buffer))
                self._buffer.clear()
            parts = sorted(self._parts, key=lambda part: int(part["PartNumber"]))
            response = self._client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
            return response["ETag"]
        except BaseException:
            self._abort_upload()
            raise
        finally:
            self._shutdown()

    def abort(self) -> None:
        """Drop everything written so far; the key keeps whatever it held before."""
        self._closed = True
        self._buffer.clear()
        self._held = None
        self._abort_upload()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _abort_upload(self) -> None:
        with contextlib.suppress(Exception):  # the upload is being dropped anyway
            self._wait_in_flight()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=upload_id
            )

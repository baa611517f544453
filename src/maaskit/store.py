"""S3 access for the whole core: the only module that calls boto3's S3 client.

Writes can be conditional (``IfNoneMatch``/``IfMatch``), which is how the registry claims
versions and moves aliases without a database, and every put carries a SHA-256 checksum
that S3 verifies on arrival.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from maaskit.errors import AlreadyExists, NotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
            self._client = boto3.client("s3")
        return self._client

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # reads -----------------------------------------------------------------

    def get(self, key: str) -> StoredObject:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                raise NotFound(f"{self.uri(key)} does not exist") from None
            raise
        return StoredObject(
            key=key,
            body=response["Body"].read(),
            etag=response["ETag"],
            metadata=response.get("Metadata", {}),
        )

    def get_bytes(self, key: str) -> bytes:
        return self.get(key).body

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def open(self, key: str) -> tuple[IO[bytes], ObjectInfo]:
        """A streaming body, for files too big to hold in memory."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                raise NotFound(f"{self.uri(key)} does not exist") from None
            raise
        info = ObjectInfo(
            key=key,
            etag=response["ETag"],
            size=int(response.get("ContentLength", 0)),
            metadata=response.get("Metadata", {}),
        )
        return response["Body"], info  # type: ignore[return-value]

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                return None
            raise
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
    ) -> str:
        """Write ``body``; return its ETag. A lost condition raises ``AlreadyExists``."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "ChecksumAlgorithm": "SHA256",
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

    def copy(self, source_key: str, dest_key: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket, Key=dest_key, CopySource={"Bucket": self.bucket, "Key": source_key}
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

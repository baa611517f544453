"""Keep a bucket's objects in a folder between runs of the local stack.

Layout: ``{folder}/s3/{bucket}/index.json`` (key → ETag, Content-Type, user metadata) and
one file per object under ``objects/``, named by its percent-encoded key, so any key (with
``/``, ``..`` or a trailing slash) maps to exactly one file. Saving writes only the objects
whose ETag changed and removes the files of deleted objects; restoring uploads everything
back before the bucket's notifications are wired, so nothing is re-triggered.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class BucketFolder:
    """One bucket mirrored in a folder."""

    def __init__(self, folder: str | Path, bucket: str) -> None:
        self.bucket = bucket
        self.root = Path(folder) / "s3" / bucket
        self.objects = self.root / "objects"
        self.index_path = self.root / "index.json"

    def _index(self) -> dict[str, dict[str, Any]]:
        if not self.index_path.is_file():
            return {}
        loaded: dict[str, dict[str, Any]] = json.loads(self.index_path.read_text())
        return loaded

    def _file(self, key: str) -> Path:
        return self.objects / quote(key, safe="")

    def restore(self, s3: Any) -> int:
        """Upload the saved objects into the (empty) bucket; return how many."""
        count = 0
        for key, entry in self._index().items():
            path = self._file(key)
            if not path.is_file():
                continue
            s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=path.read_bytes(),
                ContentType=entry.get("content_type") or "application/octet-stream",
                Metadata=entry.get("metadata") or {},
            )
            count += 1
        return count

    def save(self, s3: Any) -> int:
        """Mirror the bucket into the folder; return how many objects were written."""
        index = self._index()
        current: dict[str, str] = {}
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                current[item["Key"]] = item["ETag"]
        written = 0
        for key, etag in current.items():
            if index.get(key, {}).get("etag") == etag and self._file(key).is_file():
                continue
            response = s3.get_object(Bucket=self.bucket, Key=key)
            _write_atomically(self._file(key), response["Body"].read())
            index[key] = {
                "etag": response["ETag"],
                "content_type": response.get("ContentType"),
                "metadata": response.get("Metadata") or {},
            }
            written += 1
        for key in set(index) - set(current):
            self._file(key).unlink(missing_ok=True)
            del index[key]
        _write_atomically(self.index_path, json.dumps(index, indent=1, sort_keys=True).encode())
        return written

    def keys(self) -> list[str]:
        """The keys saved so far (for messages and tests)."""
        return sorted(unquote(path.name) for path in self.objects.glob("*") if path.is_file())

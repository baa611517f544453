"""Datasets: files under ``datasets/`` that a training spec names by their ``s3://`` URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maaskit.sdk.connection import Connection, content_type


class DatasetOperations(Connection):
    def push_dataset(self, path: str | Path, name: str) -> str:
        """Upload a dataset file; return the ``s3://`` URI a training spec can name."""
        from maaskit.registry.catalog import validate_name

        path = Path(path)
        validate_name(name)
        key = f"datasets/{name}/{path.name}"
        with path.open("rb") as handle:
            self.store.upload_file(key, handle, content_type=content_type(path))
        return self.store.uri(key)

    def list_datasets(self) -> list[dict[str, Any]]:
        return [
            {"key": info.key, "size": info.size, "uri": self.store.uri(info.key)}
            for info in self.store.list_keys("datasets/")
        ]

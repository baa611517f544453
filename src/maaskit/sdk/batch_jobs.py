"""Batch jobs: a file uploaded under ``batch/in/``, and the report the batch function
writes for exactly that upload (matched by its ETag)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maaskit.errors import InvalidRequest, MaaskitError
from maaskit.sdk.connection import Connection, content_type


@dataclass(frozen=True)
class BatchJob:
    model: str
    input_key: str
    etag: str
    output_key: str
    report_keys: tuple[str, ...]
    submitted_at: float


def _etag(value: str) -> str:
    return value.strip('"')


def _mentions(document: Any, wanted: str) -> bool:
    if isinstance(document, dict):
        return any(_mentions(v, wanted) for v in document.values())
    if isinstance(document, list):
        return any(_mentions(v, wanted) for v in document)
    return isinstance(document, str) and _etag(document) == wanted


class BatchOperations(Connection):
    """Submit a file, find its report, wait for it, download the predictions."""

    def submit_batch(self, path: str | Path, model: str) -> BatchJob:
        """Upload ``path`` to ``batch/in/{model}/``; the bucket's batch function takes it."""
        from maaskit.registry.catalog import validate_name

        validate_name(model)
        path = Path(path)
        if path.suffix.lower() not in (".jsonl", ".csv", ".npy"):
            raise InvalidRequest(f"{path.name}: batch files are .jsonl, .csv or .npy")
        from maaskit.batch.keys import IN_PREFIX, parse_batch_key, rejected_report_key

        key = f"{IN_PREFIX}{model}/{path.name}"
        try:
            parsed = parse_batch_key(key)
        except InvalidRequest as err:
            raise InvalidRequest(f"{path.name}: {err}") from None
        submitted_at = time.time()
        with path.open("rb") as handle:
            self.store.upload_file(key, handle, content_type=content_type(path))
        head = self.store.head(key)
        return BatchJob(
            model=model,
            input_key=key,
            etag=_etag(head.etag) if head else "",
            output_key=parsed.output_key,
            # where the batch function writes it, or where it goes if it refuses the key
            report_keys=(parsed.report_key, rejected_report_key(key)),
            submitted_at=submitted_at,
        )

    def batch_report(self, job: BatchJob) -> dict[str, Any] | None:
        """The job's report once written (one from an earlier upload does not count)."""
        for key in job.report_keys:
            info = self.store.head(key)
            if info is None:
                continue
            report: dict[str, Any] = self.store.get_json(key)
            if _mentions(report, job.etag):
                return report
        return None

    def wait_for_batch(
        self,
        job: BatchJob,
        *,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """The job's report; ``on_wait`` is called with the seconds waited so far."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            report = self.batch_report(job)
            if report is not None:
                return report
            if on_wait is not None:
                on_wait(time.monotonic() - started)
            if time.monotonic() > deadline:
                raise MaaskitError(
                    f"no report for {job.input_key} after {timeout_s:g} s: is a batch function "
                    "deployed? (locally, its errors are in the local stack's log)"
                )
            time.sleep(poll_s)

    def download(self, key: str, destination: str | Path) -> Path:
        destination = Path(destination)
        destination.write_bytes(self.store.get_bytes(key))
        return destination

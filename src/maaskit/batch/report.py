"""The report written beside every batch output: what was read, with what, and what became of each row.

The report is also the idempotency record: a file whose report names the same source ETag
and model version has been processed, and a redelivered event stops there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from maaskit import __version__
from maaskit.batch.job import COMPLETED, COMPLETED_WITH_ERRORS, EMPTY, FAILED, JobResult
from maaskit.errors import CorruptObject, NotFound
from maaskit.registry.store import ObjectInfo, ObjectStore

FINAL = frozenset({COMPLETED, COMPLETED_WITH_ERRORS, EMPTY, FAILED})
SCHEMA = "maaskit.batch.report/1"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ModelUsed:
    name: str
    version: int | None
    selected_by: str


def build_report(
    *,
    bucket: str,
    source_key: str,
    fmt: str | None,
    info: ObjectInfo | None,
    model: ModelUsed | None,
    status: str,
    reason: str | None,
    result: JobResult | None,
    output_key: str | None,
    output_etag: str | None,
    writer_stats: Mapping[str, int] | None,
    timings_ms: Mapping[str, float],
    started_at: str,
) -> dict[str, Any]:
    """A JSON-ready report; ``result`` is ``None`` when the file was refused before reading."""
    rows: dict[str, Any] = {
        "rows_in": 0,
        "rows_out": 0,
        "rows_failed": 0,
        "failures": [],
        "failures_truncated": False,
    }
    counters: dict[str, Any] = {}
    label = "row" if fmt == "npy" else "line"
    if result is not None:
        rows = result.accounting.to_dict(result.label)
        label = result.label
        stats = result.stats
        counters = {
            "chunks_read": stats.chunks_read,
            "bytes_read": stats.bytes_read,
            "windows": stats.windows,
            "model_calls": stats.model_calls,
            "fallback_groups": stats.fallback_groups,
            "bytes_written": stats.bytes_written,
        }
        timings_ms = {**timings_ms, **stats.timings_ms()}
    counters.update(writer_stats or {})
    return {
        "schema": SCHEMA,
        "status": status,
        "reason": reason,
        "source": {
            "bucket": bucket,
            "key": source_key,
            "etag": info.etag if info else None,
            "size": info.size if info else None,
            "format": fmt,
        },
        "output": {"key": output_key, "etag": output_etag} if output_etag else None,
        "model": (
            {"name": model.name, "version": model.version, "selected_by": model.selected_by}
            if model
            else None
        ),
        "position": label,  # what "failures[].<position>" counts: a 1-based line or a 0-based row
        **rows,
        "counters": counters,
        "timings_ms": {k: round(v, 3) for k, v in timings_ms.items()},
        "started_at": started_at,
        "finished_at": now(),
        "maaskit_version": __version__,
    }


def read_report(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """The report at ``key``, or ``None`` if there is none (or it is not one of ours)."""
    try:
        report = store.get_json(key)
    except (NotFound, CorruptObject):  # a corrupt report is redone, not trusted
        return None
    return report if isinstance(report, dict) and report.get("schema") == SCHEMA else None


def already_done(report: Mapping[str, Any] | None, etag: str, version: int) -> bool:
    """Whether ``report`` already covers this source content with this model version."""
    if report is None or report.get("status") not in FINAL:
        return False
    model = report.get("model") or {}
    source = report.get("source") or {}
    return source.get("etag") == etag and model.get("version") == version

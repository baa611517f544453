"""The summary of a batch run over a prefix: every input file, and what its report says.

The summary is reconciled from S3 itself, not from the Distributed Map's own results: each
object under the prefix is matched with its report, and a report counts only if it names
the object's current ETag. A file that crashed its function, timed out, or was never
reached has no such report and is listed as such, so nothing is lost from the totals
whether the map succeeded, tolerated failures, or stopped. Reports are read a page at a
time on a few threads, so memory holds a page, the totals and a capped list of problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from maaskit.batch.keys import (
    IN_PREFIX,
    RUNS_PREFIX,
    UnsupportedFormat,
    parse_batch_key,
    rejected_report_key,
)
from maaskit.batch.report import now, read_report
from maaskit.errors import InvalidRequest
from maaskit.registry.safekeys import UnsafeKey, check_segments
from maaskit.registry.store import ObjectInfo, ObjectStore

SCHEMA = "maaskit.batch.summary/1"
NO_REPORT = "no_report"  # no report for the file's current ETag: crashed, timed out or never run
IGNORED = "ignored"  # not a batch file (another suffix)
PROBLEMS = ("failed", "completed_with_errors", NO_REPORT)


def summary_key(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}/summary.json"


def _report_key(key: str) -> str | None:
    try:
        return parse_batch_key(key).report_key
    except UnsupportedFormat:
        return None
    except UnsafeKey:
        return rejected_report_key(key)


def _pages(items: Iterable[ObjectInfo], size: int) -> Iterator[list[ObjectInfo]]:
    iterator = iter(items)
    while page := list(islice(iterator, size)):
        yield page


class Summary:
    """Totals over many files; only the first ``max_listed`` problems are kept by name."""

    def __init__(self, max_listed: int) -> None:
        self.max_listed = max_listed
        self.files: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.problems: list[dict[str, Any]] = []
        self.problem_count = 0

    def add(
        self, info: ObjectInfo, report_key: str | None, report: Mapping[str, Any] | None
    ) -> None:
        if report_key is None:
            self.files[IGNORED] += 1
            return
        current = report is not None and (report.get("source") or {}).get("etag") == info.etag
        status = str(report["status"]) if report is not None and current else NO_REPORT
        self.files[status] += 1
        if report is not None and current:
            for name in ("rows_in", "rows_out", "rows_failed"):
                self.rows[name] += int(report.get(name) or 0)
        if status in PROBLEMS:
            self.problem_count += 1
            if len(self.problems) < self.max_listed:
                self.problems.append(
                    {
                        "key": info.key,
                        "status": status,
                        "reason": (report or {}).get("reason") if current else None,
                        "rows_failed": (report or {}).get("rows_failed") if current else None,
                        "report": report_key,
                    }
                )


def summarize(
    store: ObjectStore,
    prefix: str,
    *,
    run_id: str,
    map_result: Mapping[str, Any] | None = None,
    map_error: Mapping[str, Any] | None = None,
    max_listed: int = 1000,
    threads: int = 16,
    page_size: int = 256,
) -> dict[str, Any]:
    """Reconcile every file under ``prefix`` with its report; write and return the summary."""
    if not prefix.startswith(IN_PREFIX):
        raise InvalidRequest(f"the prefix must be under {IN_PREFIX}, got {prefix!r}")
    check_segments(run_id, [run_id])
    summary = Summary(max_listed)
    started = now()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for page in _pages(store.list_keys(prefix), page_size):
            keys = [_report_key(info.key) for info in page]
            reports = pool.map(lambda k: read_report(store, k) if k else None, keys)
            for info, report_key, report in zip(page, keys, reports, strict=True):
                summary.add(info, report_key, report)
    total = sum(summary.files.values())
    complete = summary.files[NO_REPORT] == 0 and map_error is None
    document = {
        "schema": SCHEMA,
        "run": run_id,
        "bucket": store.bucket,
        "prefix": prefix,
        "status": "complete" if complete else "incomplete",
        "files": {"total": total, **dict(sorted(summary.files.items()))},
        "rows_in": summary.rows["rows_in"],
        "rows_out": summary.rows["rows_out"],
        "rows_failed": summary.rows["rows_failed"],
        "problems": summary.problems,
        "problems_truncated": summary.problem_count > len(summary.problems),
        "map": {"result": dict(map_result or {}), "error": dict(map_error or {}) or None},
        "started_at": started,
        "finished_at": now(),
    }
    key = summary_key(run_id)
    store.put_json(key, document)
    return {
        "summary": key,
        "status": document["status"],
        "files": document["files"],
        "rows_in": document["rows_in"],
        "rows_out": document["rows_out"],
        "rows_failed": document["rows_failed"],
    }

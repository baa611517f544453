"""The summary step of the batch state machine, driven with the state it receives."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from maaskit.batch.service import BatchService
from maaskit.batch.summary import summarize
from maaskit.errors import InvalidRequest
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.serving.runtime import Runtime
from tests.integration.conftest import cold_start
from tests.support import models
from tests.support.events import FakeContext


@pytest.fixture
def summary(store: ObjectStore) -> ModuleType:
    return cold_start("functions.batch_summary.app")


@pytest.fixture
def processed(store: ObjectStore, registry: Registry, tmp_path: Any) -> None:
    """A run's prefix: files done, failing, partly failing, changed since, never run, other."""
    registry.publish("iris", models.linear()[0])
    service = BatchService(store, Runtime(registry, cache_dir=tmp_path))
    files = {
        "batch/in/iris/run/a.csv": b"a,b,c,d\n1,2,3,4\n5,6,7,8\n",
        "batch/in/iris/run/b.jsonl": b"[1, 2, 3, 4]\n[1, 2]\n",
        "batch/in/iris/run/c.csv": b"a,b\n1,2\n",
        "batch/in/iris/run/changed.jsonl": b"[1, 2, 3, 4]\n",
    }
    for key, body in files.items():
        store.put(key, body)
        service.process(key)
    store.put(
        "batch/in/iris/run/changed.jsonl", b"[1, 2, 3, 4]\n[4, 3, 2, 1]\n"
    )  # report now stale
    store.put("batch/in/iris/run/never.npy", b"")  # its function crashed, say
    store.put("batch/in/iris/run/notes.txt", b"not a batch file")
    store.put("batch/in/iris/other/z.csv", b"outside the prefix")


def test_summary_reconciles_every_file_with_its_report(
    summary: ModuleType, store: ObjectStore, processed: None
) -> None:
    # Given the state after the map ran (its result: where Step Functions wrote the results)
    state = {
        "prefix": "batch/in/iris/run/",
        "map": {"MapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:x/y:z"},
    }
    # When the summary step runs
    result = summary.lambda_handler({"run": "exec-1", "state": state}, FakeContext())
    # Then it counts files by what their current reports say, and rows across them
    assert result["summary"] == "batch/runs/exec-1/summary.json"
    assert result["status"] == "incomplete"
    assert result["files"] == {
        "total": 6,
        "completed": 1,
        "completed_with_errors": 1,
        "failed": 1,
        "ignored": 1,
        "no_report": 2,
    }
    assert (result["rows_in"], result["rows_out"], result["rows_failed"]) == (4, 3, 1)
    document = store.get_json(result["summary"])
    problems = {p["key"]: p for p in document["problems"]}
    assert set(problems) == {
        "batch/in/iris/run/b.jsonl",
        "batch/in/iris/run/c.csv",
        "batch/in/iris/run/changed.jsonl",
        "batch/in/iris/run/never.npy",
    }
    assert problems["batch/in/iris/run/c.csv"]["status"] == "failed"
    assert "the header has 2" in problems["batch/in/iris/run/c.csv"]["reason"]
    assert problems["batch/in/iris/run/changed.jsonl"]["status"] == "no_report"
    assert document["map"]["result"]["MapRunArn"].endswith(":z")


def test_a_clean_run_is_complete_and_a_map_error_is_not(
    summary: ModuleType, store: ObjectStore, registry: Registry, tmp_path: Any
) -> None:
    registry.publish("iris", models.linear()[0])
    service = BatchService(store, Runtime(registry, cache_dir=tmp_path))
    store.put("batch/in/iris/ok/a.jsonl", b"[1, 2, 3, 4]\n")
    service.process("batch/in/iris/ok/a.jsonl")
    clean = summary.lambda_handler(
        {"run": "r1", "state": {"prefix": "batch/in/iris/ok/"}}, FakeContext()
    )
    assert clean["status"] == "complete"
    error = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "too many"}
    state = {"prefix": "batch/in/iris/ok/", "mapError": error}
    failed = summary.lambda_handler({"run": "r2", "state": state}, FakeContext())
    assert failed["status"] == "incomplete"
    assert store.get_json(failed["summary"])["map"]["error"] == error


def test_a_prefix_outside_batch_in_is_refused(summary: ModuleType) -> None:
    with pytest.raises(InvalidRequest, match="under batch/in/"):
        summary.lambda_handler({"run": "r", "state": {"prefix": "models/"}}, FakeContext())


def test_the_problem_list_is_capped(store: ObjectStore) -> None:
    for i in range(5):
        store.put(f"batch/in/iris/many/{i}.csv", b"a\n1\n")
    result = summarize(store, "batch/in/iris/many/", run_id="cap", max_listed=2, page_size=2)
    document = store.get_json(result["summary"])
    assert result["files"] == {"total": 5, "no_report": 5}
    assert len(document["problems"]) == 2
    assert document["problems_truncated"] is True

"""The batch state machine executed by moto's interpreter: Distributed Map over a prefix.

What moto 5.2.5 runs here: the input check, the defaults merged with the input, the
Distributed Map with its S3 ItemReader (one ListObjectsV2 page), ItemSelector, the
per-item Lambda task, MaxConcurrencyPath (as a number of workers), the Catch on the map,
the summary task and the final Choice. What it does not: ToleratedFailurePercentagePath
is parsed but ignored (any failed item fails the map), ResultWriter writes a manifest with
no result files, and an empty prefix fails its ItemReader. Those are checked by the
definition's shape (test_batch_statemachine.py) and, for the summary, by not depending on
the map's results at all.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from maaskit.batch.service import BatchService
from tests.support import models
from tests.support.batch_stack import BatchStack, batch_stack

PREFIX = "batch/in/iris/2026-11-28/"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchStack]:
    monkeypatch.setenv("MAASKIT_BATCH_SIZE", "2")
    with batch_stack(max_concurrency=2) as built:
        built.registry.publish("iris", models.linear(4, 3)[0])
        files = {
            "a.csv": b"a,b,c,d\n1,2,3,4\n5,6,7,8\n",
            "b.jsonl": b"[1, 2, 3, 4]\n[1, 2]\n[0, 0, 0, 0]\n",
            "c.npy": npy(np.ones((5, 4), np.float32)),
            "d.csv": b"a,b\n1,2\n",  # a file that cannot be predicted: reported, not a crash
            "readme.txt": b"not a batch file",
        }
        for name, body in files.items():
            built.store.put(PREFIX + name, body)
        built.store.put("batch/in/iris/elsewhere/z.csv", b"a,b,c,d\n1,2,3,4\n")
        yield built


def summary_of(stack: BatchStack, described: dict[str, Any]) -> dict[str, Any]:
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    document: dict[str, Any] = stack.store.get_json(output["summary"]["summary"])
    return document


def test_every_file_under_the_prefix_is_predicted_and_summarized(stack: BatchStack) -> None:
    # When the state machine runs over the prefix
    described = stack.run({"prefix": PREFIX}, "run-1")
    # Then each object under it went to the batch function once, two at a time at most
    keys = sorted(call.event["key"] for call in stack.calls("BatchFunction"))
    assert keys == [PREFIX + n for n in ("a.csv", "b.jsonl", "c.npy", "d.csv", "readme.txt")]
    assert stack.lambdas.most_at_once <= 2
    # And outputs and reports are beside them, nothing outside the prefix
    for name in ("a.csv", "b.jsonl", "c.npy"):
        assert stack.store.exists("batch/out/iris/2026-11-28/" + name)
    assert not stack.store.exists("batch/out/iris/elsewhere/z.csv.report.json")
    # And the summary adds up every file and row, from the reports
    summary = summary_of(stack, described)
    assert summary["status"] == "complete"
    assert summary["files"] == {
        "total": 5,
        "completed": 2,
        "completed_with_errors": 1,
        "failed": 1,
        "ignored": 1,
    }
    assert (summary["rows_in"], summary["rows_out"], summary["rows_failed"]) == (10, 9, 1)
    assert {p["key"] for p in summary["problems"]} == {PREFIX + "b.jsonl", PREFIX + "d.csv"}
    assert summary["map"]["result"]["ResultWriterDetails"]["Key"].startswith(
        "batch/runs/map-results/"
    )
    assert stack.store.exists("batch/runs/run-1/summary.json")


def test_a_second_run_skips_what_is_done(stack: BatchStack) -> None:
    first = summary_of(stack, stack.run({"prefix": PREFIX}, "run-1"))
    reports = {
        info.key: stack.store.get_json(info.key)
        for info in stack.store.list_keys("batch/out/")
        if info.key.endswith(".report.json")
    }
    second = stack.run({"prefix": PREFIX}, "run-2")
    assert len(stack.calls("BatchFunction")) == 10  # every file offered twice
    for key, report in reports.items():  # and not one report rewritten: nothing recomputed
        assert stack.store.get_json(key) == report
    again = summary_of(stack, second)
    assert (again["files"], again["rows_in"]) == (first["files"], first["rows_in"])


def test_the_input_overrides_the_template_defaults(stack: BatchStack) -> None:
    described = stack.run({"prefix": PREFIX, "maxConcurrency": 1}, "serial")
    assert described["status"] == "SUCCEEDED"
    assert stack.lambdas.most_at_once == 1
    history = stack.sfn.get_execution_history(executionArn=described["executionArn"])["events"]
    [merged] = [
        e["stateExitedEventDetails"]["output"]
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "MergeDefaults"
    ]
    assert json.loads(merged) == {
        "prefix": PREFIX,
        "maxConcurrency": 1,
        "toleratedFailurePercentage": 0,
    }


@pytest.mark.parametrize("payload", [{}, {"prefix": "models/"}, {"prefix": 7}])
def test_a_prefix_outside_batch_in_is_refused_before_any_work(
    stack: BatchStack, payload: dict[str, Any]
) -> None:
    described = stack.run(payload, "bad-input")
    assert (described["status"], described["error"]) == ("FAILED", "InvalidInput")
    assert stack.lambdas.invocations == []


def test_a_crashing_file_is_missing_from_the_summary_not_lost(
    stack: BatchStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file whose function crashes (not a bad file: that is reported, not raised)
    real = BatchService.process

    def crash_on_c(self: BatchService, key: str) -> Any:
        if key.endswith("c.npy"):
            raise RuntimeError("the sandbox ran out of memory")
        return real(self, key)

    monkeypatch.setattr(BatchService, "process", crash_on_c)
    # When the run goes over the prefix
    described = stack.run({"prefix": PREFIX, "maxConcurrency": 1}, "crash")
    # Then the summary names the file that has no report: a rerun will pick it up.
    # (moto 5.2.5 counts a failed item but never fails the map, as if every failure were
    # tolerated; on AWS, ToleratedFailurePercentage decides, and the Catch below applies.)
    summary = summary_of(stack, described)
    assert summary["status"] == "incomplete"
    missing = [p["key"] for p in summary["problems"] if p["status"] == "no_report"]
    assert missing == [PREFIX + "c.npy"]
    assert summary["files"]["total"] == 5


def test_a_failed_map_is_summarized_then_fails_the_execution() -> None:
    # moto's ItemReader fails on an empty listing (KeyError 'Contents'; AWS would run zero
    # items). That is the one way to make its map fail, so it drives the Catch path here.
    with batch_stack() as stack:
        described = stack.run({"prefix": "batch/in/iris/nothing-here/"}, "empty")
        assert described["status"] == "FAILED"
        assert described["error"] == "BatchRunFailed"
        assert described["cause"].startswith("States.Runtime: ")
        summary = stack.store.get_json("batch/runs/empty/summary.json")
        assert summary["status"] == "incomplete"
        assert summary["files"] == {"total": 0}
        assert summary["map"]["error"]["Error"] == "States.Runtime"
        assert stack.calls("BatchFunction") == []

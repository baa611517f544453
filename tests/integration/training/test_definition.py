"""The state machine definition and its template block, checked as written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.training_stack import ROOT, load_template, training_functions

SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
}


def definition() -> dict[str, Any]:
    uri, _ = training_functions()
    data: dict[str, Any] = json.loads((ROOT / uri).read_text())
    return data


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor["States"])


def test_every_task_retries_lambda_service_errors_with_short_intervals() -> None:
    tasks = [(n, s) for n, s in all_states(definition()["States"]) if s["Type"] == "Task"]
    assert len(tasks) == len(training_functions()[1])  # one Task per function
    for name, state in tasks:
        retried = {error for rule in state["Retry"] for error in rule["ErrorEquals"]}
        assert retried >= SERVICE_ERRORS, name
        assert "States.ALL" not in retried, f"{name} must not retry bad input"
        assert all(rule["IntervalSeconds"] <= 2 for rule in state["Retry"]), name


def test_training_steps_also_retry_a_timed_out_sandbox() -> None:
    states = dict(all_states(definition()["States"]))
    for name in ("TrainSteps", "TrainWorker"):
        retried = {error for rule in states[name]["Retry"] for error in rule["ErrorEquals"]}
        assert "Sandbox.Timedout" in retried


def test_every_step_but_the_recorder_catches_into_record_failure_then_fails() -> None:
    states = definition()["States"]
    for name, state in states.items():
        if state["Type"] not in ("Task", "Map") or name == "RecordFailure":
            continue
        assert state["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
        ], name
    assert states[states["RecordFailure"]["Next"]]["Type"] == "Fail"


def test_the_definition_is_jsonpath_and_every_placeholder_is_substituted() -> None:
    text = (ROOT / training_functions()[0]).read_text()
    assert "JSONata" not in text
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    _, functions = training_functions()
    assert placeholders == set(functions)


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    data: dict[str, Any] = load_template()["Resources"]
    return data


def test_the_state_machine_may_invoke_each_training_function_and_no_other(
    resources: dict[str, Any],
) -> None:
    _, functions = training_functions()
    policies = resources["TrainingStateMachine"]["Properties"]["Policies"]
    invoked = {policy["LambdaInvokePolicy"]["FunctionName"]["Ref"] for policy in policies}
    assert invoked == {function.logical_id for function in functions.values()}
    assert len(policies) == len(invoked)


def test_only_export_has_the_onnx_layer_and_only_register_and_promote_write_models(
    resources: dict[str, Any],
) -> None:
    _, functions = training_functions()
    for function in functions.values():
        props = resources[function.logical_id]["Properties"]
        layers = [layer["Ref"] for layer in props.get("Layers", [])]
        expected = (
            ["TrainingLayer", "CoreLayer"]
            if function.logical_id == "TrainExportFunction"
            else ["RuntimeLayer", "CoreLayer"]
        )
        assert layers == expected
        statements = props["Policies"][0]["Statement"]
        text = json.dumps(statements)
        assert "ModelBucket" not in text  # a bucket-triggered function must not !Ref it
        writes = [
            resource["Sub"]
            for statement in statements
            if statement["Action"] == "s3:PutObject"
            for resource in statement["Resource"]
        ]
        writes_models = any("/models/" in resource for resource in writes)
        assert writes_models == (
            function.logical_id in ("TrainRegisterFunction", "TrainPromoteFunction")
        ), function.logical_id

"""The moto Lambda hook: every way moto invokes a function must reach our in-process handler.

If a moto upgrade moves or renames ``LambdaFunction._invoke_lambda``, these tests fail.
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import boto3
import pytest

from maaskit.local.lambda_router import LambdaRouter, active_router
from maaskit.local.testing import LocalLambdas, wait_for_execution

BUCKET = "router-test-bucket"

ECHO_HANDLER = """
import os

AT_IMPORT = os.environ.get("GREETING")


def lambda_handler(event, context):
    return {
        "event": event,
        "greeting_at_import": AT_IMPORT,
        "greeting_now": os.environ.get("GREETING"),
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
"""

S3_COPY_HANDLER = """
from urllib.parse import unquote_plus

import boto3


def lambda_handler(event, context):
    s3 = boto3.client("s3")
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])  # moto also encodes "/" as %2F
        if key.endswith("fail.txt"):
            raise ValueError("cannot read " + key)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=bucket, Key="out/" + key.split("/", 1)[1], Body=body.upper())
    return {"ok": True}
"""

FLAKY_HANDLER = """
import boto3


class TransientError(Exception):
    pass


class FatalError(Exception):
    pass


def lambda_handler(event, context):
    s3 = boto3.client("s3")
    key = "attempts/" + event["run"]
    try:
        attempts = int(s3.get_object(Bucket=event["bucket"], Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        attempts = 0
    s3.put_object(Bucket=event["bucket"], Key=key, Body=str(attempts + 1).encode())
    if event.get("fatal"):
        raise FatalError("the input is wrong")
    if attempts == 0:
        raise TransientError("try again")
    return {"attempts": attempts + 1}
"""


def _write_function(root: Path, name: str, source: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "app.py").write_text(textwrap.dedent(source))
    return folder


def test_direct_invoke_reaches_handler_with_environment_and_context(
    local_lambda: LocalLambdas, tmp_path: Path
) -> None:
    # Given a routed function with its own environment and a 7 s timeout
    code = _write_function(tmp_path, "echo", ECHO_HANDLER)
    local_lambda.add("echo", code, environment={"GREETING": "hello"}, timeout_s=7)

    # When it is invoked through boto3 against moto
    response = boto3.client("lambda").invoke(FunctionName="echo", Payload=b'{"x": 1}')

    # Then the in-process handler ran, saw its environment at import and at call time
    assert "FunctionError" not in response
    reply = json.loads(response["Payload"].read())
    assert reply["event"] == {"x": 1}
    assert reply["greeting_at_import"] == "hello"
    assert reply["greeting_now"] == "hello"
    assert reply["function_name"] == "echo"
    assert 5000 < reply["remaining_ms"] <= 7000
    # and the environment is gone again once the call is over
    import os

    assert "GREETING" not in os.environ


def test_s3_notification_reaches_handler(local_lambda: LocalLambdas, tmp_path: Path) -> None:
    # Given a bucket whose in/ prefix notifies a routed function
    arn = local_lambda.add("copier", _write_function(tmp_path, "copier", S3_COPY_HANDLER))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}},
                }
            ]
        },
    )

    # When an object lands under in/
    s3.put_object(Bucket=BUCKET, Key="in/a.txt", Body=b"abc")

    # Then the handler ran (synchronously, in moto) and wrote its output
    assert s3.get_object(Bucket=BUCKET, Key="out/a.txt")["Body"].read() == b"ABC"


def test_s3_notification_errors_are_surfaced(
    local_lambda: LocalLambdas, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the same routed function, which fails on one file name
    arn = local_lambda.add("copier", _write_function(tmp_path, "copier", S3_COPY_HANDLER))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )

    # When that file lands (moto ignores the handler's error: the put succeeds)
    with caplog.at_level(logging.ERROR, logger="maaskit-local.lambda"):
        s3.put_object(Bucket=BUCKET, Key="in/fail.txt", Body=b"x")

    # Then the failure is in the log and in the router's record
    failure = local_lambda.router.failures[-1]
    assert failure.function_name == "copier"
    assert failure.error_type == "ValueError"
    assert failure.source == "s3 event"
    assert "cannot read in/fail.txt" in caplog.text


def test_state_machine_task_reaches_handler_and_retry_catch_match_class_names(
    local_lambda: LocalLambdas, tmp_path: Path
) -> None:
    # Given a state machine whose Task retries TransientError and catches FatalError
    arn = local_lambda.add("flaky", _write_function(tmp_path, "flaky", FLAKY_HANDLER))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": arn,
                "Retry": [
                    {"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 2}
                ],
                "Catch": [
                    {"ErrorEquals": ["FatalError"], "ResultPath": "$.error", "Next": "Failed"}
                ],
                "End": True,
            },
            "Failed": {"Type": "Pass", "End": True},
        },
    }
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="flaky", definition=json.dumps(definition), roleArn=local_lambda._role_arn or ""
    )["stateMachineArn"]

    # When one execution meets a transient error and another a fatal one
    retried = sfn.start_execution(
        stateMachineArn=machine, name="a", input=json.dumps({"run": "a", "bucket": BUCKET})
    )["executionArn"]
    caught = sfn.start_execution(
        stateMachineArn=machine,
        name="b",
        input=json.dumps({"run": "b", "bucket": BUCKET, "fatal": True}),
    )["executionArn"]

    # Then the retry reached the handler a second time, and the catch saw the class name
    first = wait_for_execution(sfn, retried)
    assert first["status"] == "SUCCEEDED", first
    assert json.loads(first["output"]) == {"attempts": 2}
    second = wait_for_execution(sfn, caught)
    assert second["status"] == "SUCCEEDED", second
    error = json.loads(second["output"])["error"]
    assert error["Error"] == "FatalError"
    assert json.loads(error["Cause"])["errorMessage"] == "the input is wrong"


def test_uninstall_restores_moto() -> None:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction._invoke_lambda
    router = LambdaRouter()
    with router.installed():
        assert LambdaFunction._invoke_lambda is not original
        assert active_router() is router
        with pytest.raises(RuntimeError, match="another LambdaRouter"):
            LambdaRouter().install()
    assert LambdaFunction._invoke_lambda is original
    assert active_router() is None

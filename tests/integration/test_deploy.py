"""Deploying a template into moto in process: notifications, functions, state machines."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from maaskit.local.deploy import DeployError, Deployment, deploy
from maaskit.local.lambda_router import LambdaRouter
from maaskit.local.persistence import BucketFolder
from maaskit.local.template import Template
from maaskit.local.testing import wait_for_execution

SAMPLE = Path(__file__).parents[1] / "fixtures" / "sample_stack" / "template.yaml"
BUCKET = "maaskit-local-data-123456789012"


def _client(service: str) -> object:
    return boto3.client(service, region_name="us-east-1")  # type: ignore[call-overload]


def test_template_deploys_and_its_events_reach_the_handlers(
    mocked_aws: None, lambda_router: LambdaRouter
) -> None:
    # Given the sample template deployed into moto (no endpoint: mock_aws intercepts)
    done = deploy(Template.load(SAMPLE), lambda_router, _client)
    s3 = boto3.client("s3")

    # When an object lands under in/, the S3-triggered function writes out/
    s3.put_object(Bucket=BUCKET, Key="in/note.txt", Body=b"abc")
    assert s3.get_object(Bucket=BUCKET, Key="out/note.txt")["Body"].read() == b"ABC"

    # And the state machine, filled in by DefinitionSubstitutions, runs the same function
    sfn = boto3.client("stepfunctions")
    ok = sfn.start_execution(
        stateMachineArn=done.state_machines["Pipeline"],
        name="ok",
        input=json.dumps({"key": "in/note.txt"}),
    )
    s3.put_object(Bucket=BUCKET, Key="empty.txt", Body=b"")
    empty = sfn.start_execution(
        stateMachineArn=done.state_machines["Pipeline"],
        name="empty",
        input=json.dumps({"key": "empty.txt"}),
    )
    first = wait_for_execution(sfn, ok["executionArn"])
    assert first["status"] == "SUCCEEDED", first
    assert json.loads(first["output"])["size"] == 3
    assert s3.get_object(Bucket=BUCKET, Key="done/in/note.txt")["Body"].read() == b"ABC"
    second = wait_for_execution(sfn, empty["executionArn"])
    assert json.loads(second["output"])["error"]["Error"] == "EmptyObjectError"

    # And the functions exist in moto with their template environment
    configuration = boto3.client("lambda").get_function_configuration(
        FunctionName="maaskit-local-EchoFunction"
    )
    assert configuration["Environment"]["Variables"]["GREETING"] == "hello"
    assert configuration["Timeout"] == 10


def test_bucket_folder_round_trip(mocked_aws: None, tmp_path: Path) -> None:
    # Given a bucket with objects, some with awkward keys
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    keys = ["models/a/versions/1/model.onnx", "odd/../key", "dir/", "space name.txt"]
    for index, key in enumerate(keys):
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=bytes([index]) * 10,
            ContentType="text/plain",
            Metadata={"n": str(index)},
        )
    folder = BucketFolder(tmp_path, BUCKET)

    # When it is saved, one object deleted, and saved again
    assert folder.save(s3) == 4
    assert folder.save(s3) == 0  # nothing changed
    s3.delete_object(Bucket=BUCKET, Key="space name.txt")
    folder.save(s3)
    assert folder.keys() == sorted(keys[:3])

    # Then a fresh bucket restored from the folder has the same objects
    for key in keys[:3]:
        s3.delete_object(Bucket=BUCKET, Key=key)
    assert folder.restore(s3) == 3
    restored = s3.get_object(Bucket=BUCKET, Key="odd/../key")
    assert restored["Body"].read() == bytes([1]) * 10
    assert restored["ContentType"] == "text/plain"
    assert restored["Metadata"] == {"n": "1"}


def test_project_template_deploys_in_moto(template_stack: Deployment) -> None:
    # the fixture other integration tests use: maaskit's own template, every function routed
    assert "ApiFunction" in template_stack.functions
    assert template_stack.buckets["ModelBucket"] == "maaskit-123456789012-us-east-1"
    functions = boto3.client("lambda").list_functions()["Functions"]
    assert {f["FunctionName"] for f in functions} == {
        spec.name for spec in template_stack.functions.values()
    }


def test_a_definition_moto_refuses_is_one_clear_error(
    mocked_aws: None, lambda_router: LambdaRouter, tmp_path: Path
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Broken:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n"
        "      Definition: {StartAt: A, States: {A: {Type: Task, Resource: arn:aws:lambda:x,"
        " Retry: [{ErrorEquals: [States.ALL], IntervalSeconds: 0}], End: true}}}\n"
    )
    with pytest.raises(DeployError, match="Broken: the embedded Step Functions refused"):
        deploy(Template.load(template), lambda_router, _client)

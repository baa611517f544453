"""The local stack serving the sample template: API, S3 events, state machines, SDK, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from maaskit.cli import main as cli
from maaskit.local.stack import LocalStack
from tests.e2e.conftest import client_for
from tests.unit.training.helpers import spec_dict


def test_api_routes_over_http(sample_stack: LocalStack) -> None:
    api = sample_stack.api_url

    # path parameters and repeated query strings reach the handler as API Gateway sends them
    item = requests.get(api + "items/42?tag=a&tag=b", timeout=10)
    assert item.status_code == 200
    body = item.json()
    assert body["pathParameters"] == {"id": "42"}
    assert body["multiQuery"] == {"tag": ["a", "b"]}
    assert body["resourcePath"] == "/items/{id}"
    assert body["stage"] == "v1"
    assert body["greeting"] == "hello"  # the function's environment, seen at import
    assert body["pipeline"].endswith(":stateMachine:maaskit-local-Pipeline")

    # greedy paths and ANY, JSON bodies
    posted = requests.put(api + "files/a/b/c.txt", json={"k": 1}, timeout=10).json()
    assert posted["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert posted["method"] == "PUT"
    assert posted["body"] == {"k": 1}

    # the deployed URL's path (under the stage) works too
    assert requests.get(api + "v1/items/7", timeout=10).json()["path"] == "/items/7"


def test_binary_bodies_round_trip(sample_stack: LocalStack) -> None:
    payload = bytes(range(256)) * 4
    reply = requests.post(
        sample_stack.api_url + "upload",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.content == payload[::-1]
    assert reply.headers["X-Size"] == str(len(payload))


def test_errors_look_like_api_gateway(sample_stack: LocalStack) -> None:
    api = sample_stack.api_url
    missing = requests.get(api + "nowhere", timeout=10)
    assert missing.status_code == 403
    assert missing.json() == {"message": "Missing Authentication Token"}
    failed = requests.get(api + "files/boom", timeout=10)
    assert failed.status_code == 502
    assert sample_stack.router.failures[-1].error_type == "RuntimeError"


def test_s3_event_through_the_embedded_aws(sample_stack: LocalStack) -> None:
    s3 = boto3.client("s3", endpoint_url=sample_stack.aws_endpoint_url, region_name="us-east-1")
    s3.put_object(Bucket=sample_stack.bucket, Key="in/greeting.txt", Body=b"hi there")
    out = s3.get_object(Bucket=sample_stack.bucket, Key="out/greeting.txt")
    assert out["Body"].read() == b"HI THERE"


def test_sdk_finds_the_stack_and_runs_training(sample_stack: LocalStack) -> None:
    # Given a client that knows only the two URLs (bucket and state machine are discovered)
    client = client_for(sample_stack)
    assert client.target.bucket == sample_stack.bucket

    # When a training run goes through the state machine (Lambda tasks over moto's HTTP)
    run = client.start_training({"model": "m", "epochs": 4})
    status = client.wait_for_training(run.run_id, poll_s=0.1, timeout_s=120)

    # Then it succeeded with one metrics row per step
    assert status.status == "SUCCEEDED", status
    assert [row["epoch"] for row in status.metrics] == [1, 2, 3, 4]


def test_cli_batch_and_training_against_the_stack(
    sample_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = [
        "--api-url",
        sample_stack.api_url,
        "--aws-endpoint-url",
        sample_stack.aws_endpoint_url,
    ]
    rows = tmp_path / "rows.jsonl"
    rows.write_text("[1, 2, 3]\n[4, 5, 6]\n")
    output = tmp_path / "predictions.jsonl"

    assert (
        cli.main(
            [*target, "batch", "submit", str(rows), "--model", "m", "--wait", "-o", str(output)]
        )
        == 0
    )
    assert [json.loads(line) for line in output.read_text().splitlines()] == [
        {"sum": 6},
        {"sum": 15},
    ]

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(spec_dict(model="m", epochs=2)))  # the CLI checks it first
    assert cli.main([*target, "train", "start", str(spec), "--wait"]) == 0
    run_id = capsys.readouterr().out.split("started training run ")[1].split()[0]
    assert cli.main([*target, "train", "status", run_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "SUCCEEDED"
    curve = tmp_path / "curve.png"
    assert cli.main([*target, "train", "plot", run_id, "-o", str(curve)]) == 0
    assert curve.read_bytes()[:4] == b"\x89PNG"

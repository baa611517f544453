"""The SDK's Client against the sample stack deployed in moto (in process, no HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from maaskit.errors import InvalidModel, InvalidRequest, NotFound
from maaskit.local.deploy import deploy
from maaskit.local.lambda_router import LambdaRouter
from maaskit.local.template import Template
from maaskit.sdk.client import Client
from maaskit.sdk.targets import Target, TargetOptions
from tests.support.models import linear

SAMPLE = Path(__file__).parents[1] / "fixtures" / "sample_stack" / "template.yaml"
BUCKET = "maaskit-local-data-123456789012"


@pytest.fixture
def client(mocked_aws: None, lambda_router: LambdaRouter) -> Client:
    deploy(
        Template.load(SAMPLE),
        lambda_router,
        lambda service: boto3.client(service, region_name="us-east-1"),  # type: ignore[call-overload]
    )
    return Client(Target(TargetOptions(bucket=BUCKET, region="us-east-1", env={})))


def test_training_run_start_to_finish(client: Client) -> None:
    # Given the stand-in training state machine
    progress: list[str] = []

    # When a run starts and is waited for
    run = client.start_training({"model": "digits", "epochs": 3})
    status = client.wait_for_training(
        run.run_id, on_progress=lambda s: progress.append(s.status), poll_s=0.05, timeout_s=60
    )

    # Then it succeeded, its metrics were read from training/{run_id}/metrics.jsonl
    assert status.status == "SUCCEEDED", status
    assert [row["epoch"] for row in status.metrics] == [1, 2, 3]
    assert status.output == {"model": "digits", "epochs": 3}
    assert progress[-1] == "SUCCEEDED"
    # and the logs show the loop through the states
    logs = client.training_logs(run.run_id)
    assert sum("TaskStateEntered TrainStep" in line for line in logs) == 3
    assert any(line.endswith("ExecutionSucceeded") for line in logs)


def test_failed_training_run_reports_the_error_class(client: Client) -> None:
    run = client.start_training({"model": "digits", "epochs": 0})
    status = client.wait_for_training(run.run_id, poll_s=0.05, timeout_s=60)

    assert status.status == "FAILED"
    assert status.error == "BadSpecError"
    assert "epochs must be at least 1" in (status.cause or "")


def test_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound, match="no training run 'ghost'"):
        client.training_status("ghost")


def test_batch_file_through_the_bucket(client: Client, tmp_path: Path) -> None:
    # Given a batch file
    rows = tmp_path / "rows.jsonl"
    rows.write_text("[1, 2]\n[3, 4]\n")

    # When it is submitted twice (the second report must be the second upload's)
    client.wait_for_batch(client.submit_batch(rows, "summer"), timeout_s=10)
    rows.write_text("[1, 2]\n[3, 4]\n[5, 6]\n")
    job = client.submit_batch(rows, "summer")
    report = client.wait_for_batch(job, timeout_s=10)

    # Then the report and the predictions are the second file's, where the batch function
    # puts them (the SDK derives the keys with the core's own key functions)
    assert job.input_key == "batch/in/summer/rows.jsonl"
    assert job.output_key == "batch/out/summer/rows.jsonl"
    assert job.report_keys[0] == "batch/out/summer/rows.jsonl.report.json"
    assert report["rows"] == 3
    out = client.download(job.output_key, tmp_path / "out.jsonl")
    assert [json.loads(line)["sum"] for line in out.read_text().splitlines()] == [3, 7, 11]


def test_batch_file_names_the_batch_function_would_refuse_are_refused_before_upload(
    client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "rows;1.jsonl"
    path.write_text("[1]\n")
    with pytest.raises(InvalidRequest, match=r"rows;1\.jsonl"):
        client.submit_batch(path, "m")


def test_batch_files_must_have_a_known_format(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_text("1")
    with pytest.raises(InvalidRequest, match=r"\.jsonl, \.csv or \.npy"):
        client.submit_batch(path, "m")


def test_registry_push_promote_and_list(client: Client, tmp_path: Path) -> None:
    model = tmp_path / "lin.onnx"
    model.write_bytes(linear()[0])

    first = client.push_model(model, "lin")
    second = client.push_model(model, "lin", aliases=("staging",))
    client.promote("lin", first["version"], "production")

    assert (first["version"], second["version"]) == (1, 2)
    assert client.list_models() == [
        {"name": "lin", "versions": [1, 2], "aliases": {"latest": 2, "production": 1, "staging": 2}}
    ]
    assert client.describe_model("lin")["versions"][0]["metadata"] == {"source": "lin.onnx"}
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(InvalidModel):
        client.push_model(broken, "lin")


def test_datasets_push_and_list(client: Client, tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    data.write_text("a,b\n1,2\n")

    uri = client.push_dataset(data, "iris")

    assert uri == f"s3://{BUCKET}/datasets/iris/iris.csv"
    assert client.list_datasets() == [{"key": "datasets/iris/iris.csv", "size": 8, "uri": uri}]


def test_an_unreadable_training_status_is_reported_not_raised(client: Client) -> None:
    client.store.put("training/run-x/status.json", b"\xff\xfe not json")
    details = client.training_details("run-x")
    assert "training/run-x/status.json is not valid JSON" in details["unreadable"]
    client.store.put("training/run-x/metrics.jsonl", b'{"epoch": 1}\n\xff\xfe\n{"epoch": 2}\n')
    assert client.training_metrics("run-x") == [{"epoch": 1}, {"epoch": 2}]

"""maaskit's own template on the local stack: publish, predict, train and batch over real
HTTP, through requests, the SDK and the command line as README.md shows them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests

from maaskit.cli import main as cli
from maaskit.local.stack import LocalStack
from maaskit.sdk.client import Model
from tests.e2e.conftest import client_for
from tests.support.models import linear


@pytest.fixture(scope="module")
def published(maaskit_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """A linear model published through the SDK; returns its weights."""
    data, weights, bias = linear(n_in=4, n_out=3, seed=1)
    path = tmp_path_factory.mktemp("models") / "lin.onnx"
    path.write_bytes(data)
    client_for(maaskit_stack).push_model(path, "lin", aliases=("production",))
    return np.vstack([weights, bias])


def _expected(weights_and_bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    weights, bias = weights_and_bias[:-1], weights_and_bias[-1]
    expected: np.ndarray = x @ weights + bias
    return expected


def test_seed_style_requests_post(maaskit_stack: LocalStack, published: np.ndarray) -> None:
    x = [[1.0, 2.0, 3.0, 4.0]]
    reply = requests.post(
        maaskit_stack.api_url + "models/lin/predict", json={"input": x}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["model"], body["version"]) == ("lin", 1)
    np.testing.assert_allclose(
        body["outputs"]["output"], _expected(published, np.array(x)), rtol=1e-5
    )


def test_sdk_model_simple_and_v2(maaskit_stack: LocalStack, published: np.ndarray) -> None:
    model = Model("lin", endpoint=maaskit_stack.api_url, alias="production")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)

    simple = model.predict(x)
    v2 = model.infer(x)["output"]

    assert simple.dtype == np.float32
    np.testing.assert_allclose(simple, _expected(published, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(v2, simple, rtol=1e-6)
    assert model.versions() == [1]
    assert model.metadata()["inputs"][0]["shape"] == [-1, 4]
    model.set_input(x[:1])
    np.testing.assert_allclose(model.predict(), simple[:1], rtol=1e-6)


def test_errors_are_readable(maaskit_stack: LocalStack, published: np.ndarray) -> None:
    wrong = requests.post(
        maaskit_stack.api_url + "models/lin/predict", json={"input": [[1, 2]]}, timeout=30
    )
    assert wrong.status_code == 400
    assert "dimension 1 must be 4" in wrong.json()["error"]
    missing = requests.get(maaskit_stack.api_url + "v2/models/nope", timeout=30)
    assert missing.status_code == 404


def test_cli_lists_and_predicts(
    maaskit_stack: LocalStack, published: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    target = [
        "--api-url",
        maaskit_stack.api_url,
        "--aws-endpoint-url",
        maaskit_stack.aws_endpoint_url,
    ]
    assert cli.main([*target, "models", "list"]) == 0
    assert "lin" in capsys.readouterr().out
    assert cli.main([*target, "predict", "lin", "--input", "[[0, 0, 0, 0]]", "--v2"]) == 0
    reply = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(reply["outputs"]["output"], [published[-1]], rtol=1e-5)


def test_training_state_machine(maaskit_stack: LocalStack, tmp_path: Path) -> None:
    client = client_for(maaskit_stack)
    from maaskit.cli.demo import load_digits, training_spec, write_csv

    features, labels = load_digits()
    uri = client.push_dataset(write_csv(features[:300], labels[:300], tmp_path / "d.csv"), "digits")
    spec = training_spec(uri) | {"epochs": 3}
    run = client.start_training(spec)
    status = client.wait_for_training(run.run_id, poll_s=0.5, timeout_s=600)
    assert status.status == "SUCCEEDED", status
    assert [row["epoch"] for row in status.metrics] == [1, 2, 3]
    assert status.details.get("status") == "succeeded"

    # the trained model is published and served by the same stack
    probabilities = Model("digits", endpoint=maaskit_stack.api_url).predict_outputs(features[:4])
    assert probabilities["probabilities"].shape == (4, 10)
    np.testing.assert_allclose(probabilities["probabilities"].sum(axis=1), 1.0, rtol=1e-4)


def test_batch_file(maaskit_stack: LocalStack, published: np.ndarray, tmp_path: Path) -> None:
    client = client_for(maaskit_stack)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("[1, 2, 3, 4]\n[0, 0, 0, 0]\n")
    job = client.submit_batch(rows, "lin")
    report = client.wait_for_batch(job, timeout_s=120)  # found by the upload's ETag
    lines = client.store.get_bytes(job.output_key).decode().splitlines()
    assert len(lines) == 2, report


def test_readme_walkthrough_with_the_command_line(
    maaskit_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every `maaskit` command README.md shows, in its order, against maaskit's template."""
    from maaskit.cli.demo import load_digits, training_spec, write_csv

    target = [
        "--api-url",
        maaskit_stack.api_url,
        "--aws-endpoint-url",
        maaskit_stack.aws_endpoint_url,
    ]

    def run(*argv: str) -> str:
        assert cli.main([*target, *argv]) == 0, argv
        return capsys.readouterr().out

    # models push / list / show / promote
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(linear(n_in=4, n_out=3, seed=7)[0])
    run("models", "push", str(model_file), "--name", "walk", "--alias", "production")
    run("models", "push", str(model_file), "--name", "walk")
    assert "walk" in run("models", "list")
    assert "production" in run("models", "show", "walk")
    run("models", "promote", "walk", "--version", "2", "--alias", "production")
    assert client_for(maaskit_stack).registry.aliases("walk")["production"] == 2

    # predict: inline JSON, @file, and V2
    rows = tmp_path / "rows.json"
    rows.write_text("[[1, 2, 3, 4]]")
    inline = json.loads(run("predict", "walk", "--input", "[[1, 2, 3, 4]]"))
    from_file = json.loads(run("predict", "walk", "--input", f"@{rows}"))
    assert inline["outputs"] == from_file["outputs"]
    assert json.loads(run("predict", "walk", "--input", "[[1, 2, 3, 4]]", "--v2"))["outputs"]

    # datasets push / list, then train start --wait / status / logs / plot
    features, labels = load_digits()
    csv = write_csv(features[:240], labels[:240], tmp_path / "digits.csv")
    uri = run("datasets", "push", str(csv), "--name", "digits-walk").strip().splitlines()[-1]
    assert uri.startswith("s3://"), uri
    assert "datasets/digits-walk" in uri, uri
    assert "digits-walk" in run("datasets", "list")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(training_spec(uri) | {"model": "digits-walk", "epochs": 2}))
    started = run("train", "start", str(spec), "--wait")
    run_id = started.split("started training run ")[1].split()[0]
    assert json.loads(run("train", "status", run_id))["status"] == "SUCCEEDED"
    assert "epoch" in run("train", "logs", run_id)
    curve = tmp_path / "curve.png"
    run("train", "plot", run_id, "-o", str(curve))
    assert curve.read_bytes()[:4] == b"\x89PNG"

    # batch submit --wait
    batch = tmp_path / "batch.jsonl"
    batch.write_text("[1, 2, 3, 4]\n[0, 0, 0, 0]\n[1, 2]\n")
    output = tmp_path / "predictions.jsonl"
    # a failed row makes the command fail (exit 1), after saving what did succeed
    assert cli.main([*target, "batch", "submit", str(batch), "--model", "walk", "--wait",
                     "-o", str(output)]) == 1  # fmt: skip
    captured = capsys.readouterr()
    assert "rows 3 in, 2 out, 1 failed" in captured.out
    assert "1 row(s) failed" in captured.err
    assert len(output.read_text().splitlines()) == 2  # the third row is in the report

"""The SDK's Model and Target without a network: a fake transport answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maaskit.errors import InvalidRequest, NotFound
from maaskit.sdk.batch_jobs import _mentions
from maaskit.sdk.client import Model, TrainingStatus, execution_input, new_run_id
from maaskit.sdk.targets import Target, TargetError, TargetOptions

METADATA = {
    "name": "lin",
    "versions": ["1", "2"],
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
}


class FakeTransport:
    base_url = "http://api/"

    def __init__(self, replies: dict[tuple[str, str], Any]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, str, Any, Any]] = []

    def request(self, method: str, path: str, *, body: Any = None, query: Any = None) -> Any:
        self.calls.append((method, path, body, query))
        return self.replies[(method, path)]


def test_predict_sends_the_simple_shape_and_returns_typed_numpy() -> None:
    transport = FakeTransport(
        {
            ("POST", "models/lin/predict"): {
                "model": "lin",
                "version": 2,
                "outputs": {"y": [[3.5]]},
            },
            ("GET", "v2/models/lin/versions/2"): METADATA,
        }
    )
    model = Model("lin", alias="production", transport=transport)  # type: ignore[arg-type]

    y = model.predict(np.array([[1.0, 2.5]], dtype=np.float64))

    assert y.dtype == np.float32
    assert y.tolist() == [[3.5]]
    _method, _path, body, query = transport.calls[0]
    assert body == {"input": [[1.0, 2.5]]}
    assert query == {"version": None, "alias": "production"}


def test_seed_style_set_input_then_predict() -> None:
    transport = FakeTransport(
        {
            ("POST", "models/lin/predict"): {"outputs": {"y": [[1.0]]}},
            ("GET", "v2/models/lin"): METADATA,
        }
    )
    model = Model("lin", transport=transport)  # type: ignore[arg-type]

    with pytest.raises(InvalidRequest, match="set_input"):
        model.predict()
    model.set_input([[0, 0]])

    assert model.predict().tolist() == [[1.0]]


def test_several_outputs_first_by_default_or_by_name() -> None:
    transport = FakeTransport(
        {
            ("POST", "models/m/predict"): {"outputs": {"label": [7], "probabilities": [[0.9]]}},
            ("GET", "v2/models/m"): {"outputs": []},
        }
    )
    model = Model("m", transport=transport)  # type: ignore[arg-type]

    assert model.predict([1]).tolist() == [7]
    assert model.predict([1], output="probabilities").tolist() == [[0.9]]
    with pytest.raises(InvalidRequest, match="outputs: label, probabilities"):
        model.predict([1], output="nope")
    assert set(model.predict_outputs({"in": [1]})) == {"label", "probabilities"}
    posted = [call for call in transport.calls if call[0] == "POST"]
    assert posted[-1][2] == {"inputs": {"in": [1]}}


def test_infer_builds_a_v2_request_for_the_alias_version() -> None:
    transport = FakeTransport(
        {
            ("GET", "models/lin"): {"aliases": {"production": 1}, "versions": [{"version": 1}]},
            ("GET", "v2/models/lin/versions/1"): METADATA,
            ("POST", "v2/models/lin/versions/1/infer"): {
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [2, 1], "data": [1, 2]}]
            },
        }
    )
    model = Model("lin", alias="production", transport=transport)  # type: ignore[arg-type]

    outputs = model.infer([[1, 2], [3, 4]])

    assert outputs["y"].shape == (2, 1)
    assert outputs["y"].dtype == np.float32
    body = transport.calls[-1][2]
    assert body == {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]
    }


def test_unknown_alias_is_not_found() -> None:
    transport = FakeTransport({("GET", "models/lin"): {"aliases": {"latest": 2}}})
    model = Model("lin", alias="production", transport=transport)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="aliases: latest"):
        model.metadata()


def test_versions_come_from_the_registry_view() -> None:
    transport = FakeTransport(
        {("GET", "models/lin"): {"versions": [{"version": 2}, {"version": 1}], "aliases": {}}}
    )
    assert Model("lin", transport=transport).versions() == [1, 2]  # type: ignore[arg-type]


def test_version_and_alias_together_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="either a version or an alias"):
        Model("m", endpoint="http://x/", version=1, alias="a")


def test_run_ids_are_valid_execution_names() -> None:
    run_id = new_run_id("digits mlp/v2")
    assert run_id.startswith("digits-mlp-v2-")
    assert len(run_id) <= 80
    assert execution_input({"model": "m"}) == {"model": "m"}


def test_report_matches_its_source_etag_anywhere() -> None:
    report = {"source": {"key": "batch/in/m/a.jsonl", "etag": '"abc"'}, "rows": 3}
    assert _mentions(report, "abc")
    assert not _mentions(report, "other")


def test_training_status_latest_row() -> None:
    status = TrainingStatus("r", "RUNNING", metrics=[{"epoch": 1}, {"epoch": 2}])
    assert status.latest == {"epoch": 2}
    assert not status.done


def test_target_local_defaults_and_conflicts() -> None:
    target = Target(TargetOptions(local=True, env={}))
    assert target.api_url == "http://127.0.0.1:3000/"
    assert target.aws_endpoint_url == "http://127.0.0.1:5000"
    assert target.region == "us-east-1"
    with pytest.raises(TargetError, match="--local already names"):
        Target(TargetOptions(local=True, api_url="http://x/", env={}))


def test_target_reads_the_environment() -> None:
    env = {
        "MAASKIT_API_URL": "http://api/",
        "MAASKIT_AWS_ENDPOINT_URL": "http://aws",
        "AWS_REGION": "eu-west-1",
    }
    target = Target(TargetOptions(env=env))
    assert (target.api_url, target.aws_endpoint_url, target.region) == (
        "http://api/",
        "http://aws",
        "eu-west-1",
    )


def test_target_finds_parts_in_stack_outputs() -> None:
    target = Target(TargetOptions(stack="maaskit", region="us-east-1", env={}))
    machine = "arn:aws:states:us-east-1:1:stateMachine:"
    target.__dict__["outputs"] = {
        "ApiUrl": "https://x.execute-api.us-east-1.amazonaws.com/Prod/",
        "BucketName": "maaskit-1-us-east-1",
        "PipelineArn": machine + "pipeline",
        "TrainingStateMachineArn": machine + "training",
    }
    assert target.api_url.endswith("/Prod/")
    assert target.bucket == "maaskit-1-us-east-1"
    assert target.state_machine("training") == machine + "training"


def test_target_without_any_way_to_the_api_says_what_to_pass() -> None:
    target = Target(TargetOptions(env={}))
    with pytest.raises(TargetError, match="--api-url"):
        _ = target.api_url


# text models and answers ------------------------------------------------------------------

TEXT_METADATA = {
    "name": "minilm",
    "versions": ["1"],
    "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
    "outputs": [{"name": "embedding", "datatype": "FP32", "shape": [-1, 3]}],
}


def test_a_string_in_gives_that_texts_embedding_and_the_model_name_can_come_from_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given MAASKIT_MODEL naming a text model
    monkeypatch.setenv("MAASKIT_MODEL", "minilm")
    transport = FakeTransport(
        {
            ("POST", "models/minilm/predict"): {
                "model": "minilm",
                "version": 1,
                "outputs": {"embedding": [[0.5, 0.25, 0.125]]},
            },
            ("GET", "v2/models/minilm/versions/1"): TEXT_METADATA,
        }
    )
    # When a Model with no name is given a string
    embedding = Model(transport=transport).set_input("Hello, world!").predict()  # type: ignore[arg-type]
    # Then the string went as {"input": "..."} and one embedding came back
    assert transport.calls[0][2] == {"input": "Hello, world!"}
    assert embedding.dtype == np.float32
    assert embedding.tolist() == [0.5, 0.25, 0.125]


def test_a_model_with_no_name_and_no_env_says_how_to_name_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAASKIT_MODEL", raising=False)
    with pytest.raises(InvalidRequest, match="MAASKIT_MODEL"):
        Model(transport=FakeTransport({}))  # type: ignore[arg-type]


def test_predict_on_a_classifier_returns_labels_not_probabilities() -> None:
    # Given a classifier whose first output is probabilities (as training exports them)
    metadata = {
        "name": "digits",
        "versions": ["1"],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
        ],
    }
    transport = FakeTransport(
        {
            ("POST", "models/digits/predict"): {
                "version": 1,
                "outputs": {"probabilities": [[0.2, 0.8]], "label": [1]},
            },
            ("GET", "v2/models/digits/versions/1"): metadata,
        }
    )
    labels = Model("digits", transport=transport).predict([[1.0, 2.0]])  # type: ignore[arg-type]
    assert labels.dtype == np.int64
    assert labels.tolist() == [1]


def test_a_complete_v2_body_is_posted_as_given_to_the_alias_version() -> None:
    reply = {"outputs": [{"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [3]}]}
    transport = FakeTransport(
        {
            ("GET", "models/lin"): {"aliases": {"production": 1}, "versions": [{"version": 1}]},
            ("POST", "v2/models/lin/versions/1/infer"): reply,
        }
    )
    model = Model("lin", alias="production", transport=transport)  # type: ignore[arg-type]
    body = {
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}],
        "outputs": [{"name": "y"}],
    }

    assert model.infer_request(body) == reply
    assert transport.calls[-1][:3] == ("POST", "v2/models/lin/versions/1/infer", body)

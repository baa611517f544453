from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from aws_lambda_powertools.warnings import PowertoolsUserWarning
from onnx import TensorProto

from maaskit.registry.catalog import Registry, artifact_key
from maaskit.registry.store import ObjectStore
from tests.integration.conftest import Call, cold_start
from tests.support import models
from tests.support.events import FakeContext, api_event


@pytest.fixture
def iris(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    data, weights, bias = models.linear(4, 3)
    registry.publish("iris", data)
    return weights, bias


def test_simple_predict_returns_model_version_and_outputs(call: Call, iris: tuple) -> None:
    weights, bias = iris
    x = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    status, body = call("POST", "/models/iris/predict", {"input": x})
    assert status == 200
    assert body["model"] == "iris"
    assert body["version"] == 1
    expected = np.array(x, np.float32) @ weights + bias
    np.testing.assert_allclose(np.array(body["outputs"]["output"]), expected, rtol=1e-6)


def test_named_inputs_and_version_selection(call: Call, registry: Registry) -> None:
    registry.publish("tokens", models.two_inputs())
    registry.publish("tokens", models.two_inputs())
    status, body = call(
        "POST",
        "/models/tokens/predict",
        {"inputs": {"input_ids": [[1, 2, 3]], "mask": [[1.0, 0.0, 1.0]]}},
        query={"version": "1"},
    )
    assert status == 200, body
    assert body["version"] == 1
    assert body["outputs"] == {"score": [4.0], "ids_out": [[1, 2, 3]]}


def test_alias_selection_in_query(call: Call, registry: Registry, iris: tuple) -> None:
    registry.publish("iris", models.linear(seed=9)[0])
    registry.set_alias("iris", "production", 1)
    status, body = call(
        "POST", "/models/iris/predict", {"input": [[1, 2, 3, 4]]}, query={"alias": "production"}
    )
    assert (status, body["version"]) == (200, 1)


def test_base64_encoded_bodies_are_decoded(call: Call, iris: tuple) -> None:
    status, _ = call("POST", "/models/iris/predict", {"input": [[1, 2, 3, 4]]}, base64_body=True)
    assert status == 200


@pytest.mark.parametrize(
    ("body", "raw", "status", "message"),
    [
        (None, "{not json", 400, "not valid JSON"),
        (None, "", 400, "body is empty"),
        ([1, 2], None, 400, "must be a JSON object"),
        ({"inputs": {"input": [[1, 2, 3, 4]]}, "input": [[1]]}, None, 400, "exactly one of"),
        ({"inptu": [[1, 2, 3, 4]]}, None, 400, "unknown field 'inptu'"),
        ({"inputs": {"inputs": [[1, 2, 3, 4]]}}, None, 400, "did you mean 'input'"),
        ({"inputs": {"input": [[1, 2, 3, 4]], "extra": [1]}}, None, 400, "unknown input 'extra'"),
        ({"inputs": {}}, None, 400, "missing input"),
        ({"input": [[1, 2, 3]]}, None, 400, "dimension 1 must be 4"),
        ({"input": [1, 2, 3, 4]}, None, 400, "must have rank 2"),
        ({"input": [[1, 2, 3, 4], [1]]}, None, 400, "ragged"),
        ({"input": [["a", "b", "c", "d"]]}, None, 400, "this model takes numbers, not text"),
        ({"input": [[True, True, False, False]]}, None, 400, "got booleans"),
    ],
)
def test_bad_requests_get_400_with_an_actionable_message(
    call: Call, iris: tuple, body: object, raw: str | None, status: int, message: str
) -> None:
    got_status, got = call("POST", "/models/iris/predict", body, raw_body=raw)
    assert got_status == status
    assert message in got["error"]
    assert "Traceback" not in got["error"]


def test_wrong_element_type_for_an_integer_input(call: Call, registry: Registry) -> None:
    registry.publish("tokens", models.two_inputs())
    status, body = call(
        "POST",
        "/models/tokens/predict",
        {"inputs": {"input_ids": [[1.5, 2]], "mask": [[1.0, 1.0]]}},
    )
    assert status == 400
    assert "expects INT64 integers" in body["error"]


def test_a_bare_input_for_a_multi_input_model_says_how_to_name_them(
    call: Call, registry: Registry
) -> None:
    registry.publish("tokens", models.two_inputs())
    status, body = call("POST", "/models/tokens/predict", {"input": [[1, 2]]})
    assert status == 400
    assert "send them by name" in body["error"]


def test_body_over_the_limit_is_413(call: Call, iris: tuple) -> None:
    raw = '{"input": [' + ",".join(["[1.0, 2.0, 3.0, 4.0]"] * 350_000) + "]}"
    assert len(raw) > 6 * 1024 * 1024
    status, body = call("POST", "/models/iris/predict", raw_body=raw)
    assert status == 413
    assert "limit" in body["error"]


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/models/unknown/predict", None, 404, "model 'unknown' does not exist"),
        ("/models/iris/predict", {"version": "7"}, 404, "has no version 7"),
        ("/models/iris/predict", {"alias": "staging"}, 404, "no alias 'staging'"),
        ("/models/Iris/predict", None, 400, "invalid model name"),
        ("/models/..%2Fx/predict", None, 400, "invalid model name"),
        ("/models/iris/predict", {"version": "one"}, 400, "invalid version"),
        ("/models/iris/predict", {"version": "1", "alias": "latest"}, 400, "not both"),
    ],
)
def test_references_that_do_not_resolve(
    call: Call, iris: tuple, path: str, query: dict | None, status: int, message: str
) -> None:
    got_status, body = call("POST", path, {"input": [[1, 2, 3, 4]]}, query=query)
    assert got_status == status
    assert message in body["error"]


def test_unknown_route_is_404_json(call: Call) -> None:
    status, body = call("GET", "/nowhere")
    assert status == 404
    assert "no route for GET /nowhere" in body["error"]


def test_unexpected_errors_hide_the_trace(call: Call, api: object, iris: tuple) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    api.service.predict = boom  # type: ignore[attr-defined]
    status, body = call("POST", "/models/iris/predict", {"input": [[1, 2, 3, 4]]})
    assert status == 500
    assert "secret" not in body["error"]
    assert "request id" in body["error"]


def test_registry_views(call: Call, registry: Registry, iris: tuple) -> None:
    registry.publish("iris", models.linear(seed=4)[0], metrics={"accuracy": 0.97})
    status, listing = call("GET", "/models")
    assert status == 200
    assert listing == {
        "models": [{"name": "iris", "versions": [1, 2], "aliases": {"latest": 2}}],
        "skipped": [],
    }
    status, described = call("GET", "/models/iris")
    assert status == 200
    assert described["versions"][1]["metrics"] == {"accuracy": 0.97}
    assert described["versions"][0]["signature"]["inputs"][0]["name"] == "input"
    assert call("GET", "/models/ghost")[0] == 404


def test_openapi_document_and_swagger_page_are_served(call: Call) -> None:
    status, document = call("GET", "/openapi.json")
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert "/models/{name}/predict" in document["paths"]
    assert "/v2/models/{name}/versions/{version}/infer" in document["paths"]
    status, page = call("GET", "/swagger")
    assert status == 200
    assert "swagger" in page.lower()


def test_response_over_the_lambda_limit_is_413(
    call: Call, api: object, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a reply limit of 1000 bytes (Lambda's is 6 MB) and a reply bigger than that
    monkeypatch.setattr(api, "_MAX_RESPONSE_BYTES", 1000)
    registry.publish("echo", models.identity(TensorProto.FLOAT, ["batch", "n"]))
    status, body = call("POST", "/models/echo/predict", {"input": [[0.25] * 400]})
    # Then the client is told to send fewer rows, not handed a gateway error
    assert status == 413
    assert "6 MB limit" in body["error"]
    status, _ = call("POST", "/models/echo/predict", {"input": [[0.25] * 10]})
    assert status == 200


def test_metrics_name_each_requests_model_and_version(
    call: Call, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two models
    registry.publish("first", models.linear(seed=1)[0])
    registry.publish("second", models.linear(seed=2)[0])
    registry.publish("second", models.linear(seed=3)[0])
    capsys.readouterr()
    # When each is called in turn
    for name in ["first", "second", "first"]:
        assert call("POST", f"/models/{name}/predict", {"input": [[1, 2, 3, 4]]})[0] == 200
    # Then each request's EMF record carries its own model and version, and the load time
    # is recorded once per model
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    inference = [(r["model"], r["version"]) for r in records if "InferenceMs" in r]
    assert inference == [("first", "1"), ("second", "2"), ("first", "1")]
    assert sum("ModelLoadMs" in r for r in records) == 2


def test_with_metrics_disabled_no_dimension_leaks_into_the_next_request(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given metrics switched off, as the local stack does (Powertools then never clears them)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    api = cold_start("functions.api.app")
    registry.publish("first", models.linear(seed=1)[0])
    registry.publish("second", models.linear(seed=2)[0])
    # When two models are called in turn, with Powertools' overwrite warning as an error
    with warnings.catch_warnings():
        warnings.simplefilter("error", PowertoolsUserWarning)
        for name in ["first", "second"]:
            event = api_event("POST", f"/models/{name}/predict", {"input": [[1, 2, 3, 4]]})
            # Then neither request trips over the other's dimensions
            assert api.lambda_handler(event, FakeContext())["statusCode"] == 200


def test_string_outputs_keep_their_rows_in_the_simple_reply(call: Call, registry: Registry) -> None:
    # Given a model with a string output of shape [batch, 1]
    registry.publish("tags", models.identity(TensorProto.STRING, ["batch", 1]))
    # When two rows are predicted through the simple shape
    status, body = call("POST", "/models/tags/predict", {"input": [["a"], ["b"]]})
    # Then each row comes back as a list of one string, as V2 returns it
    assert status == 200, body
    assert body["outputs"] == {"y": [["a"], ["b"]]}


def test_a_tampered_artifact_answers_502_emits_a_metric_and_production_still_serves(
    call: Call, registry: Registry, store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given production on a good v1 and latest on a v2 whose stored bytes were replaced
    registry.publish("iris", models.linear(seed=1)[0], aliases=("production",))
    registry.publish("iris", models.linear(seed=2)[0])
    store.client.put_object(Bucket=store.bucket, Key=artifact_key("iris", 2), Body=b"tampered")
    capsys.readouterr()
    # When latest is asked for
    status, body = call("POST", "/models/iris/predict", {"input": [[1, 2, 3, 4]]})
    # Then the reply is a 502 that names the version and the check, not a bare 500
    assert status == 502, body
    assert body["error"].startswith("model 'iris' version 2 failed its integrity check")
    # And one IntegrityFailures point with the model dimension was emitted for the alarm
    points = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"IntegrityFailures"' in line
    ]
    assert [(p["IntegrityFailures"], p["model"]) for p in points] == [(1, "iris")]
    assert points[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model"]]
    # And production still serves v1
    status, body = call(
        "POST", "/models/iris/predict", {"input": [[1, 2, 3, 4]]}, query={"alias": "production"}
    )
    assert (status, body["version"]) == (200, 1)


def test_a_value_too_big_for_float32_is_refused_not_answered_null(call: Call, iris: tuple) -> None:
    status, body = call("POST", "/models/iris/predict", {"input": [1e308, 1, 1, 1]})
    assert status == 400, body
    assert "input 'input' has values outside the FP32 range" in body["error"]
    request = {
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1e39, 1, 1, 1]}]
    }
    status, body = call("POST", "/v2/models/iris/infer", request)
    assert status == 400, body
    assert "outside the FP32 range" in body["error"]


def test_a_non_finite_output_is_refused_with_a_reason(call: Call, registry: Registry) -> None:
    registry.publish("log", models.log())
    status, body = call("POST", "/models/log/predict", {"input": [[0.0, 1.0]]})
    assert status == 400, body
    assert "computed NaN or infinity in output 'y'" in body["error"]
    assert call("POST", "/models/log/predict", {"input": [[1.0, 2.0]]})[0] == 200

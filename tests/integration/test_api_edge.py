"""The API function's edge: content types and encodings, the documented reply shapes, and the
telemetry it keeps (correlation ids, metrics, tracing) once Powertools is off the request path."""

from __future__ import annotations

import gzip
import json
from typing import Any

import jsonschema
import orjson
import pytest
from onnx import TensorProto

from maaskit.registry.catalog import Registry
from maaskit.serving import openapi
from tests.integration.conftest import Call, cold_start
from tests.support import models
from tests.support.events import FakeContext, api_event

BODY = {"input": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture
def iris(registry: Registry) -> None:
    registry.publish("iris", models.linear(4, 3)[0])


def _invoke(api: Any, event: dict[str, Any]) -> tuple[int, Any]:
    reply = api.lambda_handler(event, FakeContext())
    return reply["statusCode"], orjson.loads(reply["body"])


def _with_headers(event: dict[str, Any], **headers: str) -> dict[str, Any]:
    event["headers"] = {**event["headers"], **headers}
    return event


# content types and encodings -------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415_saying_what_to_send(
    api: Any, iris: None, content_type: str
) -> None:
    # Given a JSON body sent with another content type
    event = _with_headers(
        api_event("POST", "/models/iris/predict", BODY), **{"Content-Type": content_type}
    )
    # Then it is refused with 415 and the header to send
    status, body = _invoke(api, event)
    assert status == 415
    assert "Content-Type: application/json" in body["error"]


def test_a_gzip_body_from_a_binary_media_type_is_inflated(api: Any, iris: None) -> None:
    # Given the body gzip-compressed, base64-encoded as API Gateway passes binary media types
    compressed = gzip.compress(json.dumps(BODY).encode())
    event = api_event("POST", "/models/iris/predict", raw_body=compressed, base64_body=True)
    event = _with_headers(event, **{"Content-Encoding": "gzip"})
    # Then it is predicted as the plain body would be
    status, body = _invoke(api, event)
    _, plain = _invoke(api, api_event("POST", "/models/iris/predict", BODY))
    assert status == 200, body
    assert body == plain


def test_a_gzip_bomb_is_413_without_inflating_it(api: Any, iris: None) -> None:
    # Given 64 MB of gzip-compressed zeros (the request limit is 6 MB)
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
    event = api_event("POST", "/v2/models/iris/infer", raw_body=bomb, base64_body=True)
    status, body = _invoke(api, _with_headers(event, **{"content-encoding": "gzip"}))
    assert status == 413
    assert "inflates to over" in body["error"]


# replies as documented --------------------------------------------------------------------


def _conforms(status: int, body: Any, path: str, method: str) -> None:
    document = openapi.document(version="test")
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered an undocumented {status}"
    ref = responses[str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**ref, "components": document["components"]})


@pytest.mark.parametrize(
    ("method", "path", "resource", "body"),
    [
        ("POST", "/models/iris/predict", "/models/{name}/predict", BODY),
        ("POST", "/models/iris/predict", "/models/{name}/predict", {"input": [[1, 2]]}),
        ("POST", "/models/ghost/predict", "/models/{name}/predict", BODY),
        ("POST", "/models/words/predict", "/models/{name}/predict", {"input": [["a"], ["b"]]}),
        ("POST", "/v2/models/iris/infer", "/v2/models/{name}/infer",
         openapi.SCHEMAS["InferRequest"]["example"]),
        ("POST", "/v2/models/words/versions/1/infer", "/v2/models/{name}/versions/{version}/infer",
         {"inputs": [{"name": "input", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]}]}),
        ("GET", "/models", "/models", None),
        ("GET", "/models/iris", "/models/{name}", None),
        ("GET", "/v2/models/iris", "/v2/models/{name}", None),
        ("GET", "/v2/models/iris/versions/1/ready", "/v2/models/{name}/versions/{version}/ready", None),
        ("GET", "/v2", "/v2", None),
    ],
)  # fmt: skip
def test_replies_match_the_documented_schemas(
    call: Call, registry: Registry, iris: None, method: str, path: str, resource: str, body: Any
) -> None:
    registry.publish("words", models.identity(TensorProto.STRING, ["batch", 1]))
    status, reply = call(method, path, body)
    _conforms(status, reply, resource, method)


# telemetry ---------------------------------------------------------------------------------


def _records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_logs_carry_the_requests_correlation_id(
    api: Any, iris: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request whose handling fails unexpectedly
    api.service.predict = lambda *_, **__: 1 / 0
    event = api_event("POST", "/models/iris/predict", BODY)
    context = FakeContext()
    capsys.readouterr()
    assert api.lambda_handler(event, context)["statusCode"] == 500
    # Then the error record names API Gateway's request id and Lambda's
    (record,) = [r for r in _records(capsys.readouterr().out) if r.get("level") == "ERROR"]
    assert record["correlation_id"] == event["requestContext"]["requestId"]
    assert record["function_request_id"] == context.aws_request_id
    assert "ZeroDivisionError" in record["exception"]


def test_cold_start_is_counted_once_by_function_name(
    api: Any, iris: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for _ in range(3):
        assert _invoke(api, api_event("GET", "/v2/health/live"))[0] == 200
    cold = [r for r in _records(capsys.readouterr().out) if "ColdStart" in r]
    assert len(cold) == 1
    assert cold[0]["function_name"] == FakeContext().function_name
    assert cold[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "ColdStart", "Unit": "Count"}
    ]


def test_models_named_in_the_settings_load_during_init(
    store: object,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two published models, one of them promoted, and a deployment that preloads both
    registry.publish("iris", models.linear(seed=1)[0], aliases=("production",))
    registry.publish("iris", models.linear(seed=2)[0])
    registry.publish("mlp", models.mlp(8, 8, 2))
    monkeypatch.setenv("MAASKIT_PRELOAD_MODELS", "iris@production,mlp@1,ghost")
    capsys.readouterr()
    # When a sandbox starts
    api = cold_start("functions.api.app")
    # Then both sessions exist before any request, their load times are recorded, and the
    # model that does not exist is reported, not fatal
    assert api.service.runtime.is_loaded("iris", 1)
    assert not api.service.runtime.is_loaded("iris", 2)
    assert api.service.runtime.is_loaded("mlp", 1)
    records = _records(capsys.readouterr().out)
    loads = sorted((r["model"], r["version"]) for r in records if "ModelLoadMs" in r)
    assert loads == [("iris", "1"), ("mlp", "1")]
    (failed,) = [r for r in records if r.get("message") == "could not preload a model"]
    assert failed["model"] == "ghost"
    assert _invoke(api, api_event("GET", "/v2/health/ready"))[0] == 200


_TRACED_SANDBOX = """
import json, os
os.environ.update({
    "POWERTOOLS_TRACE_DISABLED": "false", "AWS_LAMBDA_FUNCTION_NAME": "maaskit-api",
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
})
import boto3
from moto import mock_aws
from aws_xray_sdk.core import xray_recorder
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from tests.support import models
from tests.support.events import FakeContext, api_event

class Segments:  # an emitter that keeps what it would send to the X-Ray daemon
    sent = []
    ip, port = "127.0.0.1", 2000
    def send_entity(self, entity): self.sent.append(entity.name)
    def set_daemon_address(self, address): pass

xray_recorder._emitter = Segments()
with mock_aws():
    bucket = os.environ["MAASKIT_BUCKET"]
    boto3.client("s3").create_bucket(Bucket=bucket)
    Registry(ObjectStore(bucket)).publish("iris", models.linear(4, 3)[0])
    import functions.api.app as app
    event = api_event("POST", "/models/iris/predict", {"input": [[5.1, 3.5, 1.4, 0.2]]})
    reply = app.lambda_handler(event, FakeContext())
print(json.dumps({"status": reply["statusCode"], "wrapped": app.lambda_handler is not app._handle,
                  "segments": Segments.sent}))
"""


def _sandbox(code: str) -> str:
    """Run ``code`` in a fresh interpreter: the X-Ray SDK patches botocore for good."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_with_tracing_on_the_handler_and_s3_calls_are_traced(store: object) -> None:
    # Given a Lambda sandbox with tracing on (the X-Ray SDK is imported only then)
    # When a request loads a model from S3
    seen = json.loads(_sandbox(_TRACED_SANDBOX))
    # Then the handler has its subsegment, and each S3 call (botocore patched) its own
    assert seen["status"] == 200
    assert seen["wrapped"] is True
    assert "## _handle" in seen["segments"]
    assert seen["segments"].count("s3") >= 2  # the alias, the manifest, the artifact


def test_with_tracing_off_neither_the_xray_sdk_nor_powertools_is_imported(store: object) -> None:
    code = (
        "import sys; import functions.api.app as app; "
        "assert app.lambda_handler is app._handle; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_xray_sdk', 'aws_lambda_powertools'))))"
    )
    assert _sandbox(code) == "[]"

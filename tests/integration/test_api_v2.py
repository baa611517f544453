"""Open Inference Protocol V2, field for field as KServe documents it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from maaskit.registry.catalog import Registry
from tests.integration.conftest import Call
from tests.support import models


@pytest.fixture
def iris(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    data, weights, bias = models.linear(4, 3)
    registry.publish("iris", data)
    registry.publish("iris", data)
    return weights, bias


def test_health_and_server_metadata(call: Call) -> None:
    assert call("GET", "/v2/health/live") == (200, {"live": True})
    assert call("GET", "/v2/health/ready") == (200, {"ready": True})
    status, body = call("GET", "/v2")
    assert status == 200
    assert body["name"] == "maaskit"


def test_model_metadata_uses_minus_one_for_variable_dims(call: Call, iris: tuple) -> None:
    status, body = call("GET", "/v2/models/iris")
    assert status == 200
    assert body == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "onnx_onnxv1",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}],
    }
    status, body = call("GET", "/v2/models/iris/versions/1")
    assert (status, body["versions"]) == (200, ["1"])


def test_model_ready(call: Call, iris: tuple) -> None:
    assert call("GET", "/v2/models/iris/ready")[1]["ready"] is True
    assert call("GET", "/v2/models/iris/versions/2/ready")[0] == 200
    assert call("GET", "/v2/models/iris/versions/9/ready")[0] == 404
    assert call("GET", "/v2/models/ghost/ready")[0] == 404


@pytest.mark.parametrize("nested", [False, True])
def test_infer_with_flat_or_nested_data_echoes_the_id(
    call: Call, iris: tuple, nested: bool
) -> None:
    weights, bias = iris
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], np.float32)
    data = x.tolist() if nested else x.reshape(-1).tolist()
    request = {
        "id": "req-42",
        "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": data}],
    }
    status, body = call("POST", "/v2/models/iris/versions/1/infer", request)
    assert status == 200, body
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    assert body["id"] == "req-42"
    [output] = body["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output", "FP32", [2, 3])
    np.testing.assert_allclose(
        np.array(output["data"]).reshape(2, 3), x @ weights + bias, rtol=1e-6
    )


def test_infer_without_version_uses_latest_and_selects_outputs(
    call: Call, registry: Registry
) -> None:
    registry.publish("tokens", models.two_inputs())
    request = {
        "inputs": [
            {"name": "input_ids", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 3]},
            {"name": "mask", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 0]},
        ],
        "outputs": [{"name": "score"}],
    }
    status, body = call("POST", "/v2/models/tokens/infer", request)
    assert status == 200, body
    assert "id" not in body
    assert body["outputs"] == [{"name": "score", "datatype": "FP32", "shape": [1], "data": [3.0]}]


@pytest.mark.parametrize(
    ("elem_type", "datatype", "data"),
    [
        (TensorProto.BOOL, "BOOL", [True, False]),
        (TensorProto.UINT8, "UINT8", [0, 255]),
        (TensorProto.UINT16, "UINT16", [0, 65535]),
        (TensorProto.UINT32, "UINT32", [0, 4294967295]),
        (TensorProto.UINT64, "UINT64", [0, 2**63]),
        (TensorProto.INT8, "INT8", [-128, 127]),
        (TensorProto.INT16, "INT16", [-32768, 32767]),
        (TensorProto.INT32, "INT32", [-(2**31), 2**31 - 1]),
        (TensorProto.INT64, "INT64", [-(2**62), 2**62]),
        (TensorProto.FLOAT16, "FP16", [0.5, -2.0]),
        (TensorProto.FLOAT, "FP32", [0.25, -1.5]),
        (TensorProto.DOUBLE, "FP64", [0.1, 1e300]),
        (TensorProto.STRING, "BYTES", ["héllo", "world"]),
    ],
)
def test_every_v2_datatype_round_trips(
    call: Call, registry: Registry, elem_type: int, datatype: str, data: list
) -> None:
    registry.publish("echo", models.identity(elem_type))
    request = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": datatype, "data": data}]}
    status, body = call("POST", "/v2/models/echo/infer", request)
    assert status == 200, body
    assert body["outputs"] == [{"name": "y", "datatype": datatype, "shape": [1, 2], "data": data}]


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({}, '"inputs" must be a non-empty list'),
        ({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32"}]}, "missing 'data'"),
        (
            {"inputs": [{"name": "inptu", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}]},
            "did you mean 'input'",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT64", "data": [1] * 4}]},
            "does not match the model's FP32",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP99", "data": [1] * 4}]},
            "unknown datatype 'FP99'",
        ),
        (
            {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1] * 4}]},
            "holds 8 elements but data has 4",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1] * 3}]},
            "dimension 1 must be 4",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, -4], "datatype": "FP32", "data": [1] * 4}]},
            "non-negative integers",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ["a"] * 4}]},
            "got strings",
        ),
        (
            {
                "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}],
                "outputs": [{"name": "logits"}],
            },
            "unknown output 'logits'",
        ),
    ],
)
def test_bad_v2_requests_are_400_with_error_field(
    call: Call, iris: tuple, request_body: dict, message: str
) -> None:
    status, body = call("POST", "/v2/models/iris/infer", request_body)
    assert status == 400
    assert set(body) == {"error"}
    assert message in body["error"]


def test_v2_unknown_model_and_version_are_404(call: Call, iris: tuple) -> None:
    request = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}]}
    assert call("POST", "/v2/models/ghost/infer", request)[0] == 404
    assert call("POST", "/v2/models/iris/versions/3/infer", request)[0] == 404
    assert call("GET", "/v2/models/ghost")[0] == 404

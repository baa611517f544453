"""The served OpenAPI document is the contract: schemathesis generates requests from it against
the local stack (two models: numeric and string), and every reply must be documented — no 5xx,
status codes, content types and bodies as the document says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from maaskit.local.stack import LocalStack
from maaskit.serving import openapi
from tests.e2e.conftest import client_for
from tests.support import models

EXAMPLES_PER_RUN = 25  # per operation and mode; operations without parameters have fewer
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
_sent: list[int] = []


@pytest.fixture(scope="module")
def api_schema(maaskit_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("contract-models")
    client = client_for(maaskit_stack)
    numeric = Path(folder / "iris.onnx")
    numeric.write_bytes(models.linear(4, 3)[0])
    client.push_model(numeric, "iris", aliases=("production",))
    text = Path(folder / "words.onnx")
    text.write_bytes(models.identity(TensorProto.STRING, ["batch", 1]))
    client.push_model(text, "words")
    return schemathesis.openapi.from_url(maaskit_stack.api_url + "openapi.json")


_MODES = [
    # (mode, fixed path parameters): made-up names (404s), each published model, and
    # requests that break the schema on purpose (each must be a documented 4xx)
    (GenerationMode.POSITIVE, {}),
    (GenerationMode.POSITIVE, {"name": "iris", "version": "1"}),
    (GenerationMode.POSITIVE, {"name": "words", "version": "1"}),
    (GenerationMode.NEGATIVE, {}),
]


@pytest.mark.parametrize("operation", [f"{op.method} {op.path}" for op in openapi.OPERATIONS])
def test_every_reply_is_as_documented(api_schema: Any, operation: str) -> None:
    method, path = operation.split(" ")
    described = api_schema[path][method]
    session = requests.Session()
    for mode, fixed in _MODES:
        wanted = {k: v for k, v in fixed.items() if "{" + k + "}" in path}
        if (fixed or mode is GenerationMode.NEGATIVE) and "{" not in path and method != "POST":
            continue  # nothing to fix or to break: one run covers it

        @given(case=described.as_strategy(generation_mode=mode, path_parameters=wanted or None))
        @settings(
            max_examples=EXAMPLES_PER_RUN,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call_and_validate(checks=CHECKS, session=session, timeout=30)
            _sent.append(response.status_code)

        run()


def test_enough_requests_were_sent() -> None:
    # Runs after the generated tests of this module (pytest keeps file order)
    print(f"{len(_sent)} requests generated from the document")
    assert len(_sent) >= 500, f"only {len(_sent)} requests"
    assert all(status < 500 for status in _sent)
    assert 200 in _sent  # generation reached the models, not only refusals

"""The API's description: one table of operations behind the template, the router and the document."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate

from maaskit.local.template import Template
from maaskit.serving import openapi

TEMPLATE = Path(__file__).parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi.document(version="9.9.9", server_url="/Prod")


def test_the_document_is_valid_openapi_3_1(document: dict) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/Prod"}]


def test_the_template_routes_the_api_function_exactly_the_described_operations() -> None:
    # Given the API function's events in the template
    routes = {
        (route.method, route.path)
        for api in Template.load(TEMPLATE).apis()
        for route in api.routes
        if route.function_id == "ApiFunction"
    }
    # Then they are the operations, plus the two routes serving the description itself
    described = {(op.method, op.path) for op in openapi.OPERATIONS}
    assert routes == described | set(openapi.DOCUMENT_ROUTES)


def test_every_body_is_required_and_has_a_schema_with_an_example(document: dict) -> None:
    posts = [(path, item["post"]) for path, item in document["paths"].items() if "post" in item]
    assert len(posts) == 3
    for path, operation in posts:
        body = operation["requestBody"]
        assert body["required"] is True, path
        schema_ref = body["content"]["application/json"]["schema"]["$ref"]
        schema = openapi.SCHEMAS[schema_ref.rsplit("/", 1)[1]]
        assert schema["type"] == "object"
        assert "example" in schema, "Swagger's Try it out starts from the example"


def test_predict_takes_version_alias_and_truncate_and_lists_its_statuses(document: dict) -> None:
    operation = document["paths"]["/models/{name}/predict"]["post"]
    assert [p["name"] for p in operation["parameters"]] == ["name", "version", "alias", "truncate"]
    assert set(operation["responses"]) == {
        "200", "400", "404", "413", "415", "422", "500", "502", "503"
    }  # fmt: skip
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictResponse"
    }


def test_every_operation_documents_a_json_reply_and_the_error_body(document: dict) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            replies = operation["responses"]
            assert replies["200"]["content"]["application/json"]["schema"]["$ref"], (path, method)
            errors = [s for s in replies if s != "200"]
            assert "500" in errors
            for status in errors:
                schema = replies[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}


def _validator(document: dict, name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("PredictRequest", {"input": [[1, 2, 3, 4]]}, True),
        ("PredictRequest", {"input": "a text"}, True),
        ("PredictRequest", {"input": ["one text", "another"]}, True),
        ("PredictRequest", {"inputs": {"ids": [[1, 2]], "mask": [[1, 1]]}, "version": 2}, True),
        ("PredictRequest", {"input": [[1]], "inputs": {}}, False),
        ("PredictRequest", {}, False),
        ("PredictRequest", {"input": [1], "extra": 1}, False),
        ("InferRequest", openapi.SCHEMAS["InferRequest"]["example"], True),
        ("InferRequest", {"inputs": []}, False),
        ("InferRequest", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP8", "data": [1]}]}, False),
        ("PredictResponse", {"model": "m", "version": 1, "outputs": {"y": [[0.5]]}}, True),
        ("PredictResponse", {"model": "m", "version": "1", "outputs": {}}, False),
        ("InferResponse", {"model_name": "m", "model_version": "1", "outputs": [
            {"name": "y", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]}]}, True),
        ("Error", {"error": "what went wrong"}, True),
        ("Error", {"message": "Internal server error"}, False),
    ],
)  # fmt: skip
def test_schemas_accept_what_the_api_takes_and_refuse_the_rest(
    document: dict, name: str, value: object, valid: bool
) -> None:
    assert _validator(document, name).is_valid(value) is valid

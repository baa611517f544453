"""Routes and the API Gateway event builder: what a handler sees for an HTTP request."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from maaskit.local.api_server import LocalApi
from maaskit.local.apigw import ApiInfo, HttpRequest, build_event, is_binary, parse_reply
from maaskit.local.lambda_router import LambdaRouter
from maaskit.local.routes import RouteTable
from maaskit.local.template import Route, Template

SAMPLE = Path(__file__).parents[1] / "fixtures" / "sample_stack" / "template.yaml"


def _route(path: str, method: str = "GET") -> Route:
    return Route(api_id="Api", path=path, method=method, function_id="Fn", function_name="fn")


def test_most_specific_route_wins() -> None:
    table = RouteTable(
        [
            _route("/{proxy+}", "ANY"),
            _route("/models/{name}"),
            _route("/models/{name}/predict", "POST"),
            _route("/models/{name}/predict", "ANY"),
            _route("/models/special"),
            _route("/v2/models/{name}/versions/{version}/infer", "POST"),
        ]
    )

    def matched(method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        found = table.match(method, path)
        if found is None:
            return None
        return found.route.path, found.route.method, found.path_parameters

    assert matched("GET", "/models/special") == ("/models/special", "GET", {})
    assert matched("GET", "/models/digits") == ("/models/{name}", "GET", {"name": "digits"})
    assert matched("POST", "/models/a%20b/predict") == (
        "/models/{name}/predict",
        "POST",
        {"name": "a b"},
    )
    assert matched("PUT", "/models/x/predict") == ("/models/{name}/predict", "ANY", {"name": "x"})
    assert matched("POST", "/v2/models/m/versions/3/infer") == (
        "/v2/models/{name}/versions/{version}/infer",
        "POST",
        {"name": "m", "version": "3"},
    )
    assert matched("DELETE", "/anything/else/here") == (
        "/{proxy+}",
        "ANY",
        {"proxy": "anything/else/here"},
    )


def test_no_route_no_match() -> None:
    table = RouteTable([_route("/models/{name}")])
    assert table.match("GET", "/models") is None
    assert table.match("GET", "/models/a/b") is None
    assert table.match("POST", "/models/a") is None


def test_event_has_the_rest_proxy_fields() -> None:
    # Given a POST with a query string repeated key and JSON body
    table = RouteTable([_route("/models/{name}/predict", "POST")])
    match = table.match("POST", "/models/digits/predict")
    assert match is not None
    request = HttpRequest(
        method="POST",
        path="/models/digits/predict",
        query="alias=production&tag=a&tag=b",
        headers=[("Content-Type", "application/json"), ("Host", "127.0.0.1:3000")],
        body=b'{"input": [1, 2]}',
    )

    # When it becomes an event
    event = build_event(
        request, match, ApiInfo(api_id="abc", stage="Prod"), request_id="rid", now=1700000000.0
    )

    # Then it carries what API Gateway sends
    assert event["resource"] == "/models/{name}/predict"
    assert event["path"] == "/models/digits/predict"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"name": "digits"}
    assert event["queryStringParameters"] == {"alias": "production", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"alias": ["production"], "tag": ["a", "b"]}
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["Host"] == ["127.0.0.1:3000"]
    assert event["body"] == '{"input": [1, 2]}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "Prod"
    assert context["resourcePath"] == "/models/{name}/predict"
    assert context["httpMethod"] == "POST"
    assert context["requestId"] == "rid"
    assert context["path"] == "/Prod/models/digits/predict"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestTimeEpoch"] == 1700000000000


def test_empty_parts_are_none_as_on_api_gateway() -> None:
    match = RouteTable([_route("/health")]).match("GET", "/health")
    assert match is not None
    event = build_event(HttpRequest("GET", "/health", "", [], b""), match, ApiInfo("a", "Prod"))
    assert event["body"] is None
    assert event["queryStringParameters"] is None
    assert event["pathParameters"] is None


def test_binary_media_types_base64_the_body() -> None:
    match = RouteTable([_route("/upload", "POST")]).match("POST", "/upload")
    assert match is not None
    payload = bytes(range(256))
    request = HttpRequest(
        "POST", "/upload", "", [("content-type", "application/octet-stream")], payload
    )

    event = build_event(request, match, ApiInfo("a", "Prod", binary_media_types=("*/*",)))

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


@pytest.mark.parametrize(
    ("content_type", "types", "expected"),
    [
        ("application/octet-stream", ("application/octet-stream",), True),
        ("image/png; q=1", ("image/*",), True),
        ("application/json", ("*/*",), True),
        ("application/json", ("application/octet-stream",), False),
        (None, ("*/*",), False),
    ],
)
def test_is_binary(content_type: str | None, types: tuple[str, ...], expected: bool) -> None:
    assert is_binary(content_type, types) is expected


def test_reply_becomes_response() -> None:
    response = parse_reply(
        {
            "statusCode": 201,
            "headers": {"X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert response.body == b"\x00\x01"
    assert ("Set-Cookie", "a=1") in response.headers
    assert ("Set-Cookie", "b=2") in response.headers
    assert response.header("x-one") == "1"
    assert response.header("content-type") == "application/json"  # API Gateway's default


@pytest.mark.parametrize(
    "reply",
    [None, "text", {"body": "x"}, {"statusCode": 99}, {"statusCode": 200, "body": {"a": 1}}],
)
def test_malformed_reply_is_502(reply: object) -> None:
    response = parse_reply(reply)
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal server error"}


def _local_api() -> LocalApi:
    template = Template.load(SAMPLE)
    router = LambdaRouter()
    for function in template.functions():
        router.register(function.name, function.code_dir, function.handler)
    return LocalApi(template.apis(), router.invoke)


def test_local_api_serves_routes_at_root_and_under_the_stage() -> None:
    api = _local_api()

    at_root = api.handle(HttpRequest("GET", "/items/42", "q=1", [], b""))
    under_stage = api.handle(HttpRequest("GET", "/v1/items/42", "", [], b""))

    assert at_root.status == 200
    assert json.loads(at_root.body)["pathParameters"] == {"id": "42"}
    assert json.loads(at_root.body)["stage"] == "v1"
    assert under_stage.status == 200
    assert json.loads(under_stage.body)["path"] == "/items/42"


def test_local_api_answers_like_api_gateway_on_errors() -> None:
    api = _local_api()

    assert api.handle(HttpRequest("GET", "/nowhere", "", [], b"")).status == 403
    assert api.handle(HttpRequest("POST", "/items/1", "", [], b"")).status == 403
    assert api.handle(HttpRequest("GET", "/files/boom", "", [], b"")).status == 502
    assert api.handle(HttpRequest("GET", "/files/malformed", "", [], b"")).status == 502

"""The SDK's HTTP: retries with backoff, error messages, API keys, SigV4 signatures."""

from __future__ import annotations

import io
import json
import urllib.error
from email.message import Message
from typing import Any

import pytest

from maaskit.sdk.transport import (
    ApiError,
    ConnectionFailed,
    HttpTransport,
    RetryPolicy,
    SigV4Signer,
    region_of,
)


class _Reply(io.BytesIO):
    def __enter__(self) -> _Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _http_error(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> urllib.error.HTTPError:
    message = Message()
    for key, value in (headers or {}).items():
        message[key] = value
    data = io.BytesIO(json.dumps(body).encode())
    return urllib.error.HTTPError("http://x/", status, "error", message, data)


class FakeOpener:
    """Plays back a list of outcomes (a reply body, or an exception) and records requests."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> _Reply:
        self.requests.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return _Reply(json.dumps(outcome).encode())


def _transport(opener: FakeOpener, **kwargs: Any) -> tuple[HttpTransport, list[float]]:
    slept: list[float] = []
    transport = HttpTransport(
        "http://api.example/Prod", opener=opener, sleep=slept.append, **kwargs
    )
    return transport, slept


def test_retries_throttling_and_gateway_errors_then_succeeds() -> None:
    opener = FakeOpener(
        _http_error(429, {"message": "Too Many Requests"}, {"Retry-After": "2"}),
        _http_error(503, {"message": "Service Unavailable"}),
        {"ok": True},
    )
    transport, slept = _transport(opener, retry=RetryPolicy(retries=3))

    assert transport.request("POST", "models/m/predict", body={"input": [1]}) == {"ok": True}

    assert len(opener.requests) == 3
    assert slept[0] == 2.0  # Retry-After is honoured
    assert 0 <= slept[1] <= 0.4  # then jittered exponential backoff
    request = opener.requests[0]
    assert request.full_url == "http://api.example/Prod/models/m/predict"
    assert json.loads(request.data) == {"input": [1]}
    assert request.get_header("Content-type") == "application/json"


def test_client_errors_are_not_retried_and_carry_the_api_message() -> None:
    opener = FakeOpener(_http_error(400, {"error": "input 'x' must be 4 wide"}))
    transport, _ = _transport(opener)

    with pytest.raises(ApiError, match="input 'x' must be 4 wide") as caught:
        transport.request("POST", "models/m/predict", body={})

    assert caught.value.http_status == 400
    assert len(opener.requests) == 1


def test_gives_up_after_the_retries() -> None:
    opener = FakeOpener(*[_http_error(502, {"message": "Internal server error"}) for _ in range(3)])
    transport, slept = _transport(opener, retry=RetryPolicy(retries=2))

    with pytest.raises(ApiError, match="Internal server error") as caught:
        transport.request("GET", "models")

    assert caught.value.http_status == 502
    assert len(slept) == 2


def test_refused_connections_end_in_one_clear_error() -> None:
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    opener = FakeOpener(refused, refused)
    transport, _ = _transport(opener, retry=RetryPolicy(retries=1))

    with pytest.raises(ConnectionFailed, match=r"cannot reach http://api.example/Prod/models"):
        transport.request("GET", "models")


def test_api_gateway_403_is_explained() -> None:
    opener = FakeOpener(_http_error(403, {"message": "Forbidden"}))
    transport, _ = _transport(opener)
    with pytest.raises(ApiError, match="API key is missing or wrong"):
        transport.request("GET", "models")


def test_api_key_and_query_string() -> None:
    opener = FakeOpener({"models": []})
    transport, _ = _transport(opener, api_key="secret")

    transport.request("POST", "models/a%20b/predict", body={}, query={"alias": "prod", "v": None})

    request = opener.requests[0]
    assert request.get_header("X-api-key") == "secret"
    assert request.full_url.endswith("/models/a%20b/predict?alias=prod")


def test_sigv4_signs_every_attempt() -> None:
    from botocore.credentials import Credentials

    signer = SigV4Signer("eu-west-1", Credentials("AKIDEXAMPLE", "secret"))
    opener = FakeOpener(_http_error(503, {}), {"ok": 1})
    transport, _ = _transport(opener, signer=signer)

    transport.request("GET", "models")

    for request in opener.requests:
        authorization = request.get_header("Authorization")
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/execute-api/aws4_request" in authorization
        assert request.get_header("X-amz-date")


def test_region_of_execute_api_hosts() -> None:
    assert region_of("https://abc123.execute-api.eu-central-1.amazonaws.com/Prod/") == (
        "eu-central-1"
    )
    assert region_of("http://127.0.0.1:3000/") is None

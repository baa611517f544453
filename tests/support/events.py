"""Event fixtures (JSON files under tests/events/: API Gateway, S3 notifications) and a fake Lambda context."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote

from maaskit.serving import openapi

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    with (EVENTS / name).open() as handle:
        event: dict[str, Any] = json.load(handle)
    return event


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    raw_body: str | bytes | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A REST API proxy event for ``method path``, built on the recorded fixture."""
    event = copy.deepcopy(load_event("api_predict.json"))
    event["httpMethod"] = method
    event["path"] = path
    event["resource"], event["pathParameters"] = resource_of(path)
    event["requestContext"]["resourcePath"] = event["resource"]
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = "/Prod" + path
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if raw_body is not None:
        data = raw_body.encode() if isinstance(raw_body, str) else raw_body
    elif body is not None:
        data = json.dumps(body).encode()
    else:
        data = None
    if data is None:
        event["body"] = None
    elif base64_body:
        event["body"] = base64.b64encode(data).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = data.decode()
    return event


_RESOURCES = [op.path for op in openapi.OPERATIONS] + [p for _, p in openapi.DOCUMENT_ROUTES]


def resource_of(path: str) -> tuple[str, dict[str, str] | None]:
    """The API's resource path for ``path`` and its parameters, as API Gateway matches them."""
    actual = path.strip("/").split("/")
    for resource in _RESOURCES:
        template = resource.strip("/").split("/")
        if len(template) != len(actual):
            continue
        parameters = {}
        for want, got in zip(template, actual, strict=True):
            if want.startswith("{"):
                parameters[want[1:-1]] = unquote(got)
            elif want != got:
                break
        else:
            return resource, parameters or None
    return path, None  # API Gateway would not invoke the function; the app answers 404


@dataclass
class FakeContext:
    function_name: str = "maaskit-ApiFunction"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:maaskit-ApiFunction"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def s3_event(
    fixture: str,
    key: str,
    *,
    bucket: str | None = None,
    etag: str | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """An S3 notification built on a recorded fixture, with the key URL-encoded as S3 sends it."""
    event = copy.deepcopy(load_event(fixture))
    record = event["Records"][0]["s3"]
    record["object"]["key"] = quote_plus(key, safe="/")
    if bucket is not None:
        record["bucket"]["name"] = bucket
        record["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    if etag is not None:
        record["object"]["eTag"] = etag.strip('"')
    if size is not None:
        record["object"]["size"] = size
    return event

"""API Gateway event fixtures (JSON files under tests/events/) and a fake Lambda context."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class FakeContext:
    function_name: str = "maaskit-ApiFunction"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:maaskit-ApiFunction"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms

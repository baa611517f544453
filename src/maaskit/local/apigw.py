"""HTTP request → API Gateway REST proxy event, and the handler's reply → HTTP response.

The event has the fields a REST API (payload format 1.0) sends to a Lambda proxy
integration: ``resource``, ``path``, ``httpMethod``, single- and multi-value headers and query
strings, ``pathParameters``, ``requestContext`` (stage, resourcePath, requestId, identity...)
and a body that is base64-encoded when its Content-Type is one of the API's binary media
types. Replies follow API Gateway's rules too: a malformed reply or a failed invocation is a
502 ``{"message": "Internal server error"}``; an unknown route is a 403
``{"message": "Missing Authentication Token"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from maaskit.local.request_ids import new_request_id
from maaskit.local.routes import RouteMatch


class HttpRequest(NamedTuple):
    """One request as the front read it (a named tuple: immutable, and cheap to build)."""

    method: str
    path: str  # without the query string, still percent-encoded
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"


class HttpResponse(NamedTuple):
    """One response to send (a named tuple: immutable, and cheap to build)."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True)
class ApiInfo:
    """What the event needs to know about the API itself."""

    api_id: str
    stage: str
    account_id: str = "123456789012"
    binary_media_types: tuple[str, ...] = ()


def json_response(status: int, document: Any) -> HttpResponse:
    body = json.dumps(document).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


MISSING_ROUTE = json_response(403, {"message": "Missing Authentication Token"})
BAD_GATEWAY = json_response(502, {"message": "Internal server error"})


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_binary(content_type: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether API Gateway would base64-encode a body of this Content-Type."""
    media = _media_type(content_type)
    if not media:
        return False
    kind, _, _subtype = media.partition("/")
    for given in binary_media_types:
        pattern = given.lower()
        if pattern in ("*/*", media) or pattern == f"{kind}/*":
            return True
    return False


@lru_cache(maxsize=256)
def _is_binary_cached(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    """:func:`is_binary` for the few Content-Types a front sees, decided once each."""
    return is_binary(content_type, binary_media_types)


def _header_maps(
    headers: Sequence[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None, dict[str, str]]:
    """Single- and multi-value headers as sent, and a lower-case lookup (last value wins)."""
    if not headers:
        return None, None, {}
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    lookup: dict[str, str] = {}
    for name, value in headers:
        single[name] = value
        if name in multi:
            multi[name].append(value)
        else:
            multi[name] = [value]
        lookup[name.lower()] = value
    return single, multi, lookup


def _query_maps(query: str) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    pairs = parse_qsl(query, keep_blank_values=True) if query else None
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


_request_time_cache: list[Any] = [None, ""]


def _request_time(now: float) -> str:
    """``requestTime`` as API Gateway writes it, formatted once a second."""
    second = int(now)
    if _request_time_cache[0] != second:
        moment = datetime.fromtimestamp(second, UTC)
        _request_time_cache[:] = [second, moment.strftime("%d/%b/%Y:%H:%M:%S +0000")]
    return str(_request_time_cache[1])


def build_event(
    request: HttpRequest,
    match: RouteMatch,
    api: ApiInfo,
    *,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The proxy event API Gateway would send for ``request`` on the matched route."""
    request_id = request_id or new_request_id()
    now = time.time() if now is None else now
    headers, multi_headers, lookup = _header_maps(request.headers)
    query, multi_query = _query_maps(request.query) if request.query else (None, None)
    content_type = lookup.get("content-type")
    binary = bool(request.body) and _is_binary_cached(content_type, tuple(api.binary_media_types))
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = binascii.b2a_base64(request.body, newline=False).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    route = match.route
    method = request.method.upper()
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(match.path_parameters) or None,  # the match is shared
        "stageVariables": None,
        "requestContext": {
            "accountId": api.account_id,
            "apiId": api.api_id,
            "resourceId": route.function_id,
            "resourcePath": route.path,
            "httpMethod": method,
            "stage": api.stage,
            "path": f"/{api.stage}{request.path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "requestTimeEpoch": int(now * 1000),
            "domainName": lookup.get("host", "127.0.0.1"),
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": lookup.get("user-agent"),
                "apiKey": lookup.get("x-api-key"),
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },
        },
        "body": body,
        "isBase64Encoded": binary,
    }


def parse_reply(reply: Any) -> HttpResponse:
    """The HTTP response for a proxy integration's reply (502 if it is malformed)."""
    if not isinstance(reply, dict):
        return BAD_GATEWAY
    status = reply.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or not 100 <= status <= 599:
        return BAD_GATEWAY
    headers: list[tuple[str, str]] = []
    single = reply.get("headers") or {}
    multi = reply.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return BAD_GATEWAY
    if multi:
        for name, values in multi.items():
            headers.extend((name, str(value)) for value in values or [])
        taken = {name.lower() for name, _ in headers}
        headers.extend(
            (name, str(value)) for name, value in single.items() if name.lower() not in taken
        )
    else:
        headers = [
            (name, value if type(value) is str else str(value)) for name, value in single.items()
        ]
    body = reply.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        return BAD_GATEWAY
    elif reply.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return BAD_GATEWAY
    else:
        raw = body.encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, raw)

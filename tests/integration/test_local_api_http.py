"""The local API front over a real socket: its own request parser and one-write replies."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from maaskit.local.api_server import LocalApi
from maaskit.local.lambda_router import Invocation
from maaskit.local.template import ApiDef, Route


def _echo(function_name: str, event: dict[str, Any]) -> Invocation:
    """A function that answers with what it was given."""
    seen = {"headers": event["multiValueHeaders"], "body": event["body"], "path": event["path"]}
    reply = {"statusCode": 200, "headers": {"X-Seen": "yes"}, "body": json.dumps(seen)}
    return Invocation(function_name, "id", "test", json.dumps(reply), 1.0, value=reply)


@pytest.fixture
def api() -> Iterator[LocalApi]:
    route = Route(
        api_id="Api", path="/{proxy+}", method="ANY", function_id="Fn", function_name="fn"
    )
    local = LocalApi([ApiDef("Api", "Prod", routes=(route,))], _echo, port=0)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _exchange(api: LocalApi, raw: bytes, replies: int = 1) -> list[bytes]:
    """Send raw bytes on one connection; read ``replies`` HTTP responses back."""
    with socket.create_connection((api.host, api.port), timeout=10) as sock:
        sock.sendall(raw)
        stream = sock.makefile("rb")
        found = []
        for _ in range(replies):
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = stream.readline()
                if not line:
                    break
                head += line
            length = next(
                (
                    int(field.split(b":")[1])
                    for field in head.split(b"\r\n")
                    if field.lower().startswith(b"content-length")
                ),
                0,
            )
            found.append(head + stream.read(length))
        return found


def _body(reply: bytes) -> Any:
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])


def test_keep_alive_requests_on_one_connection_each_get_their_reply(api: LocalApi) -> None:
    # Given two pipelined requests, headers in any case, one header repeated
    first = b"POST /a HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nX-Tag: 1\r\nx-tag: 2\r\nContent-Length: 2\r\n\r\n{}"
    second = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    replies = _exchange(api, first + second, replies=2)
    # Then each is answered in order, in one piece with its length and the function's headers
    assert all(r.startswith(b"HTTP/1.1 200 OK\r\n") for r in replies)
    assert b"X-Seen: yes\r\n" in replies[0]
    assert b"Date: " in replies[0]
    seen = _body(replies[0])
    assert seen["body"] == "{}"
    assert seen["headers"]["X-Tag"] == ["1"]
    assert seen["headers"]["x-tag"] == ["2"]
    assert _body(replies[1])["path"] == "/b"


def test_connection_close_is_honoured(api: LocalApi) -> None:
    (reply,) = _exchange(api, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close\r\n" in reply


def test_expect_100_continue_is_answered_before_the_body(api: LocalApi) -> None:
    with socket.create_connection((api.host, api.port), timeout=10) as sock:
        sock.sendall(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"{}")
        assert b'"body": "{}"' in sock.recv(4096)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /a HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"GET /a HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
    ],
)
def test_malformed_headers_are_refused(api: LocalApi, raw: bytes, status: bytes) -> None:
    (reply,) = _exchange(api, raw)
    assert reply.split(b" ")[1] == status

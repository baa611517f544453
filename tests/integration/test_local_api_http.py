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


def test_replies_held_in_a_pass_leave_in_order_before_a_closing_reply_or_a_refusal(
    api: LocalApi,
) -> None:
    # Given keep-alive requests pipelined in one segment with one that closes the connection
    keep = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    closing = b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    # When they are answered in one pass of the loop
    replies = _exchange(api, keep + keep + closing, replies=3)
    # Then the held replies go first, in order, and the closing one last
    assert [_body(reply)["path"] for reply in replies] == ["/a", "/a", "/c"]
    assert b"Connection: close\r\n" in replies[2]
    assert b"Connection: close\r\n" not in replies[0] + replies[1]
    # And a good request's reply leaves before the refusal of a malformed one after it
    refused = b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n"
    first, second = _exchange(api, keep + refused, replies=2)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.startswith(b"HTTP/1.1 400 ")


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


def test_a_request_that_arrives_a_few_bytes_at_a_time_is_answered_once_complete(
    api: LocalApi,
) -> None:
    # Given a request cut into pieces that split the request line, a header and the body
    raw = b'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{"a": true}'
    with socket.create_connection((api.host, api.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # When it is sent seven bytes at a time
        for start in range(0, len(raw), 7):
            sock.sendall(raw[start : start + 7])
        reply = sock.recv(4096)
    # Then it is answered once, with the whole body
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _body(reply) == {
        "headers": {"Host": ["x"], "Content-Length": ["11"]},
        "body": '{"a": true}',
        "path": "/slow",
    }


def test_a_chunked_body_is_joined_before_the_function_sees_it(api: LocalApi) -> None:
    # Given a body sent in two chunks with a chunk extension and a trailer
    raw = (
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;note=1\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    # When it is sent
    (reply,) = _exchange(api, raw)
    # Then the function gets the joined body
    assert _body(reply)["body"] == '{"a": 1}'


def test_head_is_answered_without_a_body_and_http_1_0_closes(api: LocalApi) -> None:
    # Given a HEAD request over HTTP/1.0 without keep-alive
    with socket.create_connection((api.host, api.port), timeout=10) as sock:
        sock.sendall(b"HEAD /h HTTP/1.0\r\nHost: x\r\n\r\n")
        # When the reply is read to the end of the connection
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    # Then it has the length of the body it would have sent, no body, and says it closes
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in head
    assert int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) > 0
    assert body == b""


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /a HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nContent-Length: many\r\n\r\n", b"400"),
    ],
)
def test_a_request_that_is_not_http_1_is_refused_and_the_connection_closed(
    api: LocalApi, raw: bytes, status: bytes
) -> None:
    # Given bytes the front cannot read as an HTTP/1.x request
    with socket.create_connection((api.host, api.port), timeout=10) as sock:
        sock.sendall(raw)
        # When the reply is read to the end of the connection
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    # Then it names the status, says why in JSON, and the connection is closed
    assert reply.split(b" ")[1] == status
    assert "message" in _body(reply)

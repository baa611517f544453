"""The local API's HTTP/1.1 request heads: parsed once per distinct head, refused alike."""

from __future__ import annotations

import pytest

from maaskit.local.http11 import HttpError, encode_response, parse_head


def test_a_repeated_head_reads_the_same_and_a_changed_one_reads_its_own() -> None:
    # Given a keep-alive client's request, sent twice byte for byte, then with another length
    first = (
        b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Tag: 1\r\nx-tag: 2\r\nContent-Length: 2\r\n\r\n{}"
    )
    other = first.replace(b"Content-Length: 2", b"Content-Length: 3") + b" "
    # When each is parsed from its own buffer
    parsed = [parse_head(bytearray(raw)) for raw in (first, first, other)]
    # Then the repeat is read exactly as the first, and the change is seen
    assert None not in parsed
    (head, start), (again, again_start), (changed, _) = (p for p in parsed if p is not None)
    assert (again, again_start) == (head, start)
    assert first[start:] == b"{}"
    assert (head.method, head.target, head.keep_alive) == ("POST", "/a?x=1", True)
    assert head.headers == (("Host", "h"), ("X-Tag", "1"), ("x-tag", "2"), ("Content-Length", "2"))
    assert (head.content_length, changed.content_length) == (2, 3)


def test_an_incomplete_head_waits_and_a_bad_one_is_refused_every_time() -> None:
    assert parse_head(bytearray(b"GET / HTTP/1.1\r\nHost: h\r\n")) is None
    for _ in range(2):
        with pytest.raises(HttpError) as refused:
            parse_head(bytearray(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"))
        assert refused.value.status == 400


def test_a_reply_head_kept_for_its_headers_still_frames_each_body() -> None:
    # Given a function that answers with its own (wrong) length and the same headers each time
    headers = [("Content-Type", "application/json"), ("content-length", "99")]
    # When two bodies of different lengths are sent, one closing the connection
    first = encode_response(200, headers, b"{}", close=False)
    second = encode_response(200, headers, b"[1, 2]", close=True)
    head_only = encode_response(200, headers, b"[1, 2]", close=False, head_only=True)
    # Then each has its own body's length, ours alone, and only the closing one says so
    assert first.endswith(b"\r\nContent-Length: 2\r\n\r\n{}")
    assert second.endswith(b"\r\nContent-Length: 6\r\nConnection: close\r\n\r\n[1, 2]")
    assert head_only.endswith(b"\r\nContent-Length: 6\r\n\r\n")
    for reply in (first, second):
        assert reply.startswith(b"HTTP/1.1 200 OK\r\nServer: maaskit-local\r\nDate: ")
        assert reply.lower().count(b"content-length") == 1
        assert b"Content-Type: application/json\r\n" in reply

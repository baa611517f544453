from __future__ import annotations

import base64
import gzip

import pytest

from maaskit.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from maaskit.serving.http_body import gunzip, request_bytes

BODY = b'{"input": [[1.0, 2.0, 3.0, 4.0]]}'


def _read(body: str | None, *, is_base64: bool = False, **headers: str | None) -> bytes | None:
    return request_bytes(
        body,
        is_base64=is_base64,
        content_type=headers.get("content_type", "application/json"),
        content_encoding=headers.get("content_encoding"),
        max_bytes=1024,
    )


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "Application/JSON; charset=utf-8", "application/vnd.x+json"],
)
def test_json_and_an_absent_content_type_are_read(content_type: str | None) -> None:
    assert _read(BODY.decode(), content_type=content_type) == BODY


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_other_content_types_are_415_saying_what_to_send(content_type: str) -> None:
    # Given a JSON body sent as another media type
    with pytest.raises(UnsupportedMediaType) as refused:
        _read(BODY.decode(), content_type=content_type)
    # Then the caller is told the header to send
    assert refused.value.http_status == 415
    assert "Content-Type: application/json" in refused.value.message


def test_a_gzip_body_passed_as_base64_is_inflated() -> None:
    # Given a gzip body, as API Gateway passes binary media types (base64)
    encoded = base64.b64encode(gzip.compress(BODY)).decode()
    # Then the JSON comes out
    assert _read(encoded, is_base64=True, content_encoding="gzip") == BODY


def test_a_plain_base64_body_is_decoded() -> None:
    assert _read(base64.b64encode(BODY).decode(), is_base64=True) == BODY


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    # Given under 100 KB of gzip that inflates to 64 MB
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    # Then it is refused as too large, having inflated no more than the limit and one step
    with pytest.raises(PayloadTooLarge, match="inflates to over 1024 bytes"):
        gunzip(bomb, max_bytes=1024)


def test_a_gzip_body_at_the_limit_is_accepted() -> None:
    assert gunzip(gzip.compress(b"x" * 1024), max_bytes=1024) == b"x" * 1024


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip at all", "not valid gzip"),
        (gzip.compress(BODY)[:-12], "cut short"),
        (gzip.compress(BODY) + b"trailing", "data after its end"),
    ],
    ids=["not-gzip", "cut-short", "trailing-data"],  # gzip's header holds the time: ids must not
)
def test_broken_gzip_is_a_400(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        gunzip(data, max_bytes=1024)


def test_unsupported_encodings_are_415() -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding 'br' is not supported"):
        _read("xx", content_encoding="br")


def test_invalid_base64_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="not valid base64"):
        _read("!!!", is_base64=True)


def test_no_body_is_none() -> None:
    assert _read(None) is None

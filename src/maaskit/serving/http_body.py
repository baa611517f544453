"""What an HTTP request body holds: its media type and encoding checked, gzip inflated.

API Gateway hands a body over as text, or base64 when its Content-Type is one of the API's
binary media types; a client may gzip a large JSON body (``Content-Encoding: gzip``). This
turns either into the JSON bytes the codecs parse, refusing what they could not read with a
415 that says what to send, and inflating gzip only up to the request limit, so a small
compressed body cannot expand into gigabytes (a zip bomb) before anything is checked.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from maaskit.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
_GZIP_WINDOW = 16 + zlib.MAX_WBITS  # zlib's flag for a gzip header and trailer
_READ_STEP = 64 * 1024


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; '' when absent."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    """JSON, or a JSON-based type such as ``application/vnd.x+json``; absent counts as JSON."""
    return media in ("", JSON_MEDIA_TYPE) or (
        media.startswith("application/") and media.endswith("+json")
    )


def request_bytes(
    body: str | None,
    *,
    is_base64: bool,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int,
) -> bytes | None:
    """The JSON bytes of a request body (``None`` when there is none)."""
    plain = content_encoding is None and content_type in (None, JSON_MEDIA_TYPE)
    if plain and body is not None and not is_base64:  # most requests: nothing to check
        return body.encode("utf-8", errors="surrogatepass")
    media = media_type(content_type)
    if not is_json(media):
        raise UnsupportedMediaType(
            f"the request body is {media!r}; this API reads JSON: send it with "
            "'Content-Type: application/json' (gzip-compressed with 'Content-Encoding: gzip' "
            "if you like)"
        )
    if body is None:
        return None
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported: send the body as is, "
            "or gzip-compressed with 'Content-Encoding: gzip'"
        )
    if is_base64:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                "the request body is marked base64 but is not valid base64"
            ) from None
    else:
        data = body.encode("utf-8", errors="surrogatepass")  # lone surrogates: invalid JSON, a 400
    if encoding in ("gzip", "x-gzip"):
        return gunzip(data, max_bytes=max_bytes)
    return data


def gunzip(data: bytes, *, max_bytes: int) -> bytes:
    """Inflate a gzip body, stopping as soon as the output would pass ``max_bytes``."""
    inflater = zlib.decompressobj(_GZIP_WINDOW)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, _READ_STEP)
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"the gzip-compressed request body inflates to over {max_bytes} bytes, the "
                    "request limit: send smaller batches, or use batch predictions through S3"
                )
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break
    except zlib.error as err:
        raise InvalidRequest(
            f"the request body says 'Content-Encoding: gzip' but is not valid gzip: {err}"
        ) from None
    if not inflater.eof:
        raise InvalidRequest("the gzip-compressed request body is cut short: send all of it")
    if inflater.unused_data:
        raise InvalidRequest(
            "the gzip-compressed request body has data after its end: send one gzip stream"
        )
    return b"".join(parts)

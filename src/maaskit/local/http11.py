"""HTTP/1.1 on the wire for the local API: request heads and bodies in, responses out.

Only what a loopback API front needs: a request line, headers (any case, repeats kept in
order), a ``Content-Length`` or chunked body, ``Expect: 100-continue``, keep-alive and
pipelining. Parsing works on a buffer that grows as bytes arrive, and says "need more"
instead of blocking, so one event loop serves every connection. Anything it cannot read is
a :class:`HttpError` carrying the status to answer with before closing the connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import NamedTuple

MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
MAX_HEAD = MAX_HEADER_LINE * 2  # a head this long with no blank line is refused
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SERVER_LINE = "Server: maaskit-local"
_CLOSE = b"Connection: close\r\n"
_LINE_ENDS = (b"\r", b"\n")
_FRAMING = ("content-length", "connection", "transfer-encoding")


class HttpError(Exception):
    """A request that cannot be read: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestHead(NamedTuple):
    """The request line and headers of one request, and how its body is framed.

    A named tuple, not a frozen dataclass: as immutable, and built in a fraction of the time
    (one per request).
    """

    method: str
    target: str  # as sent: path and query string, still percent-encoded
    version: str
    headers: tuple[tuple[str, str], ...]
    content_length: int
    chunked: bool
    keep_alive: bool
    expects_continue: bool


def _head_end(buffer: bytearray) -> tuple[int, int]:
    """Where the head ends and its body starts; ``(-1, -1)`` while the blank line is missing."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n", 0, crlf if crlf >= 0 else len(buffer))
    if lf >= 0:
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    return -1, -1


_RECENT_HEADS = 256
_MAX_RECENT_HEAD = 4096
_recent_heads: dict[bytes, RequestHead] = {}


def parse_head(buffer: bytearray) -> tuple[RequestHead, int] | None:
    """The head at the start of ``buffer`` and how many bytes it took; ``None`` if incomplete.

    A keep-alive client repeats its heads byte for byte (the same route, headers and body
    length): the last few hundred heads read are kept, parsed, by their bytes.
    """
    if buffer[:1] in _LINE_ENDS:
        while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":  # stray line ends between requests
            del buffer[: 2 if buffer[:1] == b"\r" else 1]
    end, body_start = _head_end(buffer)
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise HttpError(431, "Request header fields too large")
        return None
    raw = bytes(buffer[:end])
    head = _recent_heads.get(raw)
    if head is None:
        head = _parse_head(raw)
        if end <= _MAX_RECENT_HEAD:
            if len(_recent_heads) >= _RECENT_HEADS:
                _recent_heads.clear()
            _recent_heads[raw] = head
    return head, body_start


def _parse_head(raw: bytes) -> RequestHead:
    request_line, newline, header_lines = raw.decode("iso-8859-1").partition("\n")
    words = request_line.rstrip("\r").split(" ")
    if len(words) != 3 or not words[0] or not words[1]:
        raise HttpError(400, f"Bad request line {request_line.rstrip()[:100]!r}")
    method, target, version = words
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505 if version.startswith("HTTP/") else 400, f"Bad version {version!r}")
    lines = header_lines.split("\n") if newline else []
    if len(lines) > MAX_HEADERS:
        raise HttpError(431, "Too many headers")
    headers: list[tuple[str, str]] = []
    lookup: dict[str, str] = {}
    for line in lines:
        if len(line) > MAX_HEADER_LINE:
            raise HttpError(431, "Request header fields too large")
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            raise HttpError(400, "Bad request header line")
        value = value.strip()
        headers.append((name, value))
        lookup.setdefault(name.lower(), value)
    chunked = "chunked" in lookup.get("transfer-encoding", "").lower()
    length = lookup.get("content-length", "")
    try:
        content_length = int(length) if length and not chunked else 0
    except ValueError:
        raise HttpError(400, f"Bad Content-Length {length[:40]!r}") from None
    if content_length < 0:
        raise HttpError(400, f"Bad Content-Length {length[:40]!r}")
    connection = lookup.get("connection", "").lower()
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    expects_continue = "expect" in lookup and lookup["expect"].lower() == "100-continue"
    return RequestHead(
        method,
        target,
        version,
        tuple(headers),
        content_length,
        chunked,
        keep_alive,
        expects_continue,
    )


class ChunkedBody:
    """A chunked body decoded as its bytes arrive; it remembers how far it got."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def feed(self, buffer: bytearray, start: int) -> tuple[bytes, int] | None:
        """``(body, bytes consumed from start)`` once the last chunk is in, else ``None``."""
        position = max(self._position, start)
        while True:
            line_end = buffer.find(b"\n", position)
            if line_end < 0:
                break
            size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text or b"0", 16)
            except ValueError:
                raise HttpError(400, "Bad chunk size") from None
            if size == 0:  # the trailer: lines up to a blank one
                trailer = position = line_end + 1
                while True:
                    line_end = buffer.find(b"\n", trailer)
                    if line_end < 0:
                        self._position = position
                        return None
                    if not buffer[trailer:line_end].strip():
                        return b"".join(self._chunks), line_end + 1 - start
                    trailer = line_end + 1
            data_end = line_end + 1 + size
            after = buffer.find(b"\n", data_end)
            if after < 0:
                break
            self._chunks.append(bytes(buffer[line_end + 1 : data_end]))
            self._size += size
            position = after + 1
        self._position = position
        return None


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def reason(status: int) -> str:
    return _REASONS.get(status, "")


_date_cache: list[object] = [0, ""]


def http_date() -> str:
    """The Date header, formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    return str(_date_cache[1])


_RECENT_STARTS = 64
_recent_starts: dict[tuple[int, str, tuple[tuple[str, str], ...]], bytes] = {}


def encode_response(
    status: int,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    close: bool,
    head_only: bool = False,
) -> bytes:
    """Status line, headers and body as one buffer (one segment for small replies).

    The framing headers are ours: the body's own length, and ``Connection: close`` when the
    connection ends after this reply. A function answers with the same status and headers
    time after time: the head up to the framing is kept for the current second's Date.
    """
    date = http_date()
    key = (status, date, headers if type(headers) is tuple else tuple(headers))
    start = _recent_starts.get(key)
    if start is None:
        lines = [f"HTTP/1.1 {status} {reason(status)}", _SERVER_LINE, f"Date: {date}"]
        for name, value in headers:
            if name.lower() not in _FRAMING:
                lines.append(f"{name}: {value}")
        lines.append("")
        start = "\r\n".join(lines).encode("latin-1", errors="replace")
        if len(_recent_starts) >= _RECENT_STARTS:
            _recent_starts.clear()
        _recent_starts[key] = start
    head = b"%sContent-Length: %d\r\n%s\r\n" % (start, len(body), _CLOSE if close else b"")
    return head if head_only else head + body


def error_response(error: HttpError) -> bytes:
    body = json.dumps({"message": f"{reason(error.status)}: {error.message}"}).encode()
    return encode_response(error.status, [("Content-Type", "application/json")], body, close=True)

"""S3 faults injected into one botocore client, in front of moto: error replies, dropped
connections before a reply, and bodies whose connection drops part-way through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError, ResponseStreamingError

THROTTLED = (503, "SlowDown")
INTERNAL = (500, "InternalError")
DROPPED = (0, "connection closed")  # no reply at all


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


class DroppingBody:
    """A streaming body whose connection drops once ``after`` bytes have been read."""

    def __init__(self, inner: Any, after: int, on_drop: Callable[[], None] | None) -> None:
        self.inner = inner
        self.left = after
        self.on_drop = on_drop

    def read(self, amt: int | None = None) -> bytes:
        if self.left <= 0:
            if self.on_drop is not None:
                self.on_drop()
            raise ResponseStreamingError(error="Connection broken: connection reset by peer")
        want = self.left if amt is None else min(amt, self.left)
        data: bytes = self.inner.read(want)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.inner.close()


class Faults:
    """Planned faults per S3 operation, consumed one per attempt; every attempt is counted."""

    def __init__(self, client: Any) -> None:
        self.attempts: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._errors: dict[str, list[tuple[int, str]]] = {}
        self._drops: list[tuple[int, Callable[[], None] | None, str]] = []
        client.meta.events.register_first("before-send.s3", self._before_send)
        client.meta.events.register("after-call.s3.GetObject", self._after_get)

    def fail(self, operation: str, *errors: tuple[int, str]) -> None:
        """The next attempts at ``operation`` get these errors, in order."""
        self._errors.setdefault(operation, []).extend(errors)

    def drop_body(
        self, key: str, *after_bytes: int, on_drop: Callable[[], None] | None = None
    ) -> None:
        """The next GetObject bodies of ``key`` drop after these many bytes (one per GET)."""
        self._drops.extend((n, on_drop, key) for n in after_bytes)

    def clear(self) -> None:
        self._errors.clear()
        self._drops.clear()

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        self.attempts[operation] += 1
        headers = {
            k: v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
            if k in ("Range", "If-Match")
        }
        self.requests.append((operation, headers))
        planned = self._errors.get(operation)
        if not planned:
            return None
        status, code = planned.pop(0)
        if status == 0:
            raise ConnectionClosedError(endpoint_url=request.url)
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        reply_headers = HTTPHeaders()
        reply_headers["Content-Type"] = "application/xml"
        return AWSResponse(request.url, status, reply_headers, _Raw(body))

    def _after_get(self, parsed: dict[str, Any], http_response: AWSResponse, **_: Any) -> None:
        # The URL of this reply, not of the last request sent: the client is shared by threads
        # (the batch service reads the previous report while the source opens).
        url = http_response.url.split("?")[0]
        planned = [i for i, drop in enumerate(self._drops) if url.endswith(drop[2])]
        if planned and "Body" in parsed:
            after, on_drop, _key = self._drops.pop(planned[0])
            parsed["Body"] = DroppingBody(parsed["Body"], after, on_drop)

"""HTTP for the SDK: JSON over urllib, API keys or SigV4, timeouts, retries with backoff.

Kept to the standard library (plus botocore, already a dependency, for SigV4 signing) so
that importing the SDK is cheap: no onnxruntime, no requests. Retries cover what is worth
retrying: throttling (429), gateway and service errors (500, 502, 503, 504) and refused or
reset connections, with exponential backoff, full jitter and ``Retry-After`` honoured.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from maaskit.errors import MaaskitError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class ApiError(MaaskitError):
    """The API answered with an error; ``str(err)`` is its message."""

    def __init__(self, status: int, message: str, url: str = "") -> None:
        super().__init__(message)
        self.http_status = status
        self.url = url


class ConnectionFailed(MaaskitError):
    """Nothing answered at the API's address (after the retries)."""

    http_status = 503


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_delay_s)
        # Backoff jitter spreads retries out; it protects no secret.
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))  # nosec B311


def region_of(url: str) -> str | None:
    """The region in an execute-api host name, if there is one."""
    found = _EXECUTE_API_HOST.search(urllib.parse.urlsplit(url).netloc)
    return found.group(1) if found else None


class SigV4Signer:
    """Signs requests for an API that uses IAM auth, with the usual boto3 credentials."""

    def __init__(self, region: str, credentials: Any = None, service: str = "execute-api"):
        if credentials is None:
            import boto3

            credentials = boto3.session.Session().get_credentials()
        if credentials is None:
            raise MaaskitError(
                "SigV4 needs AWS credentials: configure them the usual boto3 way "
                "(environment, profile, SSO or instance role)"
            )
        self.region = region
        self.service = service
        self.credentials = credentials

    def headers(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(self.credentials.get_frozen_credentials(), self.service, self.region).add_auth(
            request
        )
        return dict(request.headers.items())


Opener = Callable[..., Any]


class HttpTransport:
    """JSON requests against one API base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        signer: SigV4Signer | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        opener: Opener = urllib.request.urlopen,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.api_key = api_key
        self.signer = signer
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._open = opener
        self._sleep = sleep

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        url = self.base_url + path.lstrip("/")
        given = {k: str(v) for k, v in (query or {}).items() if v is not None}
        return url + ("?" + urllib.parse.urlencode(given) if given else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send ``body`` as JSON, return the decoded JSON reply; errors raise ``ApiError``."""
        url = self.url(path, query)
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": "maaskit-sdk"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        for attempt in range(self.retry.retries + 1):
            final = attempt == self.retry.retries
            if self.signer is not None:  # signatures carry a timestamp: sign every attempt
                headers = self.signer.headers(method, url, data, headers)
            request = urllib.request.Request(url, data=data or None, headers=headers, method=method)
            try:
                with self._open(request, timeout=self.timeout_s) as response:
                    return _decode(response.read())
            except urllib.error.HTTPError as err:
                payload = err.read()
                if err.code in RETRY_STATUSES and not final:
                    self._sleep(self.retry.delay(attempt, err.headers.get("Retry-After")))
                    continue
                raise ApiError(err.code, _message(err.code, payload), url) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                if not final:
                    self._sleep(self.retry.delay(attempt))
                    continue
                reason = getattr(err, "reason", err)
                raise ConnectionFailed(f"cannot reach {url}: {reason}") from None
        raise AssertionError("unreachable")  # the loop returns or raises


def _decode(payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        return payload.decode("utf-8", errors="replace")


def _message(status: int, payload: bytes) -> str:
    """The API's own message (``{"error"}``, or API Gateway's ``{"message"}``)."""
    document = _decode(payload)
    if isinstance(document, dict):
        for key in ("error", "message", "Message"):
            if isinstance(document.get(key), str):
                text = str(document[key])
                if status == 403 and text == "Missing Authentication Token":
                    return f"{text} (HTTP 403): no such route, or the request is not signed"
                if status == 403 and text == "Forbidden":
                    return "Forbidden (HTTP 403): the API key is missing or wrong"
                return text
    text = document if isinstance(document, str) else ""
    return f"HTTP {status}" + (f": {text[:200]}" if text else "")

"""The local API Gateway: an HTTP server on loopback that sends each request to its function.

Routes come from the template (:meth:`maaskit.local.template.Template.apis`); they are served
at the root of ``http://127.0.0.1:PORT/``, as ``sam local start-api`` does, and also under
``/{Stage}/`` so the deployed URL's path works unchanged. Every request becomes a REST proxy
event (:mod:`maaskit.local.apigw`) and goes to the Lambda router in process. No API key or
IAM signature is checked locally.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from maaskit.local.apigw import (
    BAD_GATEWAY,
    MISSING_ROUTE,
    ApiInfo,
    HttpRequest,
    HttpResponse,
    build_event,
    json_response,
    parse_reply,
)
from maaskit.local.lambda_router import Invocation
from maaskit.local.ports import port_error
from maaskit.local.routes import RouteMatch, RouteTable
from maaskit.local.template import ApiDef

log = logging.getLogger("maaskit-local.api")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
# The listen backlog. socketserver's default of 5 reset fresh connections when 16 clients
# connected at once to a busy stack (the accept loop shares the interpreter with handlers).
LISTEN_BACKLOG = 128
Invoke = Callable[[str, dict[str, Any]], Invocation]


class ApiHttpServer(ThreadingHTTPServer):
    """The HTTP server under :class:`LocalApi`: a thread per connection, a deep backlog."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class LocalApi:
    """Serve the template's API routes; :meth:`handle` works without any socket."""

    def __init__(
        self,
        apis: Sequence[ApiDef],
        invoke: Invoke,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        account_id: str = "123456789012",
    ) -> None:
        self.apis = list(apis)
        self.host = host
        self.port = port
        self._invoke = invoke
        self._info = {
            api.logical_id: ApiInfo(
                api_id=api.rest_api_id,
                stage=api.stage,
                account_id=account_id,
                binary_media_types=api.binary_media_types,
            )
            for api in self.apis
        }
        self.table = RouteTable(route for api in self.apis for route in api.routes)
        self._staged = {
            api.stage: RouteTable(api.routes) for api in reversed(self.apis) if api.routes
        }
        self._server: ApiHttpServer | None = None
        self._thread: threading.Thread | None = None

    # request handling -----------------------------------------------------------------

    def match(self, method: str, path: str) -> tuple[RouteMatch, str] | None:
        """The route for ``path`` at the root, else under its API's ``/{Stage}``; and the path."""
        found = self.table.match(method, path)
        if found is not None:
            return found, path
        stage, _, rest = path.lstrip("/").partition("/")
        table = self._staged.get(stage)
        found = table.match(method, "/" + rest) if table is not None else None
        return (found, "/" + rest) if found is not None else None

    def handle(self, request: HttpRequest) -> HttpResponse:
        """One request, as API Gateway and a proxy integration would answer it."""
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return json_response(413, {"message": "Request Too Long"})
        matched = self.match(request.method, request.path)
        if matched is None:
            return MISSING_ROUTE
        found, path = matched
        info = self._info[found.route.api_id]
        if path != request.path:
            request = dataclasses.replace(request, path=path)
        event = build_event(request, found, info)
        invocation = self._invoke(found.route.function_name, event)
        if invocation.errored:
            return BAD_GATEWAY
        response = parse_reply(invocation.value)  # as returned: no JSON round trip
        if response is BAD_GATEWAY:
            log.error(
                "%s returned a reply API Gateway cannot use (needs statusCode, string body)",
                found.route.function_name,
            )
        return response

    # the server -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> None:
        """Bind and serve in a background thread; a taken port raises ``PortInUseError``."""
        handler = _handler_class(self)
        try:
            server = ApiHttpServer((self.host, self.port), handler)
        except OSError as err:
            raise port_error(err, self.port, "local API", "--api-port") from None
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="maaskit-local-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100
_SERVER_LINE = "Server: maaskit-local"


class RequestHeaders:
    """Request headers in their order, looked up without regard to case."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._lookup: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        self._lookup.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lookup.get(name.lower(), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


_date_cache: list[Any] = [0, ""]


def _http_date() -> str:
    """The Date header, formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    return str(_date_cache[1])


def _content_length(value: str | None) -> int | None:
    """The declared body size; ``None`` when it is not a size in bytes."""
    if not value:
        return 0
    value = value.strip()
    return int(value) if value.isdigit() else None


def _read_chunked(stream: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(stream.read(size))
        stream.readline()


def _handler_class(api: LocalApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway offers
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every keep-alive request.
        disable_nagle_algorithm = True
        server_version = "maaskit-local"

        def _serve(self) -> None:
            started = time.perf_counter()
            path, _, query = self.path.partition("?")
            length = _content_length(self.headers.get("Content-Length"))
            if length is None:
                self.send_error(400, "Bad Content-Length: send the body's size in bytes")
                return
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = _read_chunked(self.rfile)
            else:
                body = self.rfile.read(length) if length else b""
            request = HttpRequest(
                method=self.command,
                path=path,
                query=query,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            try:
                response = api.handle(request)
            except Exception:
                log.exception("the local API failed on %s %s", self.command, path)
                response = BAD_GATEWAY
            try:
                self._write_response(response)
            except (BrokenPipeError, ConnectionResetError):  # the client left: nobody to tell
                log.debug("%s %s: the client closed the connection first", self.command, path)
                self.close_connection = True
                return
            elapsed = (time.perf_counter() - started) * 1000
            log.info('"%s %s" %d %.1f ms', self.command, self.path, response.status, elapsed)

        def parse_request(self) -> bool:
            """The request line and headers, read without the e-mail parser (most of the
            front's own cost per request); anything unusual goes to the standard parser."""
            raw: bytes = self.raw_requestline  # type: ignore[attr-defined]
            words = raw.decode("iso-8859-1").rstrip("\r\n").split(" ")
            if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
                return super().parse_request()
            self.command, self.path, self.request_version = words
            self.requestline = " ".join(words)
            headers = RequestHeaders()
            while True:
                line = self.rfile.readline(_MAX_HEADER_LINE + 1)
                if len(line) > _MAX_HEADER_LINE or len(headers) > _MAX_HEADERS:
                    self.close_connection = True
                    self.send_error(431, "Request header fields too large")
                    return False
                if line in (b"\r\n", b"\n", b""):
                    break
                name, colon, value = line.decode("iso-8859-1").partition(":")
                if not colon or not name.strip():
                    self.close_connection = True
                    self.send_error(400, "Bad request header line")
                    return False
                headers.add(name.strip(), value.strip())
            self.headers = headers  # type: ignore[assignment]
            connection = (headers.get("Connection") or "").lower()
            self.close_connection = connection == "close" or (
                self.request_version == "HTTP/1.0" and connection != "keep-alive"
            )
            if (headers.get("Expect") or "").lower() == "100-continue":
                return self.handle_expect_100()
            return True

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """A request the front cannot read: a JSON message, then the connection closes."""
            self.close_connection = True
            text = f"{_reason(code)}: {message}" if message else _reason(code)
            self._write_response(json_response(code, {"message": text}))
            log.debug("refused a request: %d %s", code, text)

        def _write_response(self, response: HttpResponse) -> None:
            """Status line, headers and body in one write (one segment for small replies)."""
            lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}", _SERVER_LINE]
            lines.append(f"Date: {_http_date()}")
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    lines.append(f"{name}: {value}")
            lines.append(f"Content-Length: {len(response.body)}")
            if self.close_connection:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
            self.wfile.write(head if self.command == "HEAD" else head + response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler

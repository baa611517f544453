"""The local API Gateway: an HTTP server on loopback that sends each request to its function.

Routes come from the template (:meth:`maaskit.local.template.Template.apis`); they are served
at the root of ``http://127.0.0.1:PORT/``, as ``sam local start-api`` does, and also under
``/{Stage}/`` so the deployed URL's path works unchanged. Every request becomes a REST proxy
event (:mod:`maaskit.local.apigw`) and goes to the Lambda router in process. No API key or
IAM signature is checked locally.

One asyncio loop on its own thread reads, parses (:mod:`maaskit.local.http11`) and answers
every connection, and invokes the function itself, one request at a time: a Lambda sandbox
runs one invocation at a time anyway, and a thread per connection (or a worker per function)
spent more than the handler's own time handing the interpreter lock between threads that
all waited for the same function. The embedded AWS serves on its own threads, so a handler
that calls S3 or invokes another function does not need the loop. A handler that calls this
same API over HTTP would wait for itself: the loop is busy with that handler.

Replies to the requests that arrived in one pass of the loop are sent together when the pass
ends (:meth:`LocalApi.hold_reply`), so a client woken by its reply does not take the CPU
from the loop while the loop still has the others to answer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

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
from maaskit.local.http11 import (
    CONTINUE,
    ChunkedBody,
    HttpError,
    RequestHead,
    encode_response,
    error_response,
    parse_head,
)
from maaskit.local.lambda_router import Invocation
from maaskit.local.ports import port_error
from maaskit.local.routes import RouteMatch, RouteTable
from maaskit.local.template import ApiDef

log = logging.getLogger("maaskit-local.api")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
# The listen backlog. The old front's 5 (socketserver's default) reset fresh connections when
# 16 clients connected at once to a busy stack: the loop accepts only between requests.
LISTEN_BACKLOG = 128
Invoke = Callable[[str, dict[str, Any]], Invocation]


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket with a deep backlog; ``OSError`` if the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._unflushed: list[_Connection] = []  # replies held until this pass of the loop ends

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
            request = request._replace(path=path)
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
        try:
            sock = listen(self.host, self.port)
        except OSError as err:
            raise port_error(err, self.port, "local API", "--api-port") from None
        self.port = int(sock.getsockname()[1])
        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(loop, sock, ready), name="maaskit-local-api", daemon=True
        )
        self._thread.start()
        ready.wait()

    def _serve(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, ready: threading.Event
    ) -> None:
        asyncio.set_event_loop(loop)
        connections: set[_Connection] = set()
        try:
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: _Connection(self, connections), sock=sock, backlog=LISTEN_BACKLOG
                )
            )
        except BaseException:
            sock.close()
            loop.close()
            raise
        finally:
            ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for connection in list(connections):
                connection.abort()
            loop.run_until_complete(asyncio.sleep(0))  # let the transports close
            loop.close()

    def hold_reply(self, connection: _Connection) -> None:
        """Send ``connection``'s replies once every request that arrived with it is answered.

        Replies to requests that arrived in one pass of the loop leave together, back to
        back, after that pass: a reply sent at once wakes its client, which then competes
        with the loop for the CPU while the loop still answers the others (on a loaded
        machine that cost more per request than the front's own work).
        """
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unflushed.append(connection)

    def _flush(self) -> None:
        unflushed, self._unflushed = self._unflushed, []
        for connection in unflushed:
            connection.flush()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)


class _Connection(asyncio.Protocol):
    """One client connection: its requests answered in the order they came."""

    def __init__(self, api: LocalApi, connections: set[_Connection]) -> None:
        self._api = api
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._peer = "127.0.0.1"
        self._buffer = bytearray()
        self._head: RequestHead | None = None  # of a request whose body is still arriving
        self._body_start = 0
        self._chunked: ChunkedBody | None = None
        self._continued = False
        self._held: list[bytes] = []  # replies not sent yet (see LocalApi.hold_reply)

    # asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a TCP server's: always a stream
        peer = transport.get_extra_info("peername")
        if peer:
            self._peer = str(peer[0])
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None
        self._held.clear()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._answer_complete_requests(closing=False)

    def eof_received(self) -> bool:
        """The client sent all it will: answer what is complete, then close."""
        self._answer_complete_requests(closing=True)
        self.close()
        return True

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self.flush()
            self._transport.close()

    def flush(self) -> None:
        """Send the replies held so far, in order."""
        held = self._held
        if held and self._transport is not None:
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))
        held.clear()

    def _write_now(self, data: bytes) -> None:
        """``data`` after any held replies, sent at once."""
        if self._transport is not None:
            self.flush()
            self._transport.write(data)

    # requests -------------------------------------------------------------------------

    def _answer_complete_requests(self, *, closing: bool) -> None:
        """Answer every complete request in the buffer, in order (pipelining)."""
        while self._transport is not None and not self._transport.is_closing():
            try:
                read = self._read_request()
            except HttpError as err:
                log.debug("refused a request from %s: %s", self._peer, err.message)
                self._write_now(error_response(err))
                self.close()
                return
            if read is None:
                return
            head, request = read
            started = time.perf_counter()
            try:
                response = self._api.handle(request)
            except Exception:
                log.exception("the local API failed on %s %s", head.method, request.path)
                response = BAD_GATEWAY
            self._answer(head, response, started, close=closing and not self._buffer)

    def _read_request(self) -> tuple[RequestHead, HttpRequest] | None:
        head = self._head
        if head is None:
            if not self._buffer:  # every request so far answered: the usual case
                return None
            parsed = parse_head(self._buffer)
            if parsed is None:
                return None
            head, self._body_start = parsed
            self._head = head
            self._continued = False
        start = self._body_start
        if head.chunked:
            chunked = self._chunked = self._chunked or ChunkedBody()
            decoded = chunked.feed(self._buffer, start)
            if decoded is None:
                self._ask_for_body(head)
                return None
            body, used = decoded
            end = start + used
        else:
            end = start + head.content_length
            if len(self._buffer) < end:
                self._ask_for_body(head)
                return None
            body = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self._head = self._chunked = None
        path, _, query = head.target.partition("?")
        return head, HttpRequest(head.method, path, query, head.headers, body, self._peer)

    def _ask_for_body(self, head: RequestHead) -> None:
        if head.expects_continue and not self._continued and self._transport is not None:
            self._continued = True
            self._write_now(CONTINUE)

    def _answer(
        self, head: RequestHead, response: HttpResponse, started: float, *, close: bool
    ) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():  # the client left: nobody to tell
            log.debug("%s %s: the client closed the connection first", head.method, head.target)
            return
        close = close or not head.keep_alive
        reply = encode_response(
            response.status,
            response.headers,
            response.body,
            close=close,
            head_only=head.method == "HEAD",
        )
        if close:
            self._write_now(reply)
            transport.close()
        else:
            if not self._held:
                self._api.hold_reply(self)
            self._held.append(reply)
        elapsed = (time.perf_counter() - started) * 1000
        log.info('"%s %s" %d %.1f ms', head.method, head.target, response.status, elapsed)

"""The local API Gateway: an HTTP server on loopback that sends each request to its function.

Routes come from the template (:meth:`maaskit.local.template.Template.apis`); they are served
at the root of ``http://127.0.0.1:PORT/``, as ``sam local start-api`` does, and also under
``/{Stage}/`` so the deployed URL's path works unchanged. Every request becomes a REST proxy
event (:mod:`maaskit.local.apigw`) and goes to the Lambda router in process. No API key or
IAM signature is checked locally.

One loop on its own thread (a plain :mod:`selectors` loop: asyncio's transports, protocols
and callbacks cost more per request than the parsing) reads, parses
(:mod:`maaskit.local.http11`) and answers every connection, and invokes the function
itself, one request at a time: a Lambda sandbox runs one invocation at a time anyway, and a
thread per connection (or a worker per function) spent more than the handler's own time
handing the interpreter lock between threads that all waited for the same function. The
embedded AWS serves on its own threads, so a handler that calls S3 or invokes another
function does not need the loop. A handler that calls this same API over HTTP would wait
for itself: the loop is busy with that handler.

Replies to the requests that arrived in one pass of the loop are sent together when the pass
ends, so a client woken by its reply does not take the CPU from the loop while the loop
still has the others to answer; the access-log lines of the pass are written after that, so
no client waits for them.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
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
# Replies waiting for a client that does not read them: past this, its requests wait too.
MAX_UNSENT_BYTES = 4 * 1024 * 1024
_RECV_BYTES = 256 * 1024
_ACCEPT, _WAKE = object(), object()  # the selector's data for the listener and the wake-up
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
        self._server: _Server | None = None
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
        try:
            server = _Server(self, sock)
        except BaseException:
            sock.close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="maaskit-local-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join(timeout=10)


class _Server:
    """The loop: wait for sockets, answer what arrived, send the replies, log them."""

    def __init__(self, api: LocalApi, listener: socket.socket) -> None:
        self.api = api
        self._listener = listener
        listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, _ACCEPT)
        self._selector.register(self._wake_in, selectors.EVENT_READ, _WAKE)
        self._connections: set[_Connection] = set()
        self._stopping = False
        self.unsent: list[_Connection] = []  # with replies to send when this pass ends
        self.answered: list[tuple[str, str, int, float]] = []  # the access log of this pass

    def shutdown(self) -> None:
        """Ask the loop to stop (from any thread); it closes every connection as it ends."""
        self._stopping = True
        with contextlib.suppress(OSError):  # full or closed: the loop is waking or gone
            self._wake_out.send(b"\0")

    def serve_forever(self) -> None:
        try:
            while not self._stopping:
                self._serve_once()
        finally:
            for connection in list(self._connections):
                connection.abort()
            self._selector.close()
            for sock in (self._listener, self._wake_in, self._wake_out):
                sock.close()

    def _serve_once(self) -> None:
        for key, mask in self._selector.select():
            target = key.data
            if target is _ACCEPT:
                self._accept()
            elif target is _WAKE:
                with contextlib.suppress(OSError):
                    self._wake_in.recv(4096)
            else:
                try:
                    if mask & selectors.EVENT_WRITE:
                        target.writable()
                    if mask & selectors.EVENT_READ:
                        target.readable()
                except Exception:  # a bug of ours: lose this connection, not the server
                    log.exception("the local API failed on a connection from %s", target.peer)
                    target.abort()
        if self.unsent:
            unsent, self.unsent = self.unsent, []
            for connection in unsent:
                connection.send()
        if self.answered:  # after the replies left: clients do not wait for the log
            answered, self.answered = self.answered, []
            if log.isEnabledFor(logging.INFO):
                for method, target_, status, elapsed in answered:
                    log.info('"%s %s" %d %.1f ms', method, target_, status, elapsed)

    def _accept(self) -> None:
        for _ in range(LISTEN_BACKLOG):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of file descriptors, say: try again next pass
                log.warning("the local API could not accept a connection: %s", err)
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = str(address[0]) if isinstance(address, tuple) else "127.0.0.1"
            connection = _Connection(self, sock, peer)
            self._connections.add(connection)
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def watch(self, connection: _Connection, before: int, events: int) -> None:
        """Wait for ``events`` of ``connection`` from now on (none: unregister)."""
        if before and events:
            self._selector.modify(connection.sock, events, connection)
        elif events:
            self._selector.register(connection.sock, events, connection)
        else:
            self._selector.unregister(connection.sock)

    def forget(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(connection.sock)


class _Connection:
    """One client connection: its requests answered in the order they came.

    Replies wait in :attr:`_out` until the loop's pass ends (see the module docstring); a
    reply the socket does not take at once is sent as it drains, and reading pauses while
    more than :data:`MAX_UNSENT_BYTES` wait, so a client that pipelines without reading
    cannot make the front buffer without bound.
    """

    __slots__ = (
        "_body_start",
        "_buffer",
        "_chunked",
        "_close_after",
        "_continued",
        "_events",
        "_head",
        "_out",
        "_out_bytes",
        "_queued",
        "_reading",
        "_server",
        "closed",
        "peer",
        "sock",
    )

    def __init__(self, server: _Server, sock: socket.socket, peer: str) -> None:
        self._server = server
        self.sock = sock
        self.peer = peer
        self.closed = False
        self._buffer = bytearray()
        self._head: RequestHead | None = None  # of a request whose body is still arriving
        self._body_start = 0
        self._chunked: ChunkedBody | None = None
        self._continued = False
        self._out: list[bytes | memoryview] = []
        self._out_bytes = 0
        self._close_after = False  # close once the replies so far are sent
        self._queued = False  # in the loop's list of connections to send for
        self._reading = True
        self._events = selectors.EVENT_READ

    # events from the loop ---------------------------------------------------------------

    def readable(self) -> None:
        if self.closed or not self._reading:
            return
        try:
            data = self.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the client: nobody to answer
            self.abort()
            return
        if not data:  # the client sent all it will: answer what is complete, then close
            self._answer_complete_requests(closing=True)
            self._close_when_sent()
            return
        self._buffer += data
        self._answer_complete_requests(closing=False)

    def writable(self) -> None:
        self.send()

    def send(self) -> None:
        """Send the replies so far, in order; the rest when the socket drains."""
        self._queued = False
        out = self._out
        if self.closed:
            return
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the client left: nobody to tell
                self.abort()
                return
            if sent < len(data):
                out.append(memoryview(data)[sent:])
                self._out_bytes = len(data) - sent
            else:
                self._out_bytes = 0
        if not out and self._close_after:
            self.abort()
            return
        self._watch()

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._out.clear()
        self._server.forget(self)
        self.sock.close()

    # state ------------------------------------------------------------------------------

    def _watch(self) -> None:
        reading = self._reading and self._out_bytes <= MAX_UNSENT_BYTES
        events = (selectors.EVENT_READ if reading else 0) | (
            selectors.EVENT_WRITE if self._out else 0
        )
        if events != self._events:
            self._server.watch(self, self._events, events)
            self._events = events

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._send_when_pass_ends()

    def _close_when_sent(self) -> None:
        """Read no more; close once the replies so far are sent."""
        self._close_after = True
        self._reading = False
        self._send_when_pass_ends()

    def _send_when_pass_ends(self) -> None:
        if not self._queued:
            self._queued = True
            self._server.unsent.append(self)

    # requests ---------------------------------------------------------------------------

    def _answer_complete_requests(self, *, closing: bool) -> None:
        """Answer every complete request in the buffer, in order (pipelining)."""
        while not self._close_after:
            try:
                read = self._read_request()
            except HttpError as err:
                log.debug("refused a request from %s: %s", self.peer, err.message)
                self._queue(error_response(err))
                self._close_when_sent()
                return
            if read is None:
                return
            head, request = read
            started = time.perf_counter()
            try:
                response = self._server.api.handle(request)
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
        return head, HttpRequest(head.method, path, query, head.headers, body, self.peer)

    def _ask_for_body(self, head: RequestHead) -> None:
        if head.expects_continue and not self._continued:
            self._continued = True
            self._queue(CONTINUE)

    def _answer(
        self, head: RequestHead, response: HttpResponse, started: float, *, close: bool
    ) -> None:
        close = close or not head.keep_alive
        self._queue(
            encode_response(
                response.status,
                response.headers,
                response.body,
                close=close,
                head_only=head.method == "HEAD",
            )
        )
        if close:
            self._close_when_sent()
        elapsed = (time.perf_counter() - started) * 1000
        self._server.answered.append((head.method, head.target, response.status, elapsed))

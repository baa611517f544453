"""The local API front: real HTTP on loopback against calling the API handler in process.

Ours: ``maaskit local up`` in its own process, as a user runs it (so the front and our load
generator do not share one interpreter lock), and 8 keep-alive clients posting
``/models/{name}/predict`` for the MLP (64-64-10, batch 1). Baseline: the same handler module
called in this process by 8 threads with the same event, reading the same bucket. Both sides
are warmed the same way (one second of the same 8-client load), then rounds alternate, and
alternate who goes first, so drift on a shared machine hits both alike; the per-round rates
and ratios are printed as median, min and max. The difference is the front's overhead: HTTP
parsing, the API Gateway event, the Lambda router (environment, context, JSON marshalling),
the reply.

Figures: ``local_api_p50``, ``local_api_p99`` (ms per request) and ``local_api_rps``.

The load generator is lean, as wrk-style generators are, so that it is not the ceiling: one
thread multiplexes the 8 connections, sends a prebuilt request and reads each reply by its
Content-Length, timing every request. Every reply of either side is checked (a 200 whose body
has the expected shape), so a broken front cannot look fast. The same generator is also timed
against a canned server (another process, one thread, answering every request with the
front's reply as fixed bytes): the most it can send at all, printed as the ceiling on
``local_api_rps`` whatever the front does.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common
import numpy as np

from tests.support import models

CLIENTS = 8
SECONDS = float(os.environ.get("BENCH_LOCAL_API_SECONDS", "12"))  # per side, over the rounds
ROUNDS = 4
MODEL = "bench-mlp"


def _load(call: Callable[[], None], seconds: float, clients: int = CLIENTS) -> list[float]:
    """``clients`` threads calling as fast as they can for ``seconds``; latencies in ms."""
    samples: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(mine: list[float]) -> None:
        start.wait()
        while True:
            began = time.perf_counter()
            if began >= stop_at[0]:
                return
            call()
            mine.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=worker, args=(s,)) for s in samples]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return [value for mine in samples for value in mine]


class Replies:
    """Every reply the load generators get is checked: a 200 whose body has the expected shape.

    A body already seen and checked passes on a set lookup, so checking costs the client
    next to nothing and a broken front (an error, a wrong shape) cannot look fast.
    """

    def __init__(self, check: Callable[[bytes], None]) -> None:
        self._check = check
        self._seen: set[bytes] = set()

    def accept(self, status: int, body: bytes) -> None:
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        if body not in self._seen:
            self._check(body)
            self._seen.add(body)

    def one(self) -> bytes:
        """A body that passed the check (the front's reply, for the canned server)."""
        return next(iter(self._seen))


def predict_reply_check(outputs: int) -> Callable[[bytes], None]:
    """The simple shape's reply for one row: ``{"model", "version", "outputs": {name: [[...]]}}``."""

    def check(body: bytes) -> None:
        reply = json.loads(body)
        rows = next(iter(reply["outputs"].values())) if reply.get("outputs") else None
        if reply.get("model") != MODEL or not isinstance(rows, list) or len(rows) != 1:
            raise RuntimeError(f"unexpected reply {body[:200]!r}")
        if len(rows[0]) != outputs:
            raise RuntimeError(f"expected {outputs} outputs per row: {body[:200]!r}")

    return check


def request_bytes(api_url: str, body: bytes) -> tuple[tuple[str, int], bytes]:
    """The address and one prebuilt keep-alive POST of the predict route."""
    host, port = api_url.split("//", 1)[1].rstrip("/").split(":")
    head = (
        f"POST /models/{MODEL}/predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (host, int(port)), head.encode("ascii") + body


class _Connection:
    """One keep-alive client: a request in flight, the reply read by its Content-Length."""

    __slots__ = ("buffer", "sent_at", "sock")

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = b""
        self.sent_at = 0.0

    def reply(self) -> tuple[int, bytes] | None:
        """The complete reply at the head of the buffer (status, body), else ``None``."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end]
        marker = head.lower().find(b"\r\ncontent-length:")
        if marker < 0:
            raise RuntimeError(f"a reply without Content-Length: {head[:200]!r}")
        line_end = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : line_end if line_end >= 0 else None])
        if len(self.buffer) < end + 4 + length:
            return None
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        return int(head[9:12]), body


def http_load(
    api_url: str, body: bytes, replies: Replies, seconds: float, clients: int = CLIENTS
) -> list[float]:
    """``clients`` keep-alive connections, each sending its next request as its reply ends.

    wrk-style: one thread multiplexes every connection (epoll), sends a prebuilt request and
    reads the reply by its Content-Length, so the generator spends a few microseconds per
    request instead of ``http.client``'s header parsing and thread switches. Latencies in ms,
    from the send to the last byte of the reply; requests sent before ``seconds`` are up count.
    """
    address, request = request_bytes(api_url, body)
    connections = [_Connection(address) for _ in range(clients)]
    selector = selectors.DefaultSelector()
    samples: list[float] = []
    clock = time.perf_counter
    try:
        stop_at = clock() + seconds
        for connection in connections:
            selector.register(connection.sock, selectors.EVENT_READ, connection)
            connection.sent_at = clock()
            connection.sock.sendall(request)
        in_flight = clients
        while in_flight:
            for key, _ in selector.select(timeout=30) or _timed_out():
                connection = key.data
                data = connection.sock.recv(65536)
                if not data:
                    raise RuntimeError("the server closed a keep-alive connection")
                connection.buffer += data
                got = connection.reply()
                if got is None:
                    continue
                now = clock()
                samples.append((now - connection.sent_at) * 1000)
                replies.accept(*got)
                if now < stop_at:
                    connection.sent_at = clock()
                    connection.sock.sendall(request)
                else:
                    in_flight -= 1
    finally:
        selector.close()
        for connection in connections:
            connection.sock.close()
    return samples


def _timed_out() -> list[tuple[selectors.SelectorKey, int]]:
    raise RuntimeError("no reply for 30 s")


_CANNED_SERVER = """
import selectors, socket, sys
body = sys.stdin.buffer.read()
reply = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body
listener = socket.create_server(("127.0.0.1", 0), backlog=128)
listener.setblocking(False)
selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ, None)
print(listener.getsockname()[1], flush=True)
pending = {}
while True:
    for key, _ in selector.select():
        if key.data is None:
            connection, _ = listener.accept()
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.setblocking(False)
            pending[connection] = b""
            selector.register(connection, selectors.EVENT_READ, connection)
            continue
        connection = key.data
        data = connection.recv(65536)
        if not data:
            selector.unregister(connection)
            del pending[connection]
            connection.close()
            continue
        buffer = pending[connection] + data
        answers = 0
        while (end := buffer.find(b"\\r\\n\\r\\n")) >= 0:
            head = buffer[:end].lower()
            marker = head.find(b"content-length:")
            length = int(head[marker + 15:].split(b"\\r\\n", 1)[0]) if marker >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length:]
            answers += 1
        pending[connection] = buffer
        if answers:
            connection.sendall(reply * answers)
"""


@contextlib.contextmanager
def canned_server(reply_body: bytes) -> Iterator[str]:
    """A one-thread server in another process that answers every request with ``reply_body``."""
    process = subprocess.Popen(
        [sys.executable, "-c", _CANNED_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(reply_body)
        process.stdin.close()
        yield f"http://127.0.0.1:{int(process.stdout.readline())}/"
    finally:
        process.kill()
        process.wait()


def in_process_caller(
    aws_url: str, bucket: str, body: dict[str, Any], cache: str, replies: Replies
) -> Callable[[], None]:
    """The API handler imported here, against the same embedded AWS and bucket."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": aws_url,
            "MAASKIT_BUCKET": bucket,
            "MAASKIT_CACHE_DIR": cache,
            "MAASKIT_ALIAS_TTL_SECONDS": "3600",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    from functions.api import app
    from tests.support.events import FakeContext, api_event

    event = api_event("POST", f"/models/{MODEL}/predict", body)
    context = FakeContext()

    def call() -> None:
        reply = app.lambda_handler(event, context)
        replies.accept(reply["statusCode"], reply["body"].encode())

    return call


def _spread(values: list[float], digits: int = 0) -> str:
    return (
        f"median {statistics.median(values):.{digits}f} "
        f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})"
    )


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from maaskit.sdk.client import Client
    from maaskit.sdk.targets import Target, TargetOptions

    features = np.random.default_rng(0).normal(size=(1, 64)).astype(np.float32)
    body = {"input": features.tolist()}
    encoded = json.dumps(body).encode()
    replies = Replies(predict_reply_check(outputs=10))
    ours_ms: list[float] = []
    base_ms: list[float] = []
    ours_rounds: list[float] = []
    base_rounds: list[float] = []
    stack = _common.local_stack({"AliasTtlSeconds": "3600", "LogLevel": "WARNING"})
    with stack as (api_url, aws_url, _), tempfile.TemporaryDirectory() as scratch:
        client = Client(Target(TargetOptions(api_url=api_url, aws_endpoint_url=aws_url, env={})))
        model_file = Path(scratch) / "mlp.onnx"
        model_file.write_bytes(models.mlp(64, 64, 10))
        client.push_model(model_file, MODEL)
        in_process = in_process_caller(aws_url, client.target.bucket, body, scratch, replies)

        def over_http(seconds: float, clients: int = CLIENTS) -> list[float]:
            return http_load(api_url, encoded, replies, seconds, clients)

        def in_process_load(seconds: float, clients: int = CLIENTS) -> list[float]:
            return _load(in_process, seconds, clients)

        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            for warm in (over_http, in_process_load):  # cold start, model fetch, sessions
                warm(1.0)
            for round_ in range(ROUNDS):  # alternate, and alternate who goes first
                sides = [(over_http, ours_ms, ours_rounds), (in_process_load, base_ms, base_rounds)]
                for load, samples, rates in sides if round_ % 2 == 0 else sides[::-1]:
                    got = load(SECONDS / ROUNDS)
                    samples.extend(got)
                    rates.append(len(got) / (SECONDS / ROUNDS))
            alone_http = over_http(1.0, clients=1)
            alone_in_process = in_process_load(1.0, clients=1)
            front_reply = replies.one()
            canned_rounds = []
            for _ in range(2):
                with canned_server(front_reply) as canned_url:
                    got = http_load(canned_url, encoded, replies, 2.0)
                    canned_rounds.append(len(got) / 2.0)
    ours_rps, base_rps = len(ours_ms) / SECONDS, len(base_ms) / SECONDS
    p50 = (_common.percentile(ours_ms, 50), _common.percentile(base_ms, 50))
    p99 = (_common.percentile(ours_ms, 99), _common.percentile(base_ms, 99))
    print(
        f"{CLIENTS} clients x {SECONDS:g} s each side: {len(ours_ms)} requests over HTTP, "
        f"{len(base_ms)} calls in process; front overhead at p50 = {p50[0] - p50[1]:.3f} ms"
    )
    for side, rates in (("over HTTP", ours_rounds), ("in process", base_rounds)):
        print(f"{side}: req/s per round {_spread(rates)}")
    ratios = [ours / base for ours, base in zip(ours_rounds, base_rounds, strict=True)]
    print(f"ratio per round (HTTP / in process): {_spread(ratios, 3)}")
    print(
        f"one client alone (no queueing): p50 {_common.percentile(alone_http, 50):.3f} ms over "
        f"HTTP, {_common.percentile(alone_in_process, 50):.3f} ms in process"
    )
    print(
        f"the same {CLIENTS} clients against a canned server (the front's reply, fixed bytes): "
        f"{_spread(canned_rounds)} req/s, the most this load generator sends whatever the front does"
    )
    print(_common.bench_line("local_api_p50", p50[0], p50[1], "ms"))
    print(_common.bench_line("local_api_p99", p99[0], p99[1], "ms"))
    print(_common.bench_line("local_api_rps", ours_rps, base_rps, "req/s"))


if __name__ == "__main__":
    main()

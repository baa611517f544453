"""The local API front: real HTTP on loopback against calling the API handler in process.

Ours: ``maaskit local up`` in another process (so its server threads and our load
generator do not share one interpreter lock), 8 keep-alive clients posting
``/models/{name}/predict`` for the MLP (64-64-10, batch 1). Baseline: the same handler
module called in this process by 8 threads with the same event, warm, reading the same
bucket. Rounds alternate so drift on a shared machine hits both alike. The difference is
the front's overhead: HTTP parsing, the API Gateway event, the Lambda router (environment,
context, JSON marshalling), the reply.

Figures: ``local_api_p50``, ``local_api_p99`` (ms per request) and ``local_api_rps``.

The same 8 clients are also timed against a canned server (another process that answers
every request with fixed bytes): that is what ``http.client`` in this process can send at
all, a ceiling on ``local_api_rps`` whatever the front does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
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


def http_caller(api_url: str, body: bytes) -> Callable[[], None]:
    """One keep-alive connection per client thread."""
    host, port = api_url.split("//", 1)[1].rstrip("/").split(":")
    local = threading.local()
    headers = {"Content-Type": "application/json"}

    def call() -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", f"/models/{MODEL}/predict", body, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")

    return call


_CANNED_SERVER = """
import socket, threading
body = b'{"model": "bench-mlp", "version": 1, "outputs": {"output": [[0.1, 0.2, 0.3]]}}'
reply = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
def serve(connection):
    pending = b""
    while data := connection.recv(65536):
        pending += data
        while (end := pending.find(b"\\r\\n\\r\\n")) >= 0:
            length = next((int(line.split(b":")[1]) for line in pending[:end].split(b"\\r\\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(pending) < end + 4 + length:
                break
            pending = pending[end + 4 + length:]
            connection.sendall(reply)
while True:
    connection, _ = listener.accept()
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"""


@contextlib.contextmanager
def canned_server() -> Iterator[str]:
    """A server in another process that answers anything with the same bytes, at once."""
    process = subprocess.Popen(
        [sys.executable, "-c", _CANNED_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}/"
    finally:
        process.kill()
        process.wait()


def in_process_caller(
    aws_url: str, bucket: str, body: dict[str, Any], cache: str
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
        if reply["statusCode"] != 200:
            raise RuntimeError(reply["body"][:200])

    return call


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from maaskit.sdk.client import Client
    from maaskit.sdk.targets import Target, TargetOptions

    features = np.random.default_rng(0).normal(size=(1, 64)).astype(np.float32)
    body = {"input": features.tolist()}
    encoded = json.dumps(body).encode()
    ours_ms: list[float] = []
    base_ms: list[float] = []
    stack = _common.local_stack({"AliasTtlSeconds": "3600", "LogLevel": "WARNING"})
    with stack as (api_url, aws_url, _), tempfile.TemporaryDirectory() as scratch:
        client = Client(Target(TargetOptions(api_url=api_url, aws_endpoint_url=aws_url, env={})))
        model_file = Path(scratch) / "mlp.onnx"
        model_file.write_bytes(models.mlp(64, 64, 10))
        client.push_model(model_file, MODEL)
        over_http = http_caller(api_url, encoded)
        in_process = in_process_caller(aws_url, client.target.bucket, body, scratch)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            for _ in range(20):  # warm both: cold start, model fetch, sessions
                over_http()
                in_process()
            ours_rounds: list[float] = []
            base_rounds: list[float] = []
            for round_ in range(ROUNDS):  # alternate, and alternate who goes first
                sides = [(over_http, ours_ms, ours_rounds), (in_process, base_ms, base_rounds)]
                for call, samples, rates in sides if round_ % 2 == 0 else sides[::-1]:
                    got = _load(call, SECONDS / ROUNDS)
                    samples.extend(got)
                    rates.append(len(got) / (SECONDS / ROUNDS))
            alone_http = _load(over_http, 1.0, clients=1)
            alone_in_process = _load(in_process, 1.0, clients=1)
            with canned_server() as canned_url:
                ceiling = len(_load(http_caller(canned_url, encoded), 2.0)) / 2.0
    ours_rps, base_rps = len(ours_ms) / SECONDS, len(base_ms) / SECONDS
    p50 = (_common.percentile(ours_ms, 50), _common.percentile(base_ms, 50))
    p99 = (_common.percentile(ours_ms, 99), _common.percentile(base_ms, 99))
    print(
        f"{CLIENTS} clients x {SECONDS:g} s each side: {len(ours_ms)} requests over HTTP, "
        f"{len(base_ms)} calls in process; front overhead at p50 = {p50[0] - p50[1]:.3f} ms"
    )
    for side, rates in (("over HTTP", ours_rounds), ("in process", base_rounds)):
        print(
            f"{side}: req/s per round median {statistics.median(rates):.0f} "
            f"(min {min(rates):.0f}, max {max(rates):.0f})"
        )
    print(
        f"one client alone (no queueing): p50 {_common.percentile(alone_http, 50):.3f} ms over "
        f"HTTP, {_common.percentile(alone_in_process, 50):.3f} ms in process"
    )
    print(
        f"{CLIENTS} clients against a canned server: {ceiling:.0f} req/s, the most http.client "
        "in this process sends whatever the front does"
    )
    print(_common.bench_line("local_api_p50", p50[0], p50[1], "ms"))
    print(_common.bench_line("local_api_p99", p99[0], p99[1], "ms"))
    print(_common.bench_line("local_api_rps", ours_rps, base_rps, "req/s"))


if __name__ == "__main__":
    main()

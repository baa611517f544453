"""Load: 16 clients for 30 s over loopback while a new version is pushed and promoted.

The script starts its own local stack (``maaskit local up`` in a child process, bound to
127.0.0.1 only) with two models, ``load-mlp`` (64-64-10) and ``load-linear`` (4-3), each at
versions 1 and 2 with ``production`` on 2. Sixteen keep-alive clients then send a mix of
simple predict (``?alias=production``, 1-4 rows), V2 infer (latest) and metadata reads
(``GET /v2/models/{name}``, ``GET /models/{name}``) as fast as they get answers.

Ours: that load for 30 s while, a third of the way in, version 3 of ``load-mlp`` is pushed
(``latest`` moves), at half way it is promoted to ``production``, a 2,000-row batch file
lands in ``batch/in/load-linear/``, and a 17th thread injects client faults every 250 ms
(a body cut short, a request whose reply is never read, bytes that are not HTTP, a body
that is not JSON). Baseline: the same 16 clients and mix on the same stack with no
promotion, batch or faults, 15 s before and 15 s after ours.

Every reply is checked: status 200, the rows asked for come back, the version is one that
may be served at that moment (``load-mlp`` production is 2 until the promotion, then 3 at
the latest one alias TTL later). Figures:

- ``load_errors``: requests that failed those checks, a transport error included (count;
  ratio 0 when ours is 0).
- ``load_p99``: 99th percentile latency of the checked requests (ms).
- ``load_rss_growth``: the stack process's resident memory at the end of a run over its
  start (ratio; baseline is the geometric mean of its two runs).

Bounded: each run stops at its deadline or after ``MAX_REQUESTS_PER_CLIENT``, each request
times out after 30 s, and the whole script after ``3 * SECONDS + 120`` s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import numpy as np

from tests.support import models

CLIENTS = 16
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "30"))
MAX_REQUESTS_PER_CLIENT = 100_000
ALIAS_TTL_SECONDS = 2.0
FAULT_EVERY_S = 0.25
BATCH_ROWS = 2000
MLP, LINEAR = "load-mlp", "load-linear"
WIDTH = {MLP: 64, LINEAR: 4}
GRACE_S = 1.0  # requests in flight when an alias moves, on top of the alias TTL


@dataclass
class Tally:
    """What one run saw; the clients append, the main thread reads after join."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    rows_sent: int = 0
    rows_answered: int = 0  # rows asked for in requests answered 200
    rows_returned: int = 0
    tried: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    fault_5xx: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    examples: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {detail[:300]}")


class Timeline:
    """When ``load-mlp`` production moved: which versions a reply may carry at a moment."""

    def __init__(self) -> None:
        self.promoted_at: float | None = None
        self.pushed_at: float | None = None

    def allowed_production(self, sent: float, received: float) -> set[int]:
        return _allowed(self.promoted_at, sent, received)

    def allowed_latest(self, sent: float, received: float) -> set[int]:
        return _allowed(self.pushed_at, sent, received)


def _allowed(moved_at: float | None, sent: float, received: float) -> set[int]:
    """v2 before the alias moved, v3 once every sandbox re-read it, either in between."""
    if moved_at is None or received < moved_at:
        return {2}
    if sent > moved_at + ALIAS_TTL_SECONDS + GRACE_S:
        return {3}
    return {2, 3}


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _request(rng: random.Random) -> tuple[str, str, str, bytes | None, int]:
    """(kind, method, path, body, rows) of one request of the mix."""
    model = MLP if rng.random() < 0.5 else LINEAR
    pick = rng.random()
    rows = rng.randint(1, 4)
    data = np.round(np.asarray([[rng.uniform(-1, 1) for _ in range(WIDTH[model])]] * rows), 4)
    if pick < 0.4:
        body = json.dumps({"input": data.tolist()}).encode()
        return "predict", "POST", f"/models/{model}/predict?alias=production", body, rows
    if pick < 0.7:
        tensor = {
            "name": "input",
            "shape": [rows, WIDTH[model]],
            "datatype": "FP32",
            "data": data.ravel().tolist(),
        }
        body = json.dumps({"inputs": [tensor]}).encode()
        return "infer", "POST", f"/v2/models/{model}/infer", body, rows
    path = f"/v2/models/{model}" if pick < 0.85 else f"/models/{model}"
    return "metadata", "GET", path, None, 0


def _check(
    kind: str, path: str, reply: Any, *, rows: int, sent: float, now: float, timeline: Timeline
) -> tuple[str | None, str, int]:
    """(error or None, version label, rows returned) for one 200 reply."""
    model = MLP if f"/{MLP}" in path else LINEAR
    if kind == "metadata":
        ok = isinstance(reply, dict) and (reply.get("name") == model or "versions" in reply)
        return (None if ok else f"metadata reply {str(reply)[:120]}"), "-", 0
    if kind == "predict":
        version = int(reply["version"])
        first = next(iter(reply["outputs"].values()))
        returned = len(first)
        allowed = timeline.allowed_production(sent, now) if model == MLP else {2}
    else:
        version = int(reply["model_version"])
        returned = int(reply["outputs"][0]["shape"][0])
        allowed = timeline.allowed_latest(sent, now) if model == MLP else {2}
    label = f"{kind} {model} v{version}"
    if version not in allowed:
        return f"{label} served, expected one of {sorted(allowed)}", label, returned
    if returned != rows:
        return f"{label}: {returned} rows for {rows}", label, returned
    return None, label, returned


def _client(
    host: str, port: int, *, seed: int, stop_at: float, tally: Tally, timeline: Timeline
) -> None:
    rng = random.Random(seed)
    connection: http.client.HTTPConnection | None = None
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        sent = time.perf_counter()
        if sent >= stop_at:
            break
        kind, method, path, body, rows = _request(rng)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        with tally.lock:
            tally.tried += 1
            tally.kinds[kind] += 1
            tally.rows_sent += rows
        try:
            if connection is None:
                connection = http.client.HTTPConnection(host, port, timeout=30)
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as err:
            tally.error(type(err).__name__, f"{method} {path}: {err}")
            if connection is not None:
                connection.close()
            connection = None
            continue
        now = time.perf_counter()
        with tally.lock:
            tally.statuses[response.status] += 1
        if response.status != 200:
            tally.error(f"HTTP {response.status}", f"{method} {path}: {payload[:200]!r}")
            continue
        try:
            problem, label, returned = _check(
                kind, path, json.loads(payload), rows=rows, sent=sent, now=now, timeline=timeline
            )
        except (ValueError, KeyError, TypeError, IndexError, StopIteration) as err:
            problem, label, returned = f"unreadable reply ({err}): {payload[:120]!r}", "-", 0
        with tally.lock:
            tally.versions[label] += 1
            tally.rows_answered += rows
            tally.rows_returned += returned
            if problem is None:
                tally.latencies_ms.append((now - sent) * 1000)
        if problem is not None:
            tally.error("wrong reply", problem)
    if connection is not None:
        connection.close()


def _raw(host: str, port: int, data: bytes, read: bool) -> bytes:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(data)
        if not read:
            return b""
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _faults(host: str, port: int, stop_at: float, tally: Tally) -> None:
    """Client faults on their own connections; each must cost the 16 clients nothing."""
    body = json.dumps({"input": [[0.5] * 4]}).encode()
    head = (
        f"POST /models/{LINEAR}/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    )
    kinds: list[tuple[str, bytes, bool]] = [
        ("body cut short", f"{head}Content-Length: {len(body) + 500}\r\n\r\n".encode() + body, False),
        ("reply never read", f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body, False),
        ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), True),
        ("not JSON", f"{head}Content-Length: 9\r\nConnection: close\r\n\r\n{{'input'}}".encode(), True),
    ]  # fmt: skip
    turn = 0
    while time.perf_counter() < stop_at:
        name, data, read = kinds[turn % len(kinds)]
        turn += 1
        try:
            reply = _raw(host, port, data, read)
        except OSError:
            reply = b""
        with tally.lock:
            tally.faults[name] += 1
            if reply.startswith(b"HTTP/1.") and reply[9:10] == b"5":
                tally.fault_5xx += 1
        time.sleep(FAULT_EVERY_S)


@dataclass
class Run:
    tally: Tally
    rss_start_mb: float
    rss_end_mb: float

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_start_mb


def run(
    stack: _common.LocalStack,
    seconds: float,
    *,
    seed: int,
    events: Sequence[tuple[float, Callable[[], None]]] = (),
    timeline: Timeline | None = None,
    faults: bool = False,
) -> Run:
    """One run of the load; ``events`` are (seconds in, action), run from this thread."""
    host, port_text = stack.api_url.split("//", 1)[1].rstrip("/").split(":")
    port = int(port_text)
    tally, timeline = Tally(), timeline or Timeline()
    rss_start = _rss_mb(stack.pid)
    began = time.perf_counter()
    stop_at = began + seconds
    threads = [
        threading.Thread(
            target=_client,
            args=(host, port),
            kwargs={
                "seed": seed * 100 + i,
                "stop_at": stop_at,
                "tally": tally,
                "timeline": timeline,
            },
            daemon=True,
        )
        for i in range(CLIENTS)
    ]
    if faults:
        threads.append(
            threading.Thread(target=_faults, args=(host, port, stop_at, tally), daemon=True)
        )
    for thread in threads:
        thread.start()
    for offset, action in sorted(events, key=lambda event: event[0]):
        time.sleep(max(0.0, began + offset - time.perf_counter()))
        action()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at - time.perf_counter() + 35))
    return Run(tally, rss_start, _rss_mb(stack.pid))


def _report(name: str, result: Run, seconds: float) -> None:
    tally = result.tally
    fivexx = sum(count for status, count in tally.statuses.items() if status >= 500)
    print(
        f"{name}: {tally.tried} requests tried in {seconds:g} s "
        f"({', '.join(f'{k} {v}' for k, v in sorted(tally.kinds.items()))}); "
        f"{sum(tally.errors.values())} errors {dict(tally.errors)}; {fivexx} 5xx; "
        f"rows sent {tally.rows_sent}, in 200 replies {tally.rows_answered}, returned "
        f"{tally.rows_returned}; RSS {result.rss_start_mb:.1f} -> {result.rss_end_mb:.1f} MB"
    )
    if tally.faults:
        print(
            f"  faults injected: {sum(tally.faults.values())} {dict(tally.faults)}, "
            f"5xx answered to them: {tally.fault_5xx}"
        )
    print(f"  replies by version: {dict(sorted(tally.versions.items()))}")
    for example in tally.examples:
        print(f"  e.g. {example}")


class Scenario:
    """Two models at v1 and v2 (production on 2); mid-run: push v3, promote it, a batch file."""

    def __init__(self, stack: _common.LocalStack, scratch: Path) -> None:
        import boto3

        from maaskit.sdk.client import Client
        from maaskit.sdk.targets import Target, TargetOptions

        options = TargetOptions(api_url=stack.api_url, aws_endpoint_url=stack.aws_url, env={})
        self.client = Client(Target(options))
        self.s3 = boto3.client("s3", endpoint_url=stack.aws_url, region_name="us-east-1")
        self.bucket = self.client.target.bucket
        self.timeline = Timeline()
        self.files = {}
        for model in (MLP, LINEAR):
            for version in (1, 2, 3):
                path = self.files[(model, version)] = scratch / f"{model}-{version}.onnx"
                data = (
                    models.mlp(64, 64, 10, seed=version)
                    if model == MLP
                    else models.linear(seed=version)[0]
                )
                path.write_bytes(data)
        for model in (MLP, LINEAR):
            self.client.push_model(self.files[(model, 1)], model)
            self.client.push_model(self.files[(model, 2)], model, aliases=("production",))
        self.batch_key = f"batch/in/{LINEAR}/load/rows.jsonl"

    def push(self) -> None:
        self.client.push_model(self.files[(MLP, 3)], MLP)
        self.timeline.pushed_at = time.perf_counter()

    def promote(self) -> None:
        self.client.promote(MLP, 3, "production")
        self.timeline.promoted_at = time.perf_counter()

    def batch(self) -> None:
        rows = (json.dumps({"input": [[0.001 * i, 1.0, -1.0, 0.5]]}) for i in range(BATCH_ROWS))
        self.s3.put_object(Bucket=self.bucket, Key=self.batch_key, Body="\n".join(rows).encode())

    def batch_rows_lost(self) -> int:
        """Rows written minus rows predicted and rows reported failed (the report is checked)."""
        out_key = self.batch_key.replace("batch/in/", "batch/out/", 1)
        report = json.loads(
            self.s3.get_object(Bucket=self.bucket, Key=f"{out_key}.report.json")["Body"].read()
        )
        body = self.s3.get_object(Bucket=self.bucket, Key=out_key)["Body"].read()
        predicted = sum(1 for line in body.splitlines() if line.strip())
        print(
            f"batch during the run: {BATCH_ROWS} rows written; report rows_in "
            f"{report['rows_in']}, rows_out {report['rows_out']}, rows_failed "
            f"{report['rows_failed']}; {predicted} prediction lines"
        )
        return BATCH_ROWS - predicted - int(report["rows_failed"])


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    watchdog = threading.Timer(3 * SECONDS + 120, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()
    parameters = {"AliasTtlSeconds": f"{ALIAS_TTL_SECONDS:g}", "LogLevel": "WARNING"}
    half = SECONDS / 2
    with (
        tempfile.TemporaryDirectory() as scratch,
        open(Path(scratch) / "stack.log", "wb") as stack_log,
        _common.local_stack(parameters, stderr=stack_log) as stack,
    ):
        scenario = Scenario(stack, Path(scratch))
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            run(stack, 3.0, seed=0)  # warm: sessions, connections, caches
        base_a = run(stack, half, seed=1)
        events = [
            (SECONDS / 3, scenario.push),
            (SECONDS / 2, scenario.promote),
            (SECONDS * 0.6, scenario.batch),
        ]
        ours = run(stack, SECONDS, seed=2, events=events, timeline=scenario.timeline, faults=True)
        settled = Timeline()  # v3 is latest and production for good now
        settled.promoted_at = settled.pushed_at = time.perf_counter() - 60
        base_b = run(stack, half, seed=3, timeline=settled)
        batch_lost = scenario.batch_rows_lost()
        log_text = Path(stack_log.name).read_text(errors="replace")
        stack_errors = [
            line for line in log_text.splitlines() if "Traceback" in line or "ERROR" in line
        ]
        if os.environ.get("BENCH_LOAD_LOG"):
            Path(os.environ["BENCH_LOAD_LOG"]).write_text(log_text)
    _report("baseline, first half", base_a, half)
    _report("ours (push, promote, batch, faults)", ours, SECONDS)
    _report("baseline, second half", base_b, half)
    api_lost = ours.tally.rows_answered - ours.tally.rows_returned
    print(f"rows lost: {batch_lost} in batch, {api_lost} in API replies")
    print(f"stack log lines with a traceback or an error: {len(stack_errors)}")
    for line in stack_errors[:5]:
        print(f"  {line[:200]}")
    _figures(ours, base_a, base_b)


def _figures(ours: Run, base_a: Run, base_b: Run) -> None:
    base_errors = sum(base_a.tally.errors.values()) + sum(base_b.tally.errors.values())
    ours_errors = sum(ours.tally.errors.values())
    ratio = 0.0 if ours_errors == 0 else ours_errors / base_errors if base_errors else math.inf
    print(
        f"BENCH load_errors ours={ours_errors} baseline={base_errors} ratio={ratio:.4f} unit=count"
    )
    p99 = _common.percentile(ours.tally.latencies_ms, 99)
    base_p99 = _common.percentile(base_a.tally.latencies_ms + base_b.tally.latencies_ms, 99)
    print(_common.bench_line("load_p99", p99, base_p99, "ms"))
    base_growth = math.sqrt(base_a.rss_growth * base_b.rss_growth)
    print(_common.bench_line("load_rss_growth", ours.rss_growth, base_growth, "ratio"))


if __name__ == "__main__":
    main()

"""Shared helpers for the benchmarks: percentiles, the BENCH line, a moto server process.

Every figure compares ours with a named baseline measured in the same run, and ends as one
line: ``BENCH <figure> ours=<n> baseline=<n> ratio=<ours/baseline> unit=<unit>``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "src"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "maaskit",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def bench_line(figure: str, ours: float, baseline: float, unit: str) -> str:
    ratio = ours / baseline if baseline else float("inf")
    return f"BENCH {figure} ours={ours:.6g} baseline={baseline:.6g} ratio={ratio:.4f} unit={unit}"


def interleaved(
    ours: Callable[[], object], baseline: Callable[[], object], calls: int, blocks: int = 20
) -> tuple[list[float], list[float]]:
    """Milliseconds per call, alternating blocks of ours and the baseline, so drift on a
    shared machine hits both alike (more, shorter blocks for calls long enough to span it).
    The order flips every block (ours first, then the baseline first), so neither side
    always runs just after the other has warmed or cooled the caches."""
    ours_ms: list[float] = []
    baseline_ms: list[float] = []
    block = max(1, calls // blocks)
    sides = [(ours, ours_ms), (baseline, baseline_ms)]
    for index in range(blocks):
        for fn, samples in sides if index % 2 == 0 else sides[::-1]:
            for _ in range(block):
                started = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - started) * 1000)
    return ours_ms, baseline_ms


def sandbox_env(endpoint: str, bucket: str, cache_dir: Path) -> dict[str, str]:
    """The environment of a fresh sandbox: S3 at ``endpoint``, an empty model cache."""
    return {
        **os.environ,
        **FAKE_AWS,
        "AWS_ENDPOINT_URL": endpoint,
        "MAASKIT_BUCKET": bucket,
        "MAASKIT_CACHE_DIR": str(cache_dir),
    }


def timed_child(code: str, env: Mapping[str, str]) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter: (wall seconds, its stderr); raise if it failed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=dict(env), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return elapsed, done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode in another process, so its import never counts as ours."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **FAKE_AWS},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


class LocalStack(NamedTuple):
    api_url: str
    aws_url: str
    pid: int


@contextmanager
def local_stack(
    parameters: Mapping[str, str], stderr: IO[bytes] | int = subprocess.DEVNULL
) -> Iterator[LocalStack]:
    """``maaskit local up`` on free loopback ports in a child process, with template parameters."""
    api_port, aws_port = free_port(), free_port()
    env = {
        **os.environ,
        **FAKE_AWS,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    overrides = [
        arg for key, value in parameters.items() for arg in ("--parameter", f"{key}={value}")
    ]
    process = subprocess.Popen(
        [
            sys.executable, "-m", "maaskit.cli.main", "local", "up",
            "--template", str(ROOT / "template.yaml"),
            "--api-port", str(api_port), "--aws-port", str(aws_port),
            *overrides,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if "Press Ctrl-C" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the local stack did not start")
        else:
            raise RuntimeError("the local stack exited before it was ready")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep draining
        yield LocalStack(
            f"http://127.0.0.1:{api_port}/", f"http://127.0.0.1:{aws_port}", process.pid
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""Online inference: the API handler against raw onnxruntime, warm and cold.

Warm: the handler, event in and JSON out with the model cached, against ``session.run``
on the same inputs (MiniLM-int8 at batch 1 and ~16 tokens; a small MLP).
Cold: a fresh process to its first reply (imports, fetch from S3, verify, session, run)
against a fresh process doing the raw path (import onnxruntime, session from a local file,
run). moto serves S3 from another process so that its import is not counted as ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

from tests.support import minilm, models

WARM_MINILM_CALLS = 300
WARM_MLP_CALLS = 3000
COLD_RUNS = 5
BUCKET = "maaskit-bench"


def _publish(endpoint: str | None) -> None:
    import boto3

    from maaskit.registry import Registry
    from maaskit.store import ObjectStore

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    registry = Registry(ObjectStore(BUCKET, client=client))
    registry.publish("minilm", minilm.model_path().read_bytes())
    registry.publish("mlp", models.mlp(64, 64, 10))


def _interleaved(ours: Any, raw: Any, calls: int) -> tuple[list[float], list[float]]:
    """Alternate blocks of ours and raw, so drift on a shared machine hits both alike."""
    ours_ms: list[float] = []
    raw_ms: list[float] = []
    block = max(1, calls // 20)
    for _ in range(20):
        for fn, samples in ((ours, ours_ms), (raw, raw_ms)):
            for _ in range(block):
                started = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - started) * 1000)
    return ours_ms, raw_ms


def warm() -> list[str]:
    import onnxruntime as ort
    from moto import mock_aws

    from tests.support.events import FakeContext, api_event

    lines = []
    with mock_aws(), tempfile.TemporaryDirectory() as cache:
        os.environ.update({"MAASKIT_BUCKET": BUCKET, "MAASKIT_CACHE_DIR": cache})
        _publish(None)
        from functions.api import app

        tokens = minilm.tokenize([minilm.SENTENCE], length=16)
        features = np.random.default_rng(0).normal(size=(1, 64)).astype(np.float32)
        cases = {
            "minilm": (
                {"inputs": {k: v.tolist() for k, v in tokens.items()}},
                str(minilm.model_path()),
                tokens,
                WARM_MINILM_CALLS,
            ),
            "mlp": ({"input": features.tolist()}, None, {"input": features}, WARM_MLP_CALLS),
        }
        results: dict[str, tuple[list[float], list[float]]] = {}
        devnull = open(os.devnull, "w")  # noqa: SIM115 - metrics go to stdout, as on Lambda
        for name, (body, path, arrays, calls) in cases.items():
            event = api_event("POST", f"/models/{name}/predict", body)
            context = FakeContext()
            session = ort.InferenceSession(path or models.mlp(64, 64, 10))
            with contextlib.redirect_stdout(devnull):
                reply = app.lambda_handler(event, context)
                assert reply["statusCode"] == 200, reply["body"]

                def ours(event: dict[str, Any] = event, context: Any = context) -> None:
                    app.lambda_handler(event, context)

                def raw(session: Any = session, arrays: dict[str, Any] = arrays) -> None:
                    session.run(None, arrays)

                for _ in range(20):  # warm both paths
                    ours()
                    raw()
                results[name] = _interleaved(ours, raw, calls)
        devnull.close()
    ours_ms, raw_ms = results["minilm"]
    print(f"minilm batch 1 x 16 tokens: {len(ours_ms)} calls each")
    lines.append(
        _common.bench_line(
            "warm_minilm_p50", _common.percentile(ours_ms, 50), _common.percentile(raw_ms, 50), "ms"
        )
    )
    lines.append(
        _common.bench_line(
            "warm_minilm_p99", _common.percentile(ours_ms, 99), _common.percentile(raw_ms, 99), "ms"
        )
    )
    ours_ms, raw_ms = results["mlp"]
    p50_ours, p50_raw = _common.percentile(ours_ms, 50), _common.percentile(raw_ms, 50)
    print(f"mlp 64-64-10 batch 1: overhead over raw at p50 = {p50_ours - p50_raw:.3f} ms")
    lines.append(_common.bench_line("warm_mlp_p50", p50_ours, p50_raw, "ms"))
    return lines


_OURS_COLD = """
import json, os, sys
sys.path[:0] = [{root!r}, {src!r}]
from functions.api import app
from tests.support.events import FakeContext, api_event
event = api_event("POST", "/models/minilm/predict", json.load(open({body!r})))
reply = app.lambda_handler(event, FakeContext())
assert reply["statusCode"] == 200, reply["body"][:300]
# VmHWM, not ru_maxrss: ru_maxrss survives fork and exec, so it could report our parent's peak
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(hwm.split()[1]) / 1024, file=sys.stderr)
"""

_RAW_COLD = """
import sys
import numpy as np
import onnxruntime as ort
arrays = dict(np.load({npz!r}))
session = ort.InferenceSession({model!r})
session.run(None, arrays)
# VmHWM, not ru_maxrss: ru_maxrss survives fork and exec, so it could report our parent's peak
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(hwm.split()[1]) / 1024, file=sys.stderr)
"""


def _timed_process(code: str, env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    rss_mb = float(done.stderr.strip().splitlines()[-1])
    return elapsed, rss_mb


def cold() -> list[str]:
    tokens = minilm.tokenize([minilm.SENTENCE], length=16)
    with _common.moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        _publish(endpoint)
        body_path = Path(scratch) / "body.json"
        body_path.write_text(json.dumps({"inputs": {k: v.tolist() for k, v in tokens.items()}}))
        npz_path = Path(scratch) / "inputs.npz"
        np.savez(npz_path, **tokens)  # type: ignore[arg-type]
        ours_code = _OURS_COLD.format(
            root=str(_common.ROOT), src=str(_common.ROOT / "src"), body=str(body_path)
        )
        raw_code = _RAW_COLD.format(npz=str(npz_path), model=str(minilm.model_path()))
        ours_runs: list[tuple[float, float]] = []
        raw_runs: list[tuple[float, float]] = []
        for run in range(COLD_RUNS):
            env = {
                **os.environ,
                **_common.FAKE_AWS,
                "AWS_ENDPOINT_URL": endpoint,
                "MAASKIT_BUCKET": BUCKET,
                "MAASKIT_CACHE_DIR": str(Path(scratch) / f"cache-{run}"),  # empty: a new sandbox
            }
            ours_runs.append(_timed_process(ours_code, env))
            raw_runs.append(_timed_process(raw_code, env))
    ours_s = statistics.median(t for t, _ in ours_runs)
    raw_s = statistics.median(t for t, _ in raw_runs)
    ours_rss = max(r for _, r in ours_runs)
    raw_rss = max(r for _, r in raw_runs)
    print(f"cold start, MiniLM-int8 (23 MB) fetched from S3: median of {COLD_RUNS} runs each")
    return [
        _common.bench_line("cold_start", ours_s, raw_s, "s"),
        _common.bench_line("cold_rss", ours_rss, raw_rss, "MB"),
    ]


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    lines = cold() + warm()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

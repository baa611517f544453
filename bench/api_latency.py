"""Online inference: the API handler against raw onnxruntime, warm and cold.

Warm: the handler, event in and JSON out with the model cached, against ``session.run``
on the same inputs in a session with the same options (MiniLM-int8 at batch 1 and ~16
tokens; a small MLP).
Cold: a fresh process to its first reply (imports, fetch from S3, verify, session, run)
against a hand-written "aws-samples style" handler (import boto3, onnxruntime and json;
``download_file`` the model to /tmp; make the session; run; ``json.dumps``) given the same
token-id request, and against the raw path (session from a local file). Ours is split into
init (the module import: what SnapStart snapshots) and the first request. Sides alternate,
each run in a fresh process with an empty model cache. moto serves S3 from another process
so that its import is not counted on either side.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import _common
import numpy as np

from tests.support import minilm, models

WARM_MINILM_CALLS = 300
WARM_MLP_CALLS = 3000
# MiniLM's calls take milliseconds and its two intra-op threads feel every burst of load on
# a shared machine: blocks of 5 calls, so that a burst hits both sides alike
BLOCKS = {"minilm": 60, "mlp": 20}
COLD_RUNS = 5
BUCKET = "maaskit-bench"


def _publish(endpoint: str | None) -> None:
    import boto3

    from maaskit.registry.catalog import Registry
    from maaskit.registry.store import ObjectStore

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    registry = Registry(ObjectStore(BUCKET, client=client))
    registry.publish("minilm", minilm.model_path().read_bytes())
    registry.publish("mlp", models.mlp(64, 64, 10))


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
            with contextlib.redirect_stdout(devnull):
                reply = app.lambda_handler(event, context)
                assert reply["statusCode"] == 200, reply["body"]
                # the baseline's session gets the very options ours was made with (threads,
                # spinning, optimization level), so only the path around session.run differs
                options = app.service.runtime.load(name).session.get_session_options()
                session = ort.InferenceSession(
                    path or models.mlp(64, 64, 10),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                )

                def ours(event: dict[str, Any] = event, context: Any = context) -> None:
                    app.lambda_handler(event, context)

                def raw(session: Any = session, arrays: dict[str, Any] = arrays) -> None:
                    session.run(None, arrays)

                for _ in range(20):  # warm both paths
                    ours()
                    raw()
                results[name] = _common.interleaved(ours, raw, calls, BLOCKS[name])
        devnull.close()
    for name, (ours_ms, raw_ms) in results.items():
        blocks = BLOCKS[name]
        print(
            f"{name}: {len(ours_ms)} calls each, in {blocks} alternated blocks; block p50s: "
            f"ours {_block_spread(ours_ms, blocks)} ms, raw {_block_spread(raw_ms, blocks)} ms"
        )
    ours_ms, raw_ms = results["minilm"]
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
    lines.append(_common.bench_line("warm_mlp_overhead", p50_ours, p50_raw, "ms"))
    return lines


def _block_spread(samples: list[float], blocks: int = 20) -> str:
    size = len(samples) // blocks
    medians = [statistics.median(samples[i * size : (i + 1) * size]) for i in range(blocks)]
    return (
        f"median {statistics.median(medians):.4f} (min {min(medians):.4f}, max {max(medians):.4f})"
    )


# Each cold child prints one JSON line on stderr: its init (imports, clients; the model too
# for the hand-written handler, which loads it at module level), its first request, and its
# peak RSS. The parent times the whole process, fresh interpreter to first reply.
_REPORT = """
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"init": init_s, "first": first_s, "rss_mb": int(hwm.split()[1]) / 1024}}),
      file=sys.stderr)
"""

_OURS_COLD = (
    """
import json, sys, time
sys.path[:0] = [{root!r}, {src!r}]
event = json.load(open({event!r}))  # an API Gateway event, without importing test helpers

class Context:  # what Lambda passes (and Powertools reads)
    function_name = "maaskit-api"
    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:maaskit-api"
    aws_request_id = "cold-1"

    def get_remaining_time_in_millis(self):
        return 30000

started = time.perf_counter()
from functions.api import app
init_s = time.perf_counter() - started
started = time.perf_counter()
reply = app.lambda_handler(event, Context())
first_s = time.perf_counter() - started
assert reply["statusCode"] == 200, reply["body"][:300]
"""
    + _REPORT
)

# What a user would write without maaskit ("aws-samples style"): the model downloaded to /tmp
# and its session made at module level, the handler parsing the same request and dumping
# the outputs with json.
_HANDWRITTEN_COLD = (
    """
import sys, time
started = time.perf_counter()
import json
import os
import boto3
import numpy as np
import onnxruntime as ort
s3 = boto3.client("s3")
path = os.path.join({scratch!r}, "model.onnx")
s3.download_file({bucket!r}, "models/minilm/versions/1/model.onnx", path)
session = ort.InferenceSession(path)
init_s = time.perf_counter() - started

def handler(event, context):
    body = json.loads(event["body"])
    feeds = {{k: np.asarray(v, dtype=np.int64) for k, v in body["inputs"].items()}}
    outputs = session.run(None, feeds)
    names = [o.name for o in session.get_outputs()]
    return {{"statusCode": 200, "body": json.dumps({{n: o.tolist() for n, o in zip(names, outputs)}})}}

event = {{"body": open({body!r}).read()}}
started = time.perf_counter()
reply = handler(event, None)
first_s = time.perf_counter() - started
assert reply["statusCode"] == 200
"""
    + _REPORT
)

_RAW_COLD = (
    """
import json, sys, time
started = time.perf_counter()
import numpy as np
import onnxruntime as ort
arrays = dict(np.load({npz!r}))
session = ort.InferenceSession({model!r})
init_s = time.perf_counter() - started
started = time.perf_counter()
session.run(None, arrays)
first_s = time.perf_counter() - started
"""
    + _REPORT
)


def _timed_process(code: str, env: dict[str, str]) -> dict[str, float]:
    elapsed, stderr = _common.timed_child(code, env)
    report: dict[str, float] = json.loads(stderr.strip().splitlines()[-1])
    return {**report, "total": elapsed}


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}, min {min(values):.3f}, max {max(values):.3f}"


def cold() -> list[str]:
    from tests.support.events import api_event

    tokens = minilm.tokenize([minilm.SENTENCE], length=16)
    with _common.moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        _publish(endpoint)
        body_path = Path(scratch) / "body.json"
        body_path.write_text(json.dumps({"inputs": {k: v.tolist() for k, v in tokens.items()}}))
        event_path = Path(scratch) / "event.json"
        event_path.write_text(
            json.dumps(api_event("POST", "/models/minilm/predict", raw_body=body_path.read_text()))
        )
        npz_path = Path(scratch) / "inputs.npz"
        np.savez(npz_path, **tokens)  # type: ignore[arg-type]
        sides = {
            "ours": _OURS_COLD.format(
                root=str(_common.ROOT), src=str(_common.ROOT / "src"), event=str(event_path)
            ),
            "handwritten": _HANDWRITTEN_COLD,
            "raw": _RAW_COLD.format(npz=str(npz_path), model=str(minilm.model_path())),
        }
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for run in range(COLD_RUNS):
            sandbox = Path(scratch) / f"sandbox-{run}"  # empty /tmp: a new sandbox each time
            sandbox.mkdir()
            env = {
                **os.environ,
                **_common.FAKE_AWS,
                "AWS_ENDPOINT_URL": endpoint,
                "MAASKIT_BUCKET": BUCKET,
                "MAASKIT_CACHE_DIR": str(sandbox / "maaskit"),
            }
            order = list(sides) if run % 2 == 0 else list(reversed(sides))  # alternate
            for side in order:
                code = sides[side]
                if side == "handwritten":
                    code = code.format(scratch=str(sandbox), bucket=BUCKET, body=str(body_path))
                runs[side].append(_timed_process(code, env))

    def figure(side: str, key: str) -> list[float]:
        return [r[key] for r in runs[side]]

    print(f"cold start, MiniLM-int8 (23 MB) fetched from S3 on moto: {COLD_RUNS} alternated runs")
    for side in sides:
        print(
            f"  {side:11s} total {_spread(figure(side, 'total'))} s; "
            f"init {_spread(figure(side, 'init'))} s; first request {_spread(figure(side, 'first'))} s"
        )
    median = {
        (side, key): statistics.median(figure(side, key))
        for side in sides
        for key in ("total", "init", "first")
    }
    return [
        _common.bench_line("cold_start", median["ours", "total"], median["raw", "total"], "s"),
        _common.bench_line(
            "cold_rss", max(figure("ours", "rss_mb")), max(figure("raw", "rss_mb")), "MB"
        ),
        _common.bench_line(
            "cold_start_vs_handwritten",
            median["ours", "total"],
            median["handwritten", "total"],
            "s",
        ),
        _common.bench_line("cold_init", median["ours", "init"], median["handwritten", "init"], "s"),
        _common.bench_line(
            "cold_first_request", median["ours", "first"], median["handwritten", "first"], "s"
        ),
    ]


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    lines = cold() + warm()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

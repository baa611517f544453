"""Batch predictions: the whole S3 path against raw onnxruntime on the same rows in memory.

Ours: an object under ``batch/in/`` in S3 (moto, served from another process) to its
predictions object and report, through ``BatchService.process`` as the batch function
calls it: streaming read, parse, vectorized ``session.run``, encode, multipart upload,
report. The model is loaded before the clock starts (a warm sandbox).
Baseline: ``session.run`` over the same rows already in memory, in batches of the same
size, outputs kept; same session options and thread count.

Each measurement runs in a fresh subprocess, which also gives its peak RSS (ours should
not grow with the rows; raw holds them all). Inputs are ``.npy`` (the format whose reading
costs least, so the path's own overhead shows); CSV and JSON Lines throughput for the MLP
is printed for reference. MiniLM-int8 gets 16-token sequences (padded or cut), 10k rows.
"""

from __future__ import annotations

import io
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

BUCKET = "maaskit-bench"
BATCH_SIZE = 1024
REPEATS = 3  # best of, alternating ours and raw, per figure
TOKENS = 16


# ---------------------------------------------------------------- children (fresh processes)


def _rss_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries it across fork and exec, so
    a child started from a big parent reports the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_ours(key: str, model: str) -> dict[str, Any]:
    import contextlib

    from maaskit.batch.service import BatchService
    from maaskit.settings import Settings

    service = BatchService.from_settings(Settings.from_env())
    service.runtime.load(model)  # a warm sandbox: the model is in memory already
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        outcome = service.process(key)
    seconds = time.perf_counter() - started
    if outcome.status != "completed":
        raise RuntimeError(f"{key}: {outcome}")
    report = service.store.get_json(outcome.report or "")
    return {
        "seconds": seconds,
        "rows": outcome.rows_out,
        "rss_mb": _rss_mb(),
        "timings_ms": report["timings_ms"],
        "counters": report["counters"],
    }


def child_raw(inputs_path: str, model_path: str) -> dict[str, Any]:
    import onnxruntime as ort

    from maaskit.runtime import default_threads

    loaded = np.load(inputs_path)
    arrays = (
        {name: np.ascontiguousarray(loaded[name]) for name in loaded.dtype.names}
        if loaded.dtype.names
        else {"input": loaded}
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    rows = len(next(iter(arrays.values())))
    session.run(None, {k: v[:BATCH_SIZE] for k, v in arrays.items()})  # warm, like ours
    outputs = []
    started = time.perf_counter()
    for start in range(0, rows, BATCH_SIZE):
        outputs.append(
            session.run(None, {k: v[start : start + BATCH_SIZE] for k, v in arrays.items()})
        )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "rss_mb": _rss_mb()}


# ---------------------------------------------------------------- the parent


def _run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _minilm_rows(rows: int) -> np.ndarray:
    words = minilm.SENTENCE.split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=rng.integers(4, 20))) for _ in range(rows)]
    tokens = minilm.tokenize(texts, length=TOKENS)
    records = np.zeros(rows, dtype=[(name, "<i8", (TOKENS,)) for name in tokens])
    for name, array in tokens.items():
        records[name] = array
    return records


def _text_versions(x: np.ndarray) -> dict[str, bytes]:
    header = ",".join(f"f{i}" for i in range(x.shape[1]))
    rounded = np.round(x, 5)
    csv = header + "\n" + "\n".join(",".join(map(repr, row)) for row in rounded.tolist()) + "\n"
    jsonl = "\n".join(json.dumps(row) for row in rounded.tolist()) + "\n"
    return {"csv": csv.encode(), "jsonl": jsonl.encode()}


def main() -> None:
    import boto3

    from maaskit.registry import Registry
    from maaskit.store import ObjectStore

    os.environ.update(_common.FAKE_AWS)
    mlp = models.mlp(64, 64, 10)
    rng = np.random.default_rng(0)
    cases: dict[str, tuple[str, np.ndarray]] = {
        "mlp_10k": ("mlp", rng.normal(size=(10_000, 64)).astype(np.float32)),
        "mlp_100k": ("mlp", rng.normal(size=(100_000, 64)).astype(np.float32)),
        "minilm_10k": ("minilm", _minilm_rows(10_000)),
    }
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with _common.moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        store = ObjectStore(BUCKET, client=client)
        registry = Registry(store)
        registry.publish("mlp", mlp)
        registry.publish("minilm", minilm.model_path().read_bytes())
        model_files = {"mlp": Path(scratch) / "mlp.onnx", "minilm": minilm.model_path()}
        model_files["mlp"].write_bytes(mlp)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "MAASKIT_BUCKET": BUCKET,
            "MAASKIT_BATCH_SIZE": str(BATCH_SIZE),
            "POWERTOOLS_METRICS_NAMESPACE": "maaskit",
        }
        text_cases = {
            f"mlp_100k_{fmt}": body for fmt, body in _text_versions(cases["mlp_100k"][1]).items()
        }
        for case, (model, rows) in cases.items():
            inputs = Path(scratch) / f"{case}.npy"
            body = _npy(rows)
            inputs.write_bytes(body)
            key = f"batch/in/{model}/{case}.npy"
            store.put(key, body)
            results[case] = {"ours": [], "raw": []}
            repeats = REPEATS if model == "mlp" else 1
            for run in range(repeats):
                store.delete(f"batch/out/{model}/{case}.npy.report.json")  # or it is skipped
                ours_env = {**env, "MAASKIT_CACHE_DIR": str(Path(scratch) / f"cache-{case}-{run}")}
                results[case]["ours"].append(_run_child(["ours", key, model], ours_env))
                results[case]["raw"].append(
                    _run_child(["raw", str(inputs), str(model_files[model])], env)
                )
                print(
                    f"{case} run {run}: ours {results[case]['ours'][-1]['seconds']:.3f} s, "
                    f"raw {results[case]['raw'][-1]['seconds']:.3f} s",
                    flush=True,
                )
        for case, body in text_cases.items():
            key = f"batch/in/mlp/{case}.{case.rsplit('_', 1)[1]}"
            store.put(key, body)
            ours_env = {**env, "MAASKIT_CACHE_DIR": str(Path(scratch) / f"cache-{case}")}
            results[case] = {"ours": [_run_child(["ours", key, "mlp"], ours_env)], "raw": []}

    def best_rate(case: str, side: str) -> float:
        return max(float(r["rows"]) / float(r["seconds"]) for r in results[case][side])

    def peak_rss(case: str, side: str) -> float:
        return statistics.median(float(r["rss_mb"]) for r in results[case][side])

    for case in ("mlp_100k", "minilm_10k"):
        best = min(results[case]["ours"], key=lambda r: r["seconds"])
        print(f"{case} ours, where the time went (ms): {best['timings_ms']}")
        print(f"{case} ours, counters: {best['counters']}")
    for case in ("mlp_100k_csv", "mlp_100k_jsonl"):
        rate = best_rate(case, "ours")
        print(
            f"{case}: {rate:,.0f} rows/s ({rate / best_rate('mlp_100k', 'raw'):.3f}x raw), "
            f"time (ms): {results[case]['ours'][0]['timings_ms']}"
        )
    lines = [
        _common.bench_line(
            "batch_mlp_10k", best_rate("mlp_10k", "ours"), best_rate("mlp_10k", "raw"), "rows/s"
        ),
        _common.bench_line(
            "batch_mlp_100k", best_rate("mlp_100k", "ours"), best_rate("mlp_100k", "raw"), "rows/s"
        ),
        _common.bench_line(
            "batch_minilm_10k",
            best_rate("minilm_10k", "ours"),
            best_rate("minilm_10k", "raw"),
            "rows/s",
        ),
        _common.bench_line(
            "batch_rss_10k", peak_rss("mlp_10k", "ours"), peak_rss("mlp_10k", "raw"), "MB"
        ),
        _common.bench_line(
            "batch_rss_100k", peak_rss("mlp_100k", "ours"), peak_rss("mlp_100k", "raw"), "MB"
        ),
    ]
    for line in lines:
        print(line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ours":
        print(json.dumps(child_ours(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "raw":
        print(json.dumps(child_raw(sys.argv[2], sys.argv[3])))
    else:
        main()

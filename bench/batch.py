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


def child_ours(key: str, warmup_key: str) -> dict[str, Any]:
    import contextlib

    from maaskit.batch.service import BatchService
    from maaskit.settings import Settings

    service = BatchService.from_settings(Settings.from_env())
    with contextlib.redirect_stdout(io.StringIO()):  # a warm sandbox: model, client, code
        service.process(warmup_key)
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
    loaded = np.load(inputs_path)
    arrays = (
        {name: np.ascontiguousarray(loaded[name]) for name in loaded.dtype.names}
        if loaded.dtype.names
        else {"input": loaded}
    )
    session = _session(model_path)
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


def _session(model_path: str) -> Any:
    """An onnxruntime session with the options the runtime uses (threads, optimization)."""
    import onnxruntime as ort

    from maaskit.runtime import default_threads

    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )


def child_core(inputs_path: str, model_path: str) -> dict[str, Any]:
    """Our streaming loop alone: the file's bytes in memory, 8 MiB chunks, outputs discarded."""
    from maaskit.batch.job import JobConfig, run_job
    from maaskit.signature import signature_of

    class Model:
        def __init__(self) -> None:
            self.session = _session(model_path)
            self.signature = signature_of(self.session)
            self.names = [spec.name for spec in self.signature.outputs]

        def run(self, inputs: Any) -> dict[str, np.ndarray]:
            return dict(zip(self.names, self.session.run(self.names, dict(inputs)), strict=True))

    class Discard:
        def write(self, data: bytes) -> None:
            pass

        def finish(self, preamble: bytes = b"") -> str:
            return ""

        def abort(self) -> None:
            pass

    model = Model()
    body = Path(inputs_path).read_bytes()
    chunks = [body[i : i + 8 * 1024 * 1024] for i in range(0, len(body), 8 * 1024 * 1024)]
    config = JobConfig(batch_size=BATCH_SIZE)
    run_job(model, "npy", chunks[:1], Discard(), config)  # warm, like the others
    started = time.perf_counter()
    result = run_job(model, "npy", chunks, Discard(), config)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": result.accounting.rows_out, "rss_mb": _rss_mb()}


def child_script(key: str, model_path: str) -> dict[str, Any]:
    """What a person would write by hand: GET the file, load it, run it, save, PUT."""
    import boto3
    import onnxruntime as ort

    client = boto3.client("s3")
    client.head_bucket(Bucket=BUCKET)  # a warm client, like ours
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    rows = np.load(io.BytesIO(client.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    outputs = [
        session.run(None, {"input": rows[i : i + BATCH_SIZE]})[0]
        for i in range(0, len(rows), BATCH_SIZE)
    ]
    client.put_object(
        Bucket=BUCKET, Key=key.replace("/in/", "/script-out/"), Body=_npy(np.concatenate(outputs))
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(rows), "rss_mb": _rss_mb()}


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


Results = dict[str, dict[str, list[dict[str, Any]]]]


class Bench:
    """The moto server, the published models, and the measurements made against them."""

    def __init__(self, endpoint: str, scratch: Path) -> None:
        import boto3

        from maaskit.registry import Registry
        from maaskit.store import ObjectStore

        self.scratch = scratch
        self.store = ObjectStore(BUCKET, client=boto3.client("s3", endpoint_url=endpoint))
        self.store.client.create_bucket(Bucket=BUCKET)
        mlp = models.mlp(64, 64, 10)
        Registry(self.store).publish("mlp", mlp)
        Registry(self.store).publish("minilm", minilm.model_path().read_bytes())
        self.model_files = {"mlp": scratch / "mlp.onnx", "minilm": minilm.model_path()}
        self.model_files["mlp"].write_bytes(mlp)
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "MAASKIT_BUCKET": BUCKET,
            "MAASKIT_BATCH_SIZE": str(BATCH_SIZE),
        }
        self.results: Results = {}

    def put(self, key: str, body: bytes, rows: bytes) -> str:
        """Put the file and a 16-row warm-up beside it; return the warm-up's key."""
        self.store.put(key, body)
        stem, dot, suffix = key.rpartition(".")
        warmup = f"{stem}-warmup{dot}{suffix}"
        self.store.put(warmup, rows)
        for done in (key, warmup):  # a rerun would skip them: already processed
            self.store.delete(done.replace("/in/", "/out/", 1) + ".report.json")
        return warmup

    def ours(self, case: str, key: str, warmup: str) -> dict[str, Any]:
        env = {**self.env, "MAASKIT_CACHE_DIR": str(self.scratch / f"cache-{case}")}
        result = _run_child(["ours", key, warmup], env)
        self.results.setdefault(case, {"ours": [], "raw": []})["ours"].append(result)
        return result

    def raw(self, case: str, *args: str) -> dict[str, Any]:
        result = _run_child(list(args), self.env)
        self.results.setdefault(case, {"ours": [], "raw": []})["raw"].append(result)
        return result

    def npy_case(self, case: str, model: str, rows: np.ndarray, repeats: int) -> None:
        inputs = self.scratch / f"{case}.npy"
        inputs.write_bytes(_npy(rows))
        key = f"batch/in/{model}/{case}.npy"
        for run in range(repeats):  # alternating, so drift on a shared machine hits both
            warmup = self.put(key, inputs.read_bytes(), _npy(rows[:16]))
            ours = self.ours(case, key, warmup)
            raw = self.raw(case, "raw", str(inputs), str(self.model_files[model]))
            print(
                f"{case} run {run}: ours {ours['seconds']:.3f} s, raw {raw['seconds']:.3f} s",
                flush=True,
            )

    def best_rate(self, case: str, side: str) -> float:
        return max(float(r["rows"]) / float(r["seconds"]) for r in self.results[case][side])

    def rss(self, case: str, side: str) -> float:
        return statistics.median(float(r["rss_mb"]) for r in self.results[case][side])


def _measure(bench: Bench) -> None:
    rng = np.random.default_rng(0)
    mlp_100k = rng.normal(size=(100_000, 64)).astype(np.float32)
    bench.npy_case("mlp_10k", "mlp", mlp_100k[:10_000].copy(), REPEATS)
    bench.npy_case("mlp_100k", "mlp", mlp_100k, REPEATS)
    bench.npy_case("minilm_10k", "minilm", _minilm_rows(10_000), 1)
    for _ in range(REPEATS):
        bench.raw(
            "mlp_100k_script", "script", "batch/in/mlp/mlp_100k.npy", str(bench.model_files["mlp"])
        )
        inputs = str(bench.scratch / "mlp_100k.npy")
        bench.raw("mlp_100k_core", "core", inputs, str(bench.model_files["mlp"]))
    # Memory at ten times the rows: ours should stay where it was, raw grows with the rows.
    bench.npy_case("mlp_1m", "mlp", rng.normal(size=(1_000_000, 64)).astype(np.float32), 1)
    for fmt, body in _text_versions(mlp_100k).items():
        key = f"batch/in/mlp/mlp_100k_{fmt}.{fmt}"
        head = b"\n".join(body.splitlines()[:17]) + b"\n"
        bench.ours(f"mlp_100k_{fmt}", key, bench.put(key, body, head))


def _report(bench: Bench) -> list[str]:
    for case in ("mlp_100k", "minilm_10k"):
        best = min(bench.results[case]["ours"], key=lambda r: float(r["seconds"]))
        print(f"{case} ours, where the time went (ms): {best['timings_ms']}")
        print(f"{case} ours, counters: {best['counters']}")
    ours, script = bench.best_rate("mlp_100k", "ours"), bench.best_rate("mlp_100k_script", "raw")
    print(
        "mlp_100k against a hand-written S3 script (GET, np.load, run, np.save, PUT; no report, "
        f"no streaming): ours {ours:,.0f} rows/s, script {script:,.0f} rows/s "
        f"({ours / script:.3f}x); script peak RSS {bench.rss('mlp_100k_script', 'raw'):.0f} MB"
    )
    core = bench.best_rate("mlp_100k_core", "raw")
    print(
        f"mlp_100k, our streaming loop alone (bytes in memory, no S3): {core:,.0f} rows/s, "
        f"{core / bench.best_rate('mlp_100k', 'raw'):.3f}x raw: the rest of the gap is moving "
        "25.6 MB in and 4.8 MB out through S3"
    )
    print(
        f"mlp_1m (256 MB in): ours {bench.best_rate('mlp_1m', 'ours'):,.0f} rows/s, peak RSS "
        f"ours {bench.rss('mlp_1m', 'ours'):.0f} MB, raw {bench.rss('mlp_1m', 'raw'):.0f} MB"
    )
    raw_100k = bench.best_rate("mlp_100k", "raw")
    for case in ("mlp_100k_csv", "mlp_100k_jsonl"):
        text_rate = bench.best_rate(case, "ours")
        timings = bench.results[case]["ours"][0]["timings_ms"]
        print(
            f"{case}: {text_rate:,.0f} rows/s ({text_rate / raw_100k:.3f}x raw), time (ms): {timings}"
        )
    rate = bench.best_rate
    return [
        _common.bench_line(
            "batch_mlp_10k", rate("mlp_10k", "ours"), rate("mlp_10k", "raw"), "rows/s"
        ),
        _common.bench_line("batch_mlp_100k", rate("mlp_100k", "ours"), raw_100k, "rows/s"),
        _common.bench_line(
            "batch_minilm_10k", rate("minilm_10k", "ours"), rate("minilm_10k", "raw"), "rows/s"
        ),
        _common.bench_line(
            "batch_rss_10k", bench.rss("mlp_10k", "ours"), bench.rss("mlp_10k", "raw"), "MB"
        ),
        _common.bench_line(
            "batch_rss_100k", bench.rss("mlp_100k", "ours"), bench.rss("mlp_100k", "raw"), "MB"
        ),
    ]


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    with _common.moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        bench = Bench(endpoint, Path(scratch))
        _measure(bench)
    for line in _report(bench):
        print(line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ours":
        print(json.dumps(child_ours(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "core":
        print(json.dumps(child_core(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "script":
        print(json.dumps(child_script(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "raw":
        print(json.dumps(child_raw(sys.argv[2], sys.argv[3])))
    else:
        main()

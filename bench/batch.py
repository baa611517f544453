"""Batch predictions: the whole S3 path against what a person would otherwise run.

Ours: an object under ``batch/in/`` in S3 (moto, served from another process) to its
predictions object and report, through ``BatchService.process`` as the batch function
calls it for an S3 event: streaming read, parse, vectorized ``session.run``, encode,
multipart upload, report.

Baselines, each measured in the same run and under the same conditions as ours:

* ``.npy``: a hand-written script (GET the object, ``np.load``, ``session.run`` in batches,
  ``np.save``, PUT), the thing our batch path has to beat to be worth deploying;
* JSON Lines and CSV: the moto-bound ceiling, a plain GET of the input and a PUT of an
  output of the same size, with no parsing and no model: no batch path can be faster;
* raw onnxruntime on the same rows already in memory (``batch_mlp_*``, ``batch_minilm_10k``).

Fairness: every side runs in this one process, with the same warm-up (one full run each,
untimed), then the sides are timed in turn, the order reversed every round, so drift on a
shared machine hits them alike; each figure is the median over the rounds, printed with its
spread. Ours against the script (``batch_npy_100k_vs_script``) alternates as a pair of its
own, in many ABBA blocks, and also prints the ratio within each block, where both sides ran
back to back under the same load. Memory (``batch_rss_*``) is the other process model: ours
and raw each in a fresh process of its own, peak RSS read at the end (ours should not grow
with the rows).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import _common
import numpy as np

from tests.support import minilm, models

BUCKET = "maaskit-bench"
BATCH_SIZE = 1024
ROUNDS = 5  # timed rounds per figure, after one untimed warm-up run of every side
# ours against the hand-written script on 100k rows: a run takes a tenth of a second, and the
# script's default session (threads that spin while they wait) swings by half with the load
# other processes put on the machine, so this pair alternates on its own, in many blocks
SCRIPT_BLOCKS = 12  # ABBA blocks (ours, script, script, ours): 24 timed runs of each side
TOKENS = 16
# Which parts to run (comma-separated): npy, text, rss; all by default.
PARTS = set(os.environ.get("BENCH_BATCH_PARTS", "npy,text,rss").split(","))

Side = Callable[[], tuple[int, float]]  # one timed run: (rows, seconds)


# ---------------------------------------------------------------- memory (fresh processes)


def _rss_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries it across fork and exec, so
    a child started from a big parent reports the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_ours(key: str, warmup_key: str) -> dict[str, Any]:
    from maaskit.batch.service import BatchService
    from maaskit.settings import Settings

    service = BatchService.from_settings(Settings.from_env())
    with contextlib.redirect_stdout(io.StringIO()):  # a warm sandbox: model, client, code
        service.process(warmup_key)
        outcome = service.process(key)
    if outcome.status != "completed":
        raise RuntimeError(f"{key}: {outcome}")
    return {"rows": outcome.rows_out, "rss_mb": _rss_mb()}


def child_raw(inputs_path: str, model_path: str) -> dict[str, Any]:
    arrays = _arrays(np.load(inputs_path))
    session = _session(model_path)
    rows = len(next(iter(arrays.values())))
    outputs = [
        session.run(None, {k: v[start : start + BATCH_SIZE] for k, v in arrays.items()})
        for start in range(0, rows, BATCH_SIZE)
    ]
    return {"rows": sum(len(out[0]) for out in outputs), "rss_mb": _rss_mb()}


def _run_child(args: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------- helpers


def _arrays(loaded: np.ndarray) -> dict[str, np.ndarray]:
    if loaded.dtype.names:
        return {name: np.ascontiguousarray(loaded[name]) for name in loaded.dtype.names}
    return {"input": loaded}


def _session(model_path: str | Path) -> Any:
    """An onnxruntime session with the options the runtime uses (threads, optimization)."""
    import onnxruntime as ort

    from maaskit.serving.runtime import default_threads

    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


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
    rounded = np.round(x.astype(np.float64), 5).tolist()  # "0.12346", as files hold them
    csv = header + "\n" + "\n".join(",".join(map(repr, row)) for row in rounded) + "\n"
    jsonl = "\n".join(json.dumps(row) for row in rounded) + "\n"
    wrapped = "\n".join(json.dumps({"input": row}) for row in rounded) + "\n"
    return {"csv": csv.encode(), "jsonl": jsonl.encode(), "input.jsonl": wrapped.encode()}


def alternate(
    sides: Mapping[str, Side], rounds: int, warmups: Mapping[str, Side] | None = None
) -> dict[str, list[float]]:
    """Rows per second of each side: one untimed warm-up run each (the full run, unless
    ``warmups`` gives a smaller one for every side), then ``rounds`` timed runs in turn, the
    order reversed every round (ABBA), so drift hits every side alike."""
    for side in (warmups or sides).values():
        side()
    rates: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for _ in range(rounds):
        for name in order:
            rows, seconds = sides[name]()
            rates[name].append(rows / seconds)
        order.reverse()
    return rates


def block_ratios(ours: list[float], baseline: list[float]) -> list[float]:
    """Ours over the baseline in each ABBA block (rounds ``2k`` and ``2k + 1`` of
    :func:`alternate`): each side's rows per second over the block's two runs (the harmonic
    mean of its two rates), so each ratio compares runs made back to back, under one load."""
    hmean = statistics.harmonic_mean
    return [hmean(ours[i : i + 2]) / hmean(baseline[i : i + 2]) for i in range(0, len(ours) - 1, 2)]


def spread(samples: list[float], number: str = ",.0f") -> str:
    median = statistics.median(samples)
    low, high = min(samples), max(samples)
    return (
        f"median {median:{number}} (min {low:{number}}, max {high:{number}}; "
        f"-{(median - low) / median:.0%}/+{(high - median) / median:.0%})"
    )


def _timed(run: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    rows = run()
    return rows, time.perf_counter() - started


# ---------------------------------------------------------------- the sides


class Bench:
    """The moto server, the published models, and the sides measured against them."""

    def __init__(self, endpoint: str, scratch: Path) -> None:
        import boto3

        from maaskit.batch.service import BatchService
        from maaskit.registry.catalog import Registry
        from maaskit.registry.store import ObjectStore
        from maaskit.settings import Settings

        self.scratch = scratch
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "MAASKIT_BUCKET": BUCKET,
            "MAASKIT_BATCH_SIZE": str(BATCH_SIZE),
            "MAASKIT_CACHE_DIR": str(scratch / "cache"),
        }
        os.environ.update(self.env)
        self.client = boto3.client("s3")
        self.store = ObjectStore(BUCKET, client=self.client)
        self.client.create_bucket(Bucket=BUCKET)
        mlp = models.mlp(64, 64, 10)
        Registry(self.store).publish("mlp", mlp)
        Registry(self.store).publish("minilm", minilm.model_path().read_bytes())
        self.model_files = {"mlp": scratch / "mlp.onnx", "minilm": minilm.model_path()}
        self.model_files["mlp"].write_bytes(mlp)
        self.service = BatchService.from_settings(Settings.from_env(), store=self.store)
        self.sessions = {name: _session(path) for name, path in self.model_files.items()}
        self.last_report: dict[str, Any] = {}

    def put(self, key: str, body: bytes) -> None:
        """Upload an input as ``submit_batch`` does (the SDK and CLI path), so its stored
        checksum is the one users' files carry: CRC32, cheap to verify on every GET. An
        object stored with SHA-256 makes each read hash the whole file, a cost that falls
        on a serial script in full and on our overlapped read mostly in the background."""
        from maaskit.sdk.connection import content_type

        self.store.upload_file(key, io.BytesIO(body), content_type=content_type(Path(key)))

    def ours(self, key: str) -> Side:
        """The batch function's path for one S3 event, as a warm sandbox runs it."""
        report_key = key.replace("/in/", "/out/", 1) + ".report.json"

        def run() -> tuple[int, float]:
            self.store.delete(report_key)  # or the rerun would be skipped as already done
            with contextlib.redirect_stdout(io.StringIO()):
                rows, seconds = _timed(lambda: self.service.process(key).rows_out)
            self.last_report[key] = self.store.get_json(report_key)
            if self.last_report[key]["status"] != "completed":
                raise RuntimeError(f"{key}: {self.last_report[key]}")
            return rows, seconds

        return run

    def script(self, key: str) -> Side:
        """What a person would write by hand: GET the file, load it, run it, save, PUT."""
        import onnxruntime as ort

        # as a person writes it: the default session, which also uses every core here
        session = ort.InferenceSession(self.model_files["mlp"], providers=["CPUExecutionProvider"])
        out_key = key.replace("/in/", "/script-out/", 1)

        def run() -> int:
            body = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            rows = np.load(io.BytesIO(body))
            outputs = [
                session.run(None, {"input": rows[i : i + BATCH_SIZE]})[0]
                for i in range(0, len(rows), BATCH_SIZE)
            ]
            self.client.put_object(Bucket=BUCKET, Key=out_key, Body=_npy(np.concatenate(outputs)))
            return len(rows)

        return lambda: _timed(run)

    def ceiling(self, key: str, rows: int) -> Side:
        """S3 alone: GET the input, PUT bytes the size of our output. Nothing can be faster."""
        out_key = key.replace("/in/", "/ceiling-out/", 1)
        our_output = key.replace("/in/", "/out/", 1)
        payload: list[bytes] = []

        def run() -> int:
            self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            self.client.put_object(Bucket=BUCKET, Key=out_key, Body=payload[0])
            return rows

        def side() -> tuple[int, float]:
            if not payload:  # the size of what ours wrote (ours has run its warm-up first)
                size = self.client.head_object(Bucket=BUCKET, Key=our_output)["ContentLength"]
                payload.append(os.urandom(size))
            return _timed(run)

        return side

    def raw(self, model: str, path: Path) -> Side:
        """``session.run`` over the same rows already in memory, batches of the same size."""
        arrays = _arrays(np.load(path))
        session = self.sessions[model]
        count = len(next(iter(arrays.values())))

        def run() -> int:
            for start in range(0, count, BATCH_SIZE):
                session.run(None, {k: v[start : start + BATCH_SIZE] for k, v in arrays.items()})
            return count

        return lambda: _timed(run)

    def core(self, path: Path) -> Side:
        """Our streaming loop alone: the file's bytes in memory, 8 MiB chunks, outputs discarded."""
        from maaskit.batch.job import JobConfig, run_job

        model = self.service.runtime.load("mlp", alias="latest")
        body = path.read_bytes()
        chunks = [body[i : i + 8 * 1024 * 1024] for i in range(0, len(body), 8 * 1024 * 1024)]

        class Discard:
            def write(self, data: bytes) -> None:
                pass

            def finish(self, preamble: bytes = b"") -> str:
                return ""

            def abort(self) -> None:
                pass

        config = JobConfig(batch_size=BATCH_SIZE)
        return lambda: _timed(
            lambda: run_job(model, "npy", chunks, Discard(), config).accounting.rows_out
        )

    def rss(self, case: str, model: str, rows: np.ndarray) -> tuple[float, float]:
        """Peak RSS of ours and of raw on the same file, each in a fresh process."""
        path = self.scratch / f"{case}.npy"
        path.write_bytes(_npy(rows))
        key, warmup = f"batch/in/{model}/rss-{case}.npy", f"batch/in/{model}/rss-{case}-warm.npy"
        self.put(key, path.read_bytes())
        self.put(warmup, _npy(rows[:16]))
        ours = _run_child(["ours", key, warmup], self.env)
        raw = _run_child(["raw", str(path), str(self.model_files[model])], self.env)
        return float(ours["rss_mb"]), float(raw["rss_mb"])


# ---------------------------------------------------------------- the run


def _show(case: str, rates: Mapping[str, list[float]]) -> None:
    for side, samples in rates.items():
        print(f"{case} {side:8s} rows/s {spread(samples)}", flush=True)


def _versus_script(bench: Bench, case: str, key: str) -> str:
    """Ours and the hand-written script alone, back to back, in many ABBA blocks."""
    median = statistics.median
    pair = alternate({"ours": bench.ours(key), "script": bench.script(key)}, 2 * SCRIPT_BLOCKS)
    _show(f"{case} vs script:", pair)
    ratios = block_ratios(pair["ours"], pair["script"])
    print(
        f"{case} vs script: ours/script per ABBA block {spread(ratios, '.3f')}; "
        f"blocks at or above 1.2x: {sum(r >= 1.2 for r in ratios)}/{len(ratios)}"
    )
    return _common.bench_line(
        "batch_npy_100k_vs_script", median(pair["ours"]), median(pair["script"]), "rows/s"
    )


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    rng = np.random.default_rng(0)
    mlp_100k = rng.normal(size=(100_000, 64)).astype(np.float32)
    figures: list[str] = []
    median = statistics.median
    with _common.moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        bench = Bench(endpoint, Path(scratch))

        npy_cases = (
            ("mlp_10k", "mlp", mlp_100k[:10_000].copy()),
            ("mlp_100k", "mlp", mlp_100k),
            ("minilm_10k", "minilm", _minilm_rows(10_000)),
        )
        for case, model, rows in npy_cases if "npy" in PARTS else ():
            path = bench.scratch / f"{case}.npy"
            path.write_bytes(_npy(rows))
            key = f"batch/in/{model}/{case}.npy"
            bench.put(key, path.read_bytes())
            sides = {"ours": bench.ours(key), "raw": bench.raw(model, path)}
            if case == "mlp_10k":
                sides["script"] = bench.script(key)
            if case == "mlp_100k":
                sides["core"] = bench.core(path)
            warmups = None
            if model == "minilm":  # minutes a run on a shared machine: warm both on 64 rows
                small = bench.scratch / f"{case}-warm.npy"
                small.write_bytes(_npy(rows[:64]))
                bench.put(f"batch/in/{model}/{case}-warm.npy", small.read_bytes())
                warmups = {
                    "ours": bench.ours(f"batch/in/{model}/{case}-warm.npy"),
                    "raw": bench.raw(model, small),
                }
            rates = alternate(sides, ROUNDS if model == "mlp" else 1, warmups)
            _show(case, rates)
            report = bench.last_report[key]
            print(f"{case} ours, where the time went (ms): {report['timings_ms']}")
            print(f"{case} ours, counters: {report['counters']}")
            ours = median(rates["ours"])
            figures.append(
                _common.bench_line(f"batch_{case}", ours, median(rates["raw"]), "rows/s")
            )
            if case == "mlp_100k":
                print(
                    f"mlp_100k, our streaming loop alone (bytes in memory, no S3) is "
                    f"{median(rates['core']) / median(rates['raw']):.3f}x raw"
                )
                figures.append(_versus_script(bench, case, key))

        for fmt, body in _text_versions(mlp_100k).items() if "text" in PARTS else ():
            case = f"mlp_100k_{fmt.replace('.', '_')}"
            key = f"batch/in/mlp/{case}.{fmt.rsplit('.', 1)[-1]}"
            bench.put(key, body)
            rates = alternate(
                {"ours": bench.ours(key), "ceiling": bench.ceiling(key, len(mlp_100k))}, ROUNDS
            )
            _show(case, rates)
            print(f"{case} ours, where the time went (ms): {bench.last_report[key]['timings_ms']}")
            if fmt in ("jsonl", "csv"):
                figures.append(
                    _common.bench_line(
                        f"batch_{fmt}_100k_vs_ceiling",
                        median(rates["ours"]),
                        median(rates["ceiling"]),
                        "rows/s",
                    )
                )

        # Memory, each side in a fresh process; at ten times the rows ours should stay put.
        if "rss" in PARTS:
            for case, rows in (("10k", mlp_100k[:10_000]), ("100k", mlp_100k)):
                ours_mb, raw_mb = bench.rss(case, "mlp", rows)
                figures.append(_common.bench_line(f"batch_rss_{case}", ours_mb, raw_mb, "MB"))
            ours_mb, raw_mb = bench.rss(
                "1m", "mlp", rng.normal(size=(1_000_000, 64)).astype(np.float32)
            )
            print(f"mlp_1m (256 MB in): peak RSS ours {ours_mb:.0f} MB, raw {raw_mb:.0f} MB")
    for line in figures:
        print(line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ours":
        print(json.dumps(child_ours(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "raw":
        print(json.dumps(child_raw(sys.argv[2], sys.argv[3])))
    else:
        main()

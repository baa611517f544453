"""Text serving: MiniLM-int8 as a text package against the raw tokenizer + onnxruntime path.

- ``text_p50`` / ``text_p99``: ``{"input": "<16-token sentence>"}`` through the API handler
  (event in, JSON out, model cached) against, in the same process, the same tokenizer's
  ``encode_batch`` + ``session.run`` + mean pooling + L2 norm. Goal: p50 ratio <= 1.10.
- ``text_batch_10k``: a 10,000-sentence JSON Lines file through the batch path (S3 object
  in, predictions object and report out, on in-process moto) against the raw path over the
  same sentences in memory, batched the same way. Rows per second; goal: ratio >= 0.8.
- ``text_cold_start``: a fresh process to its first text reply (imports, fetch from S3,
  verify, session, tokenizer, run) against a fresh process doing the raw path from local
  files. moto serves S3 from another process so that its import is not counted as ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import _common
import numpy as np

from tests.support import minilm

WARM_CALLS = 400
BATCH_ROWS = 10_000
BATCH_SIZE = 256
BATCH_REPEATS = 3
COLD_RUNS = 5
BUCKET = "maaskit-bench"
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
"""16 tokens with [CLS] and [SEP] in MiniLM's tokenizer (checked below)."""

_SUBJECTS = ["A man", "The old woman", "Two children", "My neighbour", "The committee"]
_VERBS = ["is reading", "wrote about", "quietly discussed", "never liked", "carefully studied"]
_OBJECTS = ["the morning news", "a long letter from home", "the stock market", "fresh bread"]
_PLACES = ["in the park", "at the station", "before dinner", "on a rainy afternoon", ""]


def sentences(count: int) -> list[str]:
    rng = np.random.default_rng(0)
    parts = [_SUBJECTS, _VERBS, _OBJECTS, _PLACES]
    return [
        " ".join(p for p in (part[int(rng.integers(len(part)))] for part in parts) if p) + "."
        for _ in range(count)
    ]


def publish(endpoint: str | None) -> None:
    import boto3

    from maaskit.registry.catalog import Registry
    from maaskit.registry.store import ObjectStore

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    model, files = minilm.package()
    Registry(ObjectStore(BUCKET, client=client)).publish(
        "minilm", model, files=files, processing=minilm.PROCESSING
    )


class RawPath:
    """What a person writes by hand: tokenizer, session.run, mean pooling, L2 norm."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(minilm.tokenizer_path()))
        self.tokenizer.enable_truncation(max_length=256)
        self.tokenizer.enable_padding()
        self.session = ort.InferenceSession(str(minilm.model_path()))

    def __call__(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        inputs = {
            "input_ids": np.array([e.ids for e in encodings], np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], np.int64),
        }
        [hidden] = self.session.run(["last_hidden_state"], inputs)
        mask = inputs["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        result: np.ndarray = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return result


def warm(raw: RawPath) -> list[str]:
    from moto import mock_aws

    from tests.support.events import FakeContext, api_event

    tokens = len(raw.tokenizer.encode(SENTENCE).ids)
    with mock_aws(), tempfile.TemporaryDirectory() as cache:
        os.environ.update({"MAASKIT_BUCKET": BUCKET, "MAASKIT_CACHE_DIR": cache})
        publish(None)
        from functions.api import app

        event = api_event("POST", "/models/minilm/predict", {"input": SENTENCE})
        context = FakeContext()
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            reply = app.lambda_handler(event, context)
            assert reply["statusCode"] == 200, reply["body"]
            served = np.array(json.loads(reply["body"])["outputs"]["embedding"], np.float32)
            assert float((served * raw([SENTENCE])).sum()) > 0.9999

            def ours() -> None:
                app.lambda_handler(event, context)

            def baseline() -> None:
                raw([SENTENCE])

            for _ in range(20):  # warm both paths
                ours()
                baseline()
            ours_ms, raw_ms = _common.interleaved(ours, baseline, WARM_CALLS)
    print(f"one sentence of {tokens} tokens, {len(ours_ms)} calls each")
    print(f"  p50 ours {statistics.median(ours_ms):.3f} ms, raw {statistics.median(raw_ms):.3f} ms")
    return [
        _common.bench_line(
            "text_p50", _common.percentile(ours_ms, 50), _common.percentile(raw_ms, 50), "ms"
        ),
        _common.bench_line(
            "text_p99", _common.percentile(ours_ms, 99), _common.percentile(raw_ms, 99), "ms"
        ),
    ]


def batch(raw: RawPath) -> list[str]:
    import boto3
    from moto import mock_aws

    from maaskit.batch.job import JobConfig
    from maaskit.batch.service import BatchService
    from maaskit.registry.catalog import Registry
    from maaskit.registry.store import ObjectStore
    from maaskit.serving.runtime import Runtime

    texts = sentences(BATCH_ROWS)
    body = "".join(json.dumps(t) + "\n" for t in texts).encode()
    ours_rates: list[float] = []
    raw_rates: list[float] = []
    with mock_aws(), tempfile.TemporaryDirectory() as cache:
        publish(None)
        store = ObjectStore(BUCKET, client=boto3.client("s3"))
        runtime = Runtime(Registry(store), cache_dir=Path(cache))
        service = BatchService(store, runtime, config=JobConfig(batch_size=BATCH_SIZE))
        runtime.load("minilm")  # both sides start with a loaded model
        for repeat in range(BATCH_REPEATS):
            key = f"batch/in/minilm/sentences-{repeat}.jsonl"
            store.put(key, body)
            started = time.perf_counter()
            outcome = service.process(key)
            ours_rates.append(BATCH_ROWS / (time.perf_counter() - started))
            assert outcome.rows_out == BATCH_ROWS, outcome
            started = time.perf_counter()
            for start in range(0, BATCH_ROWS, BATCH_SIZE):
                raw(texts[start : start + BATCH_SIZE])
            raw_rates.append(BATCH_ROWS / (time.perf_counter() - started))
    ours, baseline = statistics.median(ours_rates), statistics.median(raw_rates)
    print(
        f"{BATCH_ROWS} sentences, windows of {BATCH_SIZE}: ours "
        f"{', '.join(f'{r:.0f}' for r in ours_rates)} rows/s, raw "
        f"{', '.join(f'{r:.0f}' for r in raw_rates)} rows/s"
    )
    return [_common.bench_line("text_batch_10k", ours, baseline, "rows/s")]


_OURS_COLD = """
import sys
sys.path[:0] = [{root!r}, {src!r}]
from functions.api import app
from tests.support.events import FakeContext, api_event
event = api_event("POST", "/models/minilm/predict", {{"input": {sentence!r}}})
reply = app.lambda_handler(event, FakeContext())
assert reply["statusCode"] == 200, reply["body"][:300]
"""

_RAW_COLD = """
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file({tokenizer!r})
tokenizer.enable_truncation(max_length=256)
tokenizer.enable_padding()
session = ort.InferenceSession({model!r})
[e] = tokenizer.encode_batch([{sentence!r}])
inputs = {{
    "input_ids": np.array([e.ids], np.int64),
    "attention_mask": np.array([e.attention_mask], np.int64),
    "token_type_ids": np.array([e.type_ids], np.int64),
}}
[hidden] = session.run(["last_hidden_state"], inputs)
mask = inputs["attention_mask"][:, :, None].astype(np.float32)
pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
"""


def cold() -> list[str]:
    with _common.moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        publish(endpoint)
        ours_code = _OURS_COLD.format(
            root=str(_common.ROOT), src=str(_common.ROOT / "src"), sentence=SENTENCE
        )
        raw_code = _RAW_COLD.format(
            tokenizer=str(minilm.tokenizer_path()),
            model=str(minilm.model_path()),
            sentence=SENTENCE,
        )
        ours_s: list[float] = []
        raw_s: list[float] = []
        for run in range(COLD_RUNS):
            env = _common.sandbox_env(endpoint, BUCKET, Path(scratch) / f"cache-{run}")
            ours_s.append(_common.timed_child(ours_code, env)[0])
            raw_s.append(_common.timed_child(raw_code, env)[0])
    print(
        f"cold start to the first text reply, median of {COLD_RUNS}: ours "
        f"{', '.join(f'{s:.2f}' for s in ours_s)} s, raw {', '.join(f'{s:.2f}' for s in raw_s)} s"
    )
    return [
        _common.bench_line(
            "text_cold_start", statistics.median(ours_s), statistics.median(raw_s), "s"
        )
    ]


def main() -> None:
    os.environ.update(_common.FAKE_AWS)
    lines = cold()
    raw = RawPath()
    lines += warm(raw) + batch(raw)
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

"""S3 failing in the ways it does (throttling, 500s, dropped connections, objects replaced
mid-read), injected in front of moto: reads retry or fail cleanly, nothing half-downloaded
is cached, and a batch report stays exact."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.retries.standard import ExponentialBackoff

from maaskit.batch.service import SUPERSEDED, BatchService
from maaskit.errors import ObjectChanged, StoreUnavailable
from maaskit.registry.catalog import Registry, artifact_key
from maaskit.registry.store import RESUME_ATTEMPTS, S3_CONFIG, ObjectStore
from maaskit.serving.runtime import Runtime
from tests.support import models
from tests.support.faults import DROPPED, INTERNAL, THROTTLED, Faults

MAX_ATTEMPTS = 4


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries keep their count and order; only the sleeping between them is skipped."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def faulty(store: ObjectStore) -> tuple[ObjectStore, Faults]:
    """A store with the client maaskit builds itself (its retry configuration), and its faults."""
    own = ObjectStore(store.bucket)
    return own, Faults(own.client)


def test_the_client_is_configured_deliberately() -> None:
    client = ObjectStore("any-bucket").client
    config: Any = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert (config.connect_timeout, config.read_timeout) == (3, 20)
    declared: Any = S3_CONFIG
    assert declared.retries == config.retries


@pytest.mark.parametrize("fault", [THROTTLED, INTERNAL, DROPPED], ids=["503", "500", "dropped"])
def test_transient_failures_are_retried_until_they_pass(
    faulty: tuple[ObjectStore, Faults], fault: tuple[int, str]
) -> None:
    # Given a JSON object, and S3 failing the first two attempts to read it
    store, faults = faulty
    store.put_json("models/m/aliases/latest.json", {"version": 3})
    faults.fail("GetObject", fault, fault)
    # When it is read, Then the third attempt returns it
    assert store.get_json("models/m/aliases/latest.json") == {"version": 3}
    assert faults.attempts["GetObject"] == 3


@pytest.mark.parametrize("fault", [THROTTLED, INTERNAL], ids=["503", "500"])
def test_s3_failing_past_the_retries_is_a_503_with_a_reason(
    faulty: tuple[ObjectStore, Faults], fault: tuple[int, str]
) -> None:
    store, faults = faulty
    store.put_json("k.json", {})
    faults.fail("GetObject", *[fault] * 10)
    with pytest.raises(StoreUnavailable, match="after retries") as failed:
        store.get_json("k.json")
    assert failed.value.http_status == 503
    assert faults.attempts["GetObject"] == MAX_ATTEMPTS
    faults.fail("HeadObject", *[fault] * 10)
    with pytest.raises(StoreUnavailable):
        store.head("k.json")


def test_a_download_dropped_midway_resumes_from_where_it_stopped(
    faulty: tuple[ObjectStore, Faults],
) -> None:
    # Given a 1 MB object whose first two downloads drop part-way
    store, faults = faulty
    data = os.urandom(1024 * 1024)
    etag = store.put("blob", data)
    faults.drop_body("blob", 300_000, 200_000)
    # When it is read, Then every byte arrives once, in order, from the same object
    assert store.get_bytes("blob") == data
    gets = [headers for op, headers in faults.requests if op == "GetObject"]
    assert gets == [
        {},
        {"If-Match": etag, "Range": "bytes=300000-"},
        {"If-Match": etag, "Range": "bytes=500000-"},
    ]


def test_a_model_download_that_keeps_dropping_is_never_cached(
    faulty: tuple[ObjectStore, Faults], tmp_path: Path
) -> None:
    # Given a published model, and a runtime whose every download of it drops part-way
    store, faults = faulty
    Registry(store).publish("iris", models.linear()[0])
    cache = tmp_path / "cache"
    runtime = Runtime(Registry(store), cache_dir=cache)
    faults.drop_body(artifact_key("iris", 1), *[10] * (RESUME_ATTEMPTS + 1))
    # When it is loaded, Then the load fails as S3 being unavailable
    with pytest.raises(StoreUnavailable, match="kept dropping"):
        runtime.load("iris")
    # And nothing of it is kept, in memory or in /tmp, partial or whole
    assert not runtime.is_loaded("iris", 1)
    assert not cache.exists() or list(cache.iterdir()) == []
    # And once S3 recovers the same runtime loads it whole
    faults.clear()
    assert runtime.load("iris").predict({"input": [[1, 2, 3, 4]]})["output"].shape == (1, 3)


def test_a_model_replaced_during_its_download_is_never_spliced_or_cached(
    faulty: tuple[ObjectStore, Faults], store: ObjectStore, tmp_path: Path
) -> None:
    own, faults = faulty
    Registry(own).publish("iris", models.linear()[0])
    runtime = Runtime(Registry(own), cache_dir=tmp_path / "cache")

    def replace() -> None:
        store.client.put_object(
            Bucket=store.bucket, Key=artifact_key("iris", 1), Body=models.linear(seed=9)[0]
        )

    faults.drop_body(artifact_key("iris", 1), 100, on_drop=replace)
    with pytest.raises(ObjectChanged, match="replaced while it was being read"):
        runtime.load("iris")
    assert not runtime.is_loaded("iris", 1)


def jsonl(rows: int) -> bytes:
    return b"".join(orjson.dumps([float(i), 1.0, 2.0, 3.0]) + b"\n" for i in range(rows))


def test_a_batch_report_stays_exact_through_throttling_and_dropped_reads(
    faulty: tuple[ObjectStore, Faults], tmp_path: Path
) -> None:
    # Given a model and a 200-line file read in small chunks, with S3 throttling and
    # dropping the connection while the file streams
    store, faults = faulty
    Registry(store).publish("iris", models.linear()[0])
    store.put("batch/in/iris/rows.jsonl", jsonl(200))
    service = BatchService(
        store, Runtime(Registry(store), cache_dir=tmp_path / "cache"), chunk_bytes=1024
    )
    faults.fail("GetObject", THROTTLED, INTERNAL)
    faults.fail("PutObject", THROTTLED)
    faults.fail("HeadObject", DROPPED)
    faults.drop_body("batch/in/iris/rows.jsonl", 50, 3_000)  # the first read, then its resume
    # When the file is processed
    outcome = service.process("batch/in/iris/rows.jsonl")
    # Then every row is accounted for exactly once, and the output holds each line once
    assert (outcome.status, outcome.rows_in, outcome.rows_out, outcome.rows_failed) == (
        "completed",
        200,
        200,
        0,
    )
    lines = [orjson.loads(x)["line"] for x in store.get_bytes("batch/out/iris/rows.jsonl").split()]
    assert lines == list(range(1, 201))


def test_a_batch_source_replaced_while_it_streams_is_superseded_without_output(
    faulty: tuple[ObjectStore, Faults], store: ObjectStore, tmp_path: Path
) -> None:
    own, faults = faulty
    Registry(own).publish("iris", models.linear()[0])
    own.put("batch/in/iris/rows.jsonl", jsonl(100))
    service = BatchService(own, Runtime(Registry(own), cache_dir=tmp_path / "c"), chunk_bytes=512)

    def replace() -> None:
        store.client.put_object(Bucket=store.bucket, Key="batch/in/iris/rows.jsonl", Body=jsonl(3))

    faults.drop_body("batch/in/iris/rows.jsonl", 1_000, on_drop=replace)
    outcome = service.process("batch/in/iris/rows.jsonl")
    assert outcome.status == SUPERSEDED
    assert own.head("batch/out/iris/rows.jsonl") is None


def test_a_warm_model_keeps_serving_while_s3_fails_past_its_retries(
    faulty: tuple[ObjectStore, Faults], tmp_path: Path
) -> None:
    # Given a model loaded warm, by alias and by number
    store, faults = faulty
    Registry(store).publish("iris", models.linear()[0])
    clock = [0.0]
    runtime = Runtime(
        Registry(store), cache_dir=tmp_path / "cache", alias_ttl_seconds=10, clock=lambda: clock[0]
    )
    runtime.load("iris")
    # When the TTL runs out while every S3 call is throttled
    faults.fail("GetObject", *[THROTTLED] * 20)
    faults.fail("HeadObject", *[THROTTLED] * 20)
    clock[0] = 11.0
    # Then the alias and the version verified before keep serving, checked once per TTL
    assert runtime.load("iris").version == 1
    assert runtime.load("iris", version=1).version == 1
    tried = dict(faults.attempts)
    assert runtime.load("iris").version == 1
    assert dict(faults.attempts) == tried
    # And a model never loaded here is refused as S3 being unavailable
    with pytest.raises(StoreUnavailable):
        runtime.load("iris", alias="production")

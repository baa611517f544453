from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import onnx
import pytest

from maaskit.errors import IntegrityError, InvalidRequest, NotFound
from maaskit.registry.catalog import Registry, artifact_key, manifest_key
from maaskit.registry.store import ObjectInfo, ObjectStore
from maaskit.serving.runtime import ModelRunError, NonFiniteOutput, Runtime
from tests.support import models


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore(ObjectStore):
    """Counts artifact downloads, to prove warm calls never touch S3 for them."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner.bucket, client=inner.client)
        self.downloads: list[str] = []

    def open(self, key: str) -> tuple[IO[bytes], ObjectInfo]:
        if key.endswith("model.onnx"):
            self.downloads.append(key)
        return super().open(key)


def make_runtime(store: ObjectStore, tmp_path: Path, **kwargs: object) -> Runtime:
    return Runtime(Registry(store), cache_dir=tmp_path / "cache", **kwargs)  # type: ignore[arg-type]


def test_loaded_model_predicts_like_the_numpy_formula(registry: Registry, tmp_path: Path) -> None:
    data, weights, bias = models.linear(4, 3)
    registry.publish("iris", data)
    runtime = make_runtime(registry.store, tmp_path)
    x = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]]
    outputs = runtime.load("iris").predict({"input": x})
    np.testing.assert_allclose(
        outputs["output"], np.array(x, np.float32) @ weights + bias, rtol=1e-6
    )


def test_warm_loads_never_download_again(store: ObjectStore, tmp_path: Path) -> None:
    counting = CountingStore(store)
    Registry(counting).publish("iris", models.linear()[0])
    runtime = make_runtime(counting, tmp_path)
    for _ in range(5):
        runtime.load("iris", version=1)
        runtime.load("iris")
    assert counting.downloads == [artifact_key("iris", 1)]


def test_tmp_cache_is_keyed_by_sha256_and_survives_memory_eviction(
    store: ObjectStore, tmp_path: Path
) -> None:
    # Given two models and a memory cache that holds only one
    counting = CountingStore(store)
    registry = Registry(counting)
    first = registry.publish("first", models.linear(seed=1)[0])
    registry.publish("second", models.linear(seed=2)[0])
    runtime = make_runtime(counting, tmp_path, cache_bytes=first.size)
    # When both are loaded in turn, twice
    for name in ["first", "second", "first", "second"]:
        runtime.load(name)
    # Then each was downloaded once; later loads came from /tmp
    assert sorted(counting.downloads) == [artifact_key("first", 1), artifact_key("second", 1)]
    assert (tmp_path / "cache" / f"{first.sha256}.onnx").exists()


def test_disk_cache_evicts_least_recently_used_files_to_stay_in_budget(
    registry: Registry, tmp_path: Path
) -> None:
    # Given room on disk for two of three models and no room in memory
    published = [registry.publish(f"m{i}", models.linear(seed=i)[0]) for i in range(3)]
    size = max(m.size for m in published)
    runtime = make_runtime(registry.store, tmp_path, disk_cache_bytes=2 * size, cache_bytes=1)
    # When all three are loaded in turn
    for manifest in published:
        runtime.load(manifest.name)
    # Then the oldest file made way for the newest
    on_disk = {p.name for p in (tmp_path / "cache").glob("*.onnx")}
    assert on_disk == {f"{m.sha256}.onnx" for m in published[1:]}


def test_alias_is_re_resolved_after_its_ttl(registry: Registry, tmp_path: Path) -> None:
    data, _, _ = models.linear()
    registry.publish("iris", data)
    registry.publish("iris", models.linear(seed=5)[0])
    registry.set_alias("iris", "production", 1)
    clock = Clock()
    runtime = make_runtime(registry.store, tmp_path, alias_ttl_seconds=10.0, clock=clock)
    assert runtime.load("iris", alias="production").version == 1
    # When production is promoted to 2
    registry.set_alias("iris", "production", 2)
    clock.now = 5.0
    assert runtime.load("iris", alias="production").version == 1  # still within the TTL
    clock.now = 10.5
    assert runtime.load("iris", alias="production").version == 2  # promoted, no redeploy


@contextmanager
def s3_calls(store: ObjectStore) -> Iterator[list[str]]:
    """Every S3 API call made on ``store``'s client while the block runs, by operation."""
    calls: list[str] = []

    def record(event_name: str, **_: object) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    store.client.meta.events.register("before-call.s3.*", record)
    try:
        yield calls
    finally:
        store.client.meta.events.unregister("before-call.s3.*", record)


def test_a_deleted_manifest_stops_being_served_within_the_alias_ttl(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    # Given two published versions, both loaded warm (latest is 2)
    registry.publish("iris", models.linear(seed=1)[0])
    registry.publish("iris", models.linear(seed=2)[0])
    clock = Clock()
    runtime = make_runtime(store, tmp_path, alias_ttl_seconds=10.0, clock=clock)
    assert runtime.load("iris").version == 2
    assert runtime.load("iris", version=1).version == 1
    # When version 2's manifest is deleted (it is no longer published)
    store.delete(manifest_key("iris", 2))
    # Then inside the TTL warm requests still make no S3 call at all
    clock.now = 9.0
    with s3_calls(store) as calls:
        runtime.load("iris")
        runtime.load("iris", version=2)
        runtime.load("iris", version=1)
    assert calls == []
    # And once the TTL has passed, version 2 is refused by alias and by number, and unloaded
    clock.now = 10.5
    with pytest.raises(NotFound, match="has no version 2"):
        runtime.load("iris")
    with pytest.raises(NotFound, match="has no version 2"):
        runtime.load("iris", version=2)
    assert not runtime.is_loaded("iris", 2)
    # And version 1, whose manifest is there, still serves after one cheap check
    with s3_calls(store) as calls:
        assert runtime.load("iris", version=1).version == 1
        assert runtime.load("iris", version=1).version == 1
    assert calls == ["HeadObject"]


def test_a_corrupted_artifact_is_refused_never_cached_and_the_good_version_still_serves(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    # Given a good v1 in production and a v2 whose stored bytes were tampered with
    good = registry.publish("iris", models.linear(seed=1)[0], aliases=("production",))
    bad = registry.publish("iris", models.linear(seed=2)[0])
    store.client.put_object(
        Bucket=store.bucket, Key=artifact_key("iris", bad.version), Body=models.linear(seed=3)[0]
    )
    runtime = make_runtime(store, tmp_path)
    # Then loading v2 fails clearly, every time, and nothing is cached
    for _ in range(2):
        with pytest.raises(IntegrityError, match="failed its integrity check"):
            runtime.load("iris", version=bad.version)
    assert not runtime.is_loaded("iris", bad.version)
    assert not (tmp_path / "cache" / f"{bad.sha256}.onnx").exists()
    # And production still serves the good version
    assert runtime.load("iris", alias="production").version == good.version


def test_a_file_planted_in_the_disk_cache_is_never_served(
    store: ObjectStore, tmp_path: Path
) -> None:
    # Given a published model, and other bytes already in the cache under its sha256 (a
    # shared /tmp where someone wrote first, or a file damaged since it was cached)
    data, weights, bias = models.linear(seed=1)
    published = Registry(store).publish("iris", data)
    planted = tmp_path / "cache" / f"{published.sha256}.onnx"
    planted.parent.mkdir()
    planted.write_bytes(models.linear(seed=2)[0])
    counting = CountingStore(store)
    x = np.ones((1, 4), dtype=np.float32)

    # When the model is loaded
    outputs = make_runtime(counting, tmp_path).load("iris").predict({"input": x})

    # Then the published bytes are downloaded and served, and they replace the planted file
    assert counting.downloads == [artifact_key("iris", published.version)]
    np.testing.assert_allclose(outputs["output"], x @ weights + bias, rtol=1e-6)
    assert planted.read_bytes() == data


def test_the_disk_cache_folder_is_its_owners_only(registry: Registry, tmp_path: Path) -> None:
    registry.publish("iris", models.linear()[0])
    make_runtime(registry.store, tmp_path).load("iris")
    assert (tmp_path / "cache").stat().st_mode & 0o077 == 0


def test_an_alias_moved_to_a_tampered_version_keeps_serving_the_previous_one(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    # Given a sandbox serving latest = v1, with a hook for integrity failures
    registry.publish("iris", models.linear(seed=1)[0])
    clock, refused = Clock(), []
    runtime = make_runtime(
        store,
        tmp_path,
        alias_ttl_seconds=10.0,
        clock=clock,
        on_integrity_failure=lambda name, version: refused.append((name, version)),
    )
    assert runtime.load("iris").version == 1
    # When latest moves to a v2 whose stored bytes were then tampered with
    bad = registry.publish("iris", models.linear(seed=2)[0])
    store.client.put_object(
        Bucket=store.bucket, Key=artifact_key("iris", bad.version), Body=models.linear(seed=3)[0]
    )
    clock.now = 11.0
    # Then latest keeps serving v1, and the refusal reached the hook
    assert runtime.load("iris").version == 1
    assert refused == [("iris", 2)]
    # And within the next TTL no further download of v2 is tried
    assert runtime.load("iris").version == 1
    assert refused == [("iris", 2)]
    # And v2 asked for by number is refused with the integrity error
    with pytest.raises(IntegrityError, match="version 2 failed its integrity check"):
        runtime.load("iris", version=2)
    assert refused == [("iris", 2), ("iris", 2)]


def test_a_cold_alias_on_a_tampered_version_is_refused(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    registry.publish("iris", models.linear(seed=1)[0])
    bad = registry.publish("iris", models.linear(seed=2)[0])
    store.client.put_object(
        Bucket=store.bucket, Key=artifact_key("iris", bad.version), Body=b"not the model"
    )
    with pytest.raises(IntegrityError) as refused:
        make_runtime(store, tmp_path).load("iris")
    assert refused.value.http_status == 502


class CutOffStore(ObjectStore):
    """Bodies that break half-way, as a dropped connection would, until ``heal``."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner.bucket, client=inner.client)
        self.broken = True

    def open(self, key: str) -> tuple[IO[bytes], ObjectInfo]:
        body, info = super().open(key)
        if not self.broken or not key.endswith("model.onnx"):
            return body, info
        data = body.read()

        class HalfBody(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                left = len(data) // 2 - self.tell()
                if left <= 0:
                    raise ConnectionError("connection reset by peer")
                return super().read(left if size is None or size < 0 else min(size, left))

        return HalfBody(data), info


def test_a_half_downloaded_model_is_never_cached_and_the_next_load_fetches_it_whole(
    store: ObjectStore, tmp_path: Path
) -> None:
    # Given a model whose download breaks half-way
    cut = CutOffStore(store)
    manifest = Registry(cut).publish("iris", models.linear()[0])
    runtime = make_runtime(cut, tmp_path)
    # When it is loaded, Then the load fails and nothing of it is left in /tmp
    with pytest.raises(ConnectionError):
        runtime.load("iris")
    cache = tmp_path / "cache"
    assert not runtime.is_loaded("iris", 1)
    assert list(cache.iterdir()) == []
    # And once the connection holds, it is fetched whole, verified, cached and served
    cut.broken = False
    assert runtime.load("iris").version == 1
    assert [p.name for p in cache.iterdir()] == [f"{manifest.sha256}.onnx"]


def test_unknown_output_and_run_failures_are_client_errors(
    registry: Registry, tmp_path: Path
) -> None:
    registry.publish("iris", models.linear()[0])
    model = make_runtime(registry.store, tmp_path).load("iris")
    inputs = model.prepare({"input": [[1, 2, 3, 4]]})
    with pytest.raises(InvalidRequest, match="unknown output 'logits'"):
        model.run(inputs, ["logits"])
    with pytest.raises(ModelRunError, match="could not run"):
        model.run({"input": np.zeros((1, 5), np.float32)})


def test_outputs_are_refused_only_when_a_value_is_not_finite(
    registry: Registry, tmp_path: Path
) -> None:
    # Given a model that echoes its FP32 input
    registry.publish("echo", models.identity(onnx.TensorProto.FLOAT))
    model = make_runtime(registry.store, tmp_path).load("echo")
    # When its outputs are finite, however large
    big = np.full((1, 2), 3e38, np.float32)
    # Then they are returned as they are
    np.testing.assert_array_equal(model.run({"x": big})["y"], big)
    # And an infinity or a NaN among them is refused, naming the output
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(NonFiniteOutput, match="NaN or infinity in output 'y'"):
            model.run({"x": np.array([[1.0, bad]], np.float32)})


def test_threads_default_to_the_sandbox_cpus(registry: Registry, tmp_path: Path) -> None:
    runtime = make_runtime(registry.store, tmp_path)
    assert runtime.intra_op_threads >= 1
    assert make_runtime(registry.store, tmp_path, intra_op_threads=3).intra_op_threads == 3


def test_a_runtime_for_batch_jobs_parks_idle_onnxruntime_threads(
    registry: Registry, tmp_path: Path
) -> None:
    # Given one runtime that keeps onnxruntime's default and one that does not spin
    registry.publish("iris", models.linear()[0])
    spinning = make_runtime(registry.store, tmp_path / "a").load("iris").session
    parked = make_runtime(registry.store, tmp_path / "b", spin_wait=False).load("iris").session
    # When their sessions' options are read back
    key = "session.intra_op.allow_spinning"
    # Then only the second turned spinning off, and both still predict
    assert parked.get_session_options().get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # the default: spin
        spinning.get_session_options().get_session_config_entry(key)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(
        spinning.run(None, {"input": x})[0], parked.run(None, {"input": x})[0]
    )


def test_the_batch_function_runtime_does_not_spin() -> None:
    # Given the batch function's settings
    from maaskit.batch.service import BatchService
    from maaskit.components import Components
    from maaskit.settings import Settings

    env = {"MAASKIT_BUCKET": "bucket"}
    # When its service is built as the handler builds it, or on its own, or for the API
    handler = Components.from_env(env, spin_wait=False).batch
    alone = BatchService.from_settings(Settings.from_env(env), store=ObjectStore("bucket"))
    api = Components.from_env(env).runtime
    # Then the batch sessions park idle threads between runs, the API's keep the default
    assert handler.runtime.spin_wait is False
    assert alone.runtime.spin_wait is False
    assert api.spin_wait is True

from __future__ import annotations

import hashlib
import threading

import pytest

from maaskit.errors import InvalidModel, InvalidName, NotFound, PayloadTooLarge
from maaskit.registry.catalog import Registry, artifact_key, manifest_key
from maaskit.registry.store import ObjectStore
from tests.support import models


def test_publish_writes_artifact_and_manifest_with_signature_and_checksum(
    registry: Registry, store: ObjectStore
) -> None:
    # Given a loadable model file
    data, _, _ = models.linear(4, 3)
    # When it is published
    manifest = registry.publish("iris", data, metrics={"accuracy": 0.9}, metadata={"owner": "me"})
    # Then version 1 holds the exact bytes, and the manifest describes them
    assert manifest.version == 1
    assert store.get_bytes(artifact_key("iris", 1)) == data
    stored = store.get_json(manifest_key("iris", 1))
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["size"] == len(data)
    assert stored["signature"] == {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": ["batch", 4]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": ["batch", 3]}],
    }
    assert stored["metrics"] == {"accuracy": 0.9}
    assert stored["metadata"] == {"owner": "me"}


def test_model_files_carry_crc32_for_s3_and_their_sha256_in_the_manifest(
    registry: Registry, store: ObjectStore
) -> None:
    # Given a model published with a file beside it
    data, _, _ = models.linear(4, 3)
    manifest = registry.publish("iris", data, files={"labels.json": b'["a", "b", "c"]'})

    # Then S3 checks the big files' transfers with CRC32 (a loader hashes them once, for the
    # manifest's sha256), while the manifest itself keeps SHA-256
    for key in (artifact_key("iris", 1), manifest.file_key("labels.json")):
        head = store.client.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")
        assert "ChecksumCRC32" in head
        assert "ChecksumSHA256" not in head
    head = store.client.head_object(
        Bucket=store.bucket, Key=manifest_key("iris", 1), ChecksumMode="ENABLED"
    )
    assert "ChecksumSHA256" in head


def test_versions_increase_and_latest_follows(registry: Registry) -> None:
    data, _, _ = models.linear()
    versions = [registry.publish("iris", data).version for _ in range(3)]
    assert versions == [1, 2, 3]
    assert registry.get_alias("iris", "latest") == 3
    assert registry.list_versions("iris") == [1, 2, 3]


def test_concurrent_publishers_never_share_a_version(registry: Registry) -> None:
    # Given eight publishers racing on the same name
    data, _, _ = models.linear()
    results: list[int] = []
    lock = threading.Lock()

    def publish() -> None:
        version = registry.publish("race", data).version
        with lock:
            results.append(version)

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each got its own number and latest points at the highest
    assert sorted(results) == list(range(1, 9))
    assert registry.get_alias("race", "latest") == 8


def test_a_claimed_number_without_manifest_is_skipped_not_reused(
    registry: Registry, store: ObjectStore
) -> None:
    # Given a crashed publisher that claimed version 1 but never wrote its manifest
    data, _, _ = models.linear()
    store.put(artifact_key("iris", 1), b"half-written", if_none_match=True)
    # When another publishes
    manifest = registry.publish("iris", data)
    # Then it gets version 2 and version 1 is not listed as published
    assert manifest.version == 2
    assert registry.list_versions("iris") == [2]


def test_aliases_resolve_and_unknown_ones_are_404(registry: Registry) -> None:
    data, _, _ = models.linear()
    registry.publish("iris", data)
    registry.publish("iris", data)
    registry.set_alias("iris", "production", 1)
    assert registry.resolve("iris", alias="production").version == 1
    assert registry.resolve("iris").version == 2
    assert registry.resolve("iris", version="2").version == 2
    assert registry.aliases("iris") == {"latest": 2, "production": 1}
    with pytest.raises(NotFound, match="no alias 'staging'"):
        registry.resolve("iris", alias="staging")
    with pytest.raises(NotFound, match="no version 9"):
        registry.resolve("iris", version=9)
    with pytest.raises(NotFound, match="model 'nope' does not exist"):
        registry.resolve("nope")


def test_an_alias_cannot_point_at_an_unpublished_version(registry: Registry) -> None:
    data, _, _ = models.linear()
    registry.publish("iris", data)
    with pytest.raises(NotFound):
        registry.set_alias("iris", "production", 5)


@pytest.mark.parametrize(
    "name", ["", "../x", "Iris", "a/b", "-lead", ".hidden", "x" * 65, "sp ace", "ü"]
)
def test_bad_model_names_are_refused_before_s3(name: str, registry: Registry) -> None:
    data, _, _ = models.linear()
    with pytest.raises(InvalidName, match="invalid model name"):
        registry.publish(name, data)
    assert registry.list_models() == []


def test_a_file_that_is_not_onnx_is_refused_and_nothing_is_written(registry: Registry) -> None:
    with pytest.raises(InvalidModel, match="not a loadable ONNX model"):
        registry.publish("iris", b"this is not a model")
    assert registry.list_models() == []


def test_an_oversized_model_is_refused(store: ObjectStore) -> None:
    data, _, _ = models.linear()
    registry = Registry(store, max_model_bytes=len(data) - 1)
    with pytest.raises(PayloadTooLarge, match="MAASKIT_MAX_MODEL_MB"):
        registry.publish("iris", data)


def test_list_models_and_describe(registry: Registry) -> None:
    data, _, _ = models.linear()
    registry.publish("b-model", data)
    registry.publish("a-model", data, aliases=("production",))
    assert registry.list_models() == ["a-model", "b-model"]
    described = registry.describe("a-model")
    assert described["aliases"] == {"latest": 1, "production": 1}
    assert [v["version"] for v in described["versions"]] == [1]


def test_publish_can_leave_latest_for_later(registry: Registry) -> None:
    data, _, _ = models.linear()
    registry.publish("iris", data)
    second = registry.publish("iris", data, move_latest=False)
    assert registry.get_alias("iris", "latest") == 1
    registry.advance_latest("iris", second.version)
    registry.advance_latest("iris", 1)  # never backwards
    assert registry.get_alias("iris", "latest") == 2
    with pytest.raises(NotFound):
        registry.advance_latest("iris", 7)

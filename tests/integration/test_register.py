"""Model registration by upload, driven by S3 event notifications against moto."""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.serving.runtime import Runtime
from tests.conftest import BUCKET
from tests.integration.conftest import cold_start
from tests.support import models, text
from tests.support.events import FakeContext, load_event, s3_event

Upload = Callable[..., dict[str, Any]]


@pytest.fixture
def register(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("MAASKIT_MAX_MODEL_MB", "1")
    return cold_start("functions.register.app")


@pytest.fixture
def notify(register: ModuleType) -> Callable[[str], dict[str, Any]]:
    def deliver(key: str) -> dict[str, Any]:
        event = s3_event("s3_model_upload.json", key)
        [outcome] = register.lambda_handler(event, FakeContext())["outcomes"]
        return outcome  # type: ignore[no-any-return]

    return deliver


@pytest.fixture
def upload(store: ObjectStore, notify: Callable[[str], dict[str, Any]]) -> Upload:
    def put(key: str, body: bytes) -> dict[str, Any]:
        store.client.put_object(Bucket=BUCKET, Key=key, Body=body)
        return notify(key)

    return put


def test_an_upload_becomes_the_latest_version_with_its_sidecar(
    upload: Upload, store: ObjectStore, registry: Registry
) -> None:
    # Given a sidecar with metadata, uploaded first
    sidecar = {
        "description": "iris classifier",
        "labels": ["setosa", "versicolor", "virginica"],
        "owner": "ml-team",
        "tags": {"dataset": "iris-2026"},
    }
    store.put_json("uploads/models/iris/iris-v2.json", sidecar)
    # When the model lands
    data, _, _ = models.linear(4, 3)
    outcome = upload("uploads/models/iris/iris-v2.onnx", data)
    # Then it is version 1, latest points at it, and the manifest holds the metadata
    assert (outcome["status"], outcome["model"], outcome["version"]) == ("registered", "iris", 1)
    assert registry.get_alias("iris", "latest") == 1
    manifest = registry.get_manifest("iris", 1)
    assert manifest.metadata == sidecar
    etag = store.head("uploads/models/iris/iris-v2.onnx").etag  # type: ignore[union-attr]
    assert manifest.lineage == {
        "source": "upload",
        "key": "uploads/models/iris/iris-v2.onnx",
        "etag": etag,
    }
    assert manifest.signature.inputs[0].shape == ("batch", 4)
    marker = store.get_json("uploads/models/iris/iris-v2.onnx.registered.json")
    assert (marker["model"], marker["version"], marker["etag"]) == ("iris", 1, etag)


def test_a_redelivered_event_does_not_publish_twice(
    upload: Upload, notify: Callable[[str], dict[str, Any]], registry: Registry
) -> None:
    key = "uploads/models/iris/model.onnx"
    assert upload(key, models.linear()[0])["version"] == 1
    again = notify(key)
    assert (again["status"], again["version"]) == ("skipped", 1)
    assert registry.list_versions("iris") == [1]
    # a new file at the same key is a new version
    assert upload(key, models.linear(seed=5)[0])["version"] == 2
    assert notify(key)["status"] == "skipped"
    assert registry.list_versions("iris") == [1, 2]


def test_the_recorded_fixture_is_registered(register: ModuleType, store: ObjectStore) -> None:
    store.put("uploads/models/iris/iris-v2.onnx", models.linear()[0])
    [outcome] = register.lambda_handler(load_event("s3_model_upload.json"), FakeContext())[
        "outcomes"
    ]
    assert outcome["status"] == "registered"


def rejection(store: ObjectStore, key: str) -> dict[str, Any]:
    return store.get_json(key + ".rejected.json")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("key", "body", "reason"),
    [
        ("uploads/models/iris/notes.onnx", b"this is not a model", "not a loadable ONNX model"),
        ("uploads/models/iris/empty.onnx", b"", "the model file is empty"),
        ("uploads/models/Iris/m.onnx", None, "invalid model name 'Iris'"),
        ("uploads/models/m.onnx", None, "put the file in a folder named after the model"),
        ("uploads/models/iris/../m.onnx", None, "a '..' segment"),
        ("uploads/models/iris/m#1.onnx", None, "'#'"),
    ],
    ids=["not-onnx", "empty", "bad-name", "no-folder", "dot-dot", "odd-character"],
)
def test_invalid_uploads_are_rejected_with_a_reason_beside_them(
    upload: Upload,
    store: ObjectStore,
    registry: Registry,
    key: str,
    body: bytes | None,
    reason: str,
) -> None:
    outcome = upload(key, models.linear()[0] if body is None else body)
    assert outcome["status"] == "rejected"
    assert reason in outcome["reason"]
    assert reason in rejection(store, key)["reason"]
    assert registry.list_models() == []


def test_an_upload_over_the_limit_is_rejected_without_publishing(
    upload: Upload, store: ObjectStore, registry: Registry
) -> None:
    # Given a valid model of about 1.4 MB, with MAASKIT_MAX_MODEL_MB=1
    data, _, _ = models.linear(600, 600)
    assert len(data) > 1024 * 1024
    outcome = upload("uploads/models/big/model.onnx", data)
    assert outcome["status"] == "rejected"
    assert f"the model file is {len(data)} bytes; the limit is 1048576" in outcome["reason"]
    assert rejection(store, "uploads/models/big/model.onnx")["error"] == "PayloadTooLarge"
    assert registry.list_versions("big") == []


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (b'{"descripton": "typo"}', "unknown field 'descripton'"),
        (b'{"labels": "setosa"}', "'labels' must be a list of strings"),
        (b'{"tags": {"a": 1}}', "'tags' must be an object of string values"),
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_a_bad_sidecar_rejects_the_upload(
    upload: Upload, store: ObjectStore, registry: Registry, sidecar: bytes, reason: str
) -> None:
    store.put("uploads/models/iris/m.json", sidecar)
    outcome = upload("uploads/models/iris/m.onnx", models.linear()[0])
    assert outcome["status"] == "rejected"
    assert reason in outcome["reason"]
    assert registry.list_models() == []


def test_a_good_upload_clears_an_earlier_rejection(upload: Upload, store: ObjectStore) -> None:
    key = "uploads/models/iris/m.onnx"
    assert upload(key, b"garbage")["status"] == "rejected"
    assert store.exists(key + ".rejected.json")
    assert upload(key, models.linear()[0])["status"] == "registered"
    assert not store.exists(key + ".rejected.json")


def test_other_files_are_ignored(register: ModuleType, store: ObjectStore) -> None:
    store.put("uploads/models/iris/readme.txt", b"hi")
    event = s3_event("s3_model_upload.json", "uploads/models/iris/readme.txt")
    [outcome] = register.lambda_handler(event, FakeContext())["outcomes"]
    assert outcome["status"] == "ignored"
    gone = s3_event("s3_model_upload.json", "uploads/models/iris/deleted.onnx")
    assert register.lambda_handler(gone, FakeContext())["outcomes"][0]["status"] == "ignored"


def test_a_registered_upload_serves_predictions(
    upload: Upload, registry: Registry, tmp_path: Path
) -> None:
    data, weights, bias = models.linear(4, 3)
    upload("uploads/models/iris/m.onnx", data)
    model = Runtime(registry, cache_dir=tmp_path).load("iris")
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(model.predict({"input": x})["output"], x @ weights + bias, rtol=1e-6)
    assert json.loads(json.dumps(model.manifest.to_dict()))["lineage"]["source"] == "upload"


def _live_lease(store: ObjectStore, key: str, expires_at: float) -> str:
    """What a concurrent delivery of the same upload leaves while it works."""
    etag = store.head(key).etag  # type: ignore[union-attr]
    lease = f"{key}.lease-{etag.strip(chr(34))}.json"
    store.put_json(lease, {"etag": etag, "expires_at": expires_at})
    return lease


def test_a_concurrent_delivery_leaves_the_work_to_the_lease_holder(
    store: ObjectStore, notify: Callable[[str], dict[str, Any]], registry: Registry
) -> None:
    # Given an upload that another delivery of the same event is registering right now
    key = "uploads/models/iris/iris.onnx"
    store.client.put_object(Bucket=BUCKET, Key=key, Body=models.linear()[0])
    _live_lease(store, key, expires_at=time.time() + 600)
    # When this delivery arrives
    outcome = notify(key)
    # Then it publishes nothing and says why
    assert outcome["status"] == "skipped"
    assert "another delivery" in outcome["reason"]
    assert registry.list_models() == []


def test_an_expired_lease_is_taken_over_and_released_after_publishing(
    store: ObjectStore, notify: Callable[[str], dict[str, Any]], registry: Registry
) -> None:
    # Given a delivery that took the lease and was stopped before it published
    key = "uploads/models/iris/iris.onnx"
    store.client.put_object(Bucket=BUCKET, Key=key, Body=models.linear()[0])
    lease = _live_lease(store, key, expires_at=time.time() - 1)
    # When Lambda retries the event
    outcome = notify(key)
    # Then the retry registers it, once, and leaves no lease behind
    assert (outcome["status"], outcome["version"]) == ("registered", 1)
    assert registry.list_versions("iris") == [1]
    assert not store.exists(lease)
    assert notify(key)["status"] == "skipped"
    assert registry.list_versions("iris") == [1]


# packages as archives ---------------------------------------------------------------------


def _package_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _text_package() -> dict[str, bytes]:
    return {
        "model.onnx": text.embedding_model(text.vocab_size())[0],
        "tokenizer.json": text.tokenizer_json().encode(),
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    }


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_a_package_archive_registers_with_its_tokenizer_and_processing(
    upload: Upload, registry: Registry, suffix: str
) -> None:
    entries = _text_package()
    if suffix == ".zip":
        data = _package_zip(entries)
    else:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, payload in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
        data = buffer.getvalue()
    outcome = upload(f"uploads/models/words/words{suffix}", data)
    assert outcome["status"] == "registered", outcome
    manifest = registry.get_manifest("words", 1)
    assert set(manifest.files) == {"model.onnx", "tokenizer.json"}
    assert manifest.processing is not None
    assert manifest.processing["output"]["pooling"] == "mean"


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ({**_text_package(), "../escape.json": b"{}"}, "unsafe path '../escape.json'"),
        ({"tokenizer.json": b"{}"}, "the package has no model.onnx"),
    ],
    ids=["traversal", "no-model"],
)
def test_a_bad_package_archive_is_rejected_with_a_reason(
    upload: Upload, store: ObjectStore, registry: Registry, entries: dict[str, bytes], reason: str
) -> None:
    key = "uploads/models/words/words.zip"
    outcome = upload(key, _package_zip(entries))
    assert outcome["status"] == "rejected"
    assert reason in rejection(store, key)["reason"]
    assert registry.list_models() == []


def test_a_damaged_package_archive_is_rejected(
    upload: Upload, store: ObjectStore, registry: Registry
) -> None:
    data = bytearray(_package_zip(_text_package()))
    at = bytes(data).find(b'"pooling_mode_mean_tokens"')
    data[at + 3] ^= 0xFF  # the CRC-32 no longer matches
    key = "uploads/models/words/broken.zip"
    outcome = upload(key, bytes(data))
    assert outcome["status"] == "rejected"
    assert "failing its checksum" in rejection(store, key)["reason"]
    assert registry.list_models() == []

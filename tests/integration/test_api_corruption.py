"""A corrupt object in the bucket affects only its own model, and says what is wrong."""

from __future__ import annotations

import pytest

from maaskit.registry.catalog import Registry, alias_key, manifest_key
from maaskit.registry.store import ObjectStore
from tests.integration.conftest import Call
from tests.support import models

X = {"input": [[1.0, 2.0, 3.0, 4.0]]}

CORRUPT_JSON = {
    "non-utf8": b"\xff\xfe\x00garbage",
    "not-json": b"{version: 1",
    "truncated": b'{"version": ',
}
WRONG_ALIAS_SHAPE = {
    "a list": b"[1]",
    "no version": b'{"v": 1}',
    "a string version": b'{"version": "one"}',
    "version zero": b'{"version": 0}',
}
WRONG_MANIFEST_SHAPE = {
    "a list": b"[1]",
    "no sha256": b'{"name": "broken", "version": 1}',
    "another version": None,  # a valid manifest, copied from version 2 onto version 1
}


@pytest.fixture
def two_models(registry: Registry) -> Registry:
    registry.publish("healthy", models.linear(4, 3)[0])
    registry.publish("broken", models.linear(4, 3, seed=1)[0])
    registry.publish("broken", models.linear(4, 3, seed=2)[0])
    return registry


BAD_ALIASES: dict[str, bytes] = {**CORRUPT_JSON, **WRONG_ALIAS_SHAPE}


@pytest.mark.parametrize("body", list(BAD_ALIASES.values()), ids=list(BAD_ALIASES))
def test_a_corrupt_alias_breaks_only_its_model(
    call: Call, store: ObjectStore, two_models: Registry, body: bytes
) -> None:
    # Given a model whose latest alias was overwritten with something that is not an alias
    store.put(alias_key("broken", "latest"), body)
    # When its predict is called
    status, reply = call("POST", "/models/broken/predict", X)
    # Then it answers a server error naming the alias and how to fix it
    assert status == 502, reply
    assert "alias 'latest'" in reply["error"]
    assert "models/broken/aliases/latest.json" in reply["error"]
    # And every other model serves, and the listing skips the broken one and says why
    assert call("POST", "/models/healthy/predict", X)[0] == 200
    assert call("POST", "/models/broken/predict", X, query={"version": "2"})[0] == 200
    status, listing = call("GET", "/models")
    assert status == 200, listing
    assert [m["name"] for m in listing["models"]] == ["healthy"]
    [skipped] = listing["skipped"]
    assert skipped["name"] == "broken"
    assert "alias 'latest'" in skipped["reason"]


@pytest.mark.parametrize("name", [*CORRUPT_JSON, *WRONG_MANIFEST_SHAPE])
def test_a_corrupt_manifest_breaks_only_its_version(
    call: Call, store: ObjectStore, two_models: Registry, name: str
) -> None:
    body = {**CORRUPT_JSON, **WRONG_MANIFEST_SHAPE}[name]
    if body is None:
        body = store.get_bytes(manifest_key("broken", 2))
    # Given version 1 of a model whose manifest is corrupt
    store.put(manifest_key("broken", 1), body)
    # When that version is asked for, by predict, V2 metadata or the registry view
    for method, path, query in [
        ("POST", "/models/broken/predict", {"version": "1"}),
        ("GET", "/v2/models/broken/versions/1", None),
        ("GET", "/models/broken", None),
    ]:
        status, reply = call(method, path, X if method == "POST" else None, query=query)
        # Then each answers a server error that names the manifest
        assert status == 502, (path, reply)
        assert "model 'broken' version 1 cannot be served" in reply["error"]
        assert "models/broken/versions/1/manifest.json" in reply["error"]
    # And the model's good version and every other model still serve
    assert call("POST", "/models/broken/predict", X)[1]["version"] == 2
    assert call("POST", "/models/healthy/predict", X)[0] == 200
    status, listing = call("GET", "/models")
    assert status == 200
    assert [m["name"] for m in listing["models"]] == ["broken", "healthy"]


def test_publishing_repairs_a_corrupt_latest_alias(
    call: Call, store: ObjectStore, two_models: Registry
) -> None:
    store.put(alias_key("broken", "latest"), b"\xff")
    two_models.publish("broken", models.linear(4, 3, seed=3)[0])
    assert two_models.get_alias("broken", "latest") == 3
    assert call("POST", "/models/broken/predict", X)[1]["version"] == 3


def test_a_model_folder_with_an_invalid_name_is_skipped(
    call: Call, store: ObjectStore, two_models: Registry
) -> None:
    store.put("models/Not A Name/versions/1/manifest.json", b"{}")
    status, listing = call("GET", "/models")
    assert status == 200
    assert [s["name"] for s in listing["skipped"]] == ["Not A Name"]
    assert "invalid model name" in listing["skipped"][0]["reason"]

"""The composition root: every handler's core objects, built once, lazily, over one store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from maaskit.components import Components
from maaskit.errors import SettingsError
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.serving.runtime import LoadedModel
from maaskit.settings import Settings
from tests.support import models


def test_settings_are_validated_when_the_components_are_made() -> None:
    # Given an environment without a bucket, When a function cold-starts, Then it fails there
    with pytest.raises(SettingsError, match="MAASKIT_BUCKET"):
        Components.from_env({})


def test_every_piece_is_built_once_over_the_one_store(tmp_path: Path) -> None:
    # Given components over a store of the test's own
    store = ObjectStore("bucket-a", client=object())  # type: ignore[arg-type]
    settings = Settings(bucket="bucket-a", cache_dir=tmp_path, max_model_bytes=1234)
    core = Components(settings, store=store)

    # When each piece is asked for twice
    pieces = [core.store, core.registry, core.runtime, core.inference, core.batch, core.uploads]

    # Then each is the same object both times, and all of them share the store and registry
    assert pieces == [
        core.store,
        core.registry,
        core.runtime,
        core.inference,
        core.batch,
        core.uploads,
    ]
    assert core.store is store
    assert core.registry.store is store
    assert core.registry.max_model_bytes == 1234
    assert core.runtime.registry is core.registry
    assert core.inference.runtime is core.runtime
    assert core.batch.runtime is core.runtime
    assert core.batch.store is store
    assert core.uploads.registry is core.registry
    assert core.uploads.store is store


def test_the_runtime_reports_a_load_to_the_given_hook(tmp_path: Path, store: ObjectStore) -> None:
    # Given a published model and components with a load hook
    Registry(store).publish("tiny", models.mlp(4, 8, 3))
    loaded: list[LoadedModel] = []
    core = Components(
        Settings(bucket=store.bucket, cache_dir=tmp_path), store=store, on_model_load=loaded.append
    )

    # When the API's runtime loads it
    model = core.runtime.load("tiny", alias="latest")

    # Then the hook heard of it, once
    assert [(m.name, m.version) for m in loaded] == [("tiny", 1)]
    assert model is loaded[0]


def test_a_piece_nobody_asked_for_is_not_built_nor_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a training step's components (it needs the store and the registry only), in a
    # process that has not imported the batch service (put back afterwards: a module
    # imported anew would hold a class other tests' patches of the first one never reach)
    monkeypatch.delitem(sys.modules, "maaskit.batch.service", raising=False)
    core = Components(
        Settings(bucket="b", cache_dir=tmp_path),
        store=ObjectStore("b", client=object()),  # type: ignore[arg-type]
    )
    # When it uses them
    assert core.registry.store is core.store
    # Then the batch service was neither built nor imported
    assert "batch" not in vars(core)
    assert "maaskit.batch.service" not in sys.modules

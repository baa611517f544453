"""The composition root: the one place a Lambda function's core objects are built.

Every handler in ``functions/`` takes what it needs from one ``Components``. Each piece is
built the first time it is asked for and kept for the sandbox's life, so a function pays only
for what it uses (a training step never builds a runtime, the API never builds a batch
service), and all pieces share one settings object and one S3 client. Tests build one over a
store on moto and settings of their own instead of patching module globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING

from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.settings import Settings

if TYPE_CHECKING:  # imported where first used: not every function needs every service
    from maaskit.batch.service import BatchService
    from maaskit.registry.uploads import ModelUploads
    from maaskit.serving.runtime import LoadedModel, Runtime
    from maaskit.serving.service import InferenceService

OnLoad = Callable[["LoadedModel"], None]
OnIntegrityFailure = Callable[[str, int], None]


class Components:
    """Settings, store, registry, runtime and services of one function, built once each."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: ObjectStore | None = None,
        on_model_load: OnLoad | None = None,
        on_integrity_failure: OnIntegrityFailure | None = None,
        spin_wait: bool = True,
    ) -> None:
        self.settings = settings
        self._store = store
        self._on_model_load = on_model_load
        self._on_integrity_failure = on_integrity_failure
        self._spin_wait = spin_wait  # False for a function that parses between runs (batch)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        on_model_load: OnLoad | None = None,
        on_integrity_failure: OnIntegrityFailure | None = None,
        spin_wait: bool = True,
    ) -> Components:
        """Settings read and validated now (cold start), everything else on first use."""
        return cls(
            Settings.from_env(env),
            on_model_load=on_model_load,
            on_integrity_failure=on_integrity_failure,
            spin_wait=spin_wait,
        )

    @cached_property
    def store(self) -> ObjectStore:
        return self._store or ObjectStore(self.settings.bucket)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.store, max_model_bytes=self.settings.max_model_bytes)

    @cached_property
    def runtime(self) -> Runtime:
        from maaskit.serving.runtime import Runtime

        return Runtime.from_settings(
            self.settings,
            registry=self.registry,
            on_load=self._on_model_load,
            on_integrity_failure=self._on_integrity_failure,
            spin_wait=self._spin_wait,
        )

    @cached_property
    def inference(self) -> InferenceService:
        from maaskit.serving.service import InferenceService

        return InferenceService(self.runtime, max_request_bytes=self.settings.max_request_bytes)

    @cached_property
    def batch(self) -> BatchService:
        from maaskit.batch.service import BatchService

        return BatchService.from_settings(self.settings, runtime=self.runtime)

    @cached_property
    def uploads(self) -> ModelUploads:
        from maaskit.registry.uploads import ModelUploads

        return ModelUploads(self.store, self.registry)

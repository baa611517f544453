"""Online inference as the API offers it: references in, JSON-ready replies out.

This is the one place that joins the protocol codecs to the runtime, so the Lambda
adapter only routes and the same behaviour can be driven without any event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from maaskit import protocol
from maaskit.errors import MaaskitError, NotFound
from maaskit.runtime import LoadedModel, Runtime

Timer = Callable[[LoadedModel, float], None]
"""Called with the model and the milliseconds ``session.run`` took, for metrics."""


class InferenceService:
    def __init__(self, runtime: Runtime, *, max_request_bytes: int) -> None:
        self.runtime = runtime
        self.registry = runtime.registry
        self.max_request_bytes = max_request_bytes

    def _timed_run(
        self,
        model: LoadedModel,
        inputs: dict[str, np.ndarray],
        outputs: list[str] | None,
        timer: Timer | None,
    ) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        results = model.run(inputs, outputs)
        if timer is not None:
            timer(model, (time.perf_counter() - started) * 1000)
        return results

    def preload(self, refs: Iterable[str]) -> list[tuple[str, MaaskitError]]:
        """Load ``name``, ``name@alias`` or ``name@version`` now; return what failed, and why.

        Meant for a sandbox's init phase: a model that cannot load there is loaded (or
        refused with its error) by the first request that asks for it, as without preloading.
        """
        failures = []
        for ref in refs:
            name, _, selector = ref.partition("@")
            version = selector if selector.isdigit() else None
            alias = selector if selector and version is None else None
            try:
                self.runtime.load(name, version=version, alias=alias)
            except MaaskitError as err:
                failures.append((ref, err))
        return failures

    # the simple shape ------------------------------------------------------------

    def predict(
        self,
        name: str,
        body: bytes | str | None,
        *,
        version: str | None = None,
        alias: str | None = None,
        timer: Timer | None = None,
    ) -> dict[str, Any]:
        request = protocol.parse_simple(
            protocol.decode_json(body, max_bytes=self.max_request_bytes)
        )
        model = self.runtime.load(
            name, version=version or request.version, alias=alias or request.alias
        )
        inputs = protocol.simple_inputs(request, model.signature)
        outputs = self._timed_run(model, inputs, None, timer)
        return protocol.simple_response(model.name, model.version, outputs)

    # Open Inference Protocol V2 --------------------------------------------------

    def infer(
        self,
        name: str,
        body: bytes | str | None,
        *,
        version: str | None = None,
        timer: Timer | None = None,
    ) -> dict[str, Any]:
        decoded = protocol.decode_json(body, max_bytes=self.max_request_bytes)
        model = self.runtime.load(name, version=version)
        request = protocol.parse_infer(decoded, model.signature)
        outputs = self._timed_run(model, request.inputs, request.outputs, timer)
        return protocol.infer_response(model.name, model.version, outputs, request.id)

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        number = self.runtime.resolve_version(name, version=version)
        manifest = self.registry.get_manifest(name, number)
        versions = [number] if version is not None else self.registry.list_versions(name)
        return protocol.model_metadata(name, versions, manifest.signature)

    def ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Ready means loadable here: resolved, verified and holding a session."""
        model = self.runtime.load(name, version=version)
        return {"name": model.name, "version": str(model.version), "ready": True}

    # registry views --------------------------------------------------------------

    def list_models(self) -> dict[str, Any]:
        return self.registry.catalog()

    def describe(self, name: str) -> dict[str, Any]:
        try:
            return self.registry.describe(name)
        except NotFound:
            raise NotFound(f"model {name!r} does not exist") from None

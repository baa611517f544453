"""Online inference as the API offers it: references in, JSON-ready replies out.

This is the one place that joins the protocol codecs to the runtime, so the Lambda
adapter only routes and the same behaviour can be driven without any event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from maaskit.errors import InvalidRequest, MaaskitError, NotFound
from maaskit.onnxmodel.signature import Signature, TensorSpec
from maaskit.serving import protocol
from maaskit.serving.runtime import LoadedModel, Runtime

if TYPE_CHECKING:
    from maaskit.onnxmodel.text import TextAnswer, TextModel

Timer = Callable[[LoadedModel, float], None]
"""Called with the model and the milliseconds ``session.run`` took, for metrics."""


def parse_truncate(value: str | None) -> bool:
    """The ``truncate`` query: absent or ``true`` cuts long texts; ``false`` refuses them."""
    if value is None or value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"truncate must be true or false, got {value!r}")


def _text_value(text: TextModel, values: Mapping[str, Any]) -> Any:
    """The one text value of a request: ``input``, or ``inputs`` under the declared name."""
    if set(values) not in ({""}, {text.input_name}):
        raise InvalidRequest(
            f"this model takes one text input named {text.input_name!r}: send "
            f'{{"input": "..."}} or {{"inputs": {{"{text.input_name}": ["...", "..."]}}}}'
        )
    return next(iter(values.values()))


def _texts_as_sent(body: Any, served: Signature) -> Signature:
    """Texts come as ``[n]`` or, as Triton clients often shape them, ``[n, 1]``."""
    entries = body.get("inputs") if isinstance(body, dict) else None
    first = entries[0] if isinstance(entries, list) and entries else None
    shape = first.get("shape") if isinstance(first, dict) else None
    if isinstance(shape, list) and len(shape) == 2 and shape[1] == 1:
        [spec] = served.inputs
        return Signature((TensorSpec(spec.name, spec.datatype, ("batch", 1)),), served.outputs)
    return served


def _holds_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and any(_holds_text(v) for v in value[:16])


def refuse_text_for_tensor_model(signature: Signature, values: Iterable[Any]) -> None:
    """A string sent to a model that takes numbers: say what it takes instead."""
    if any(spec.datatype == "BYTES" for spec in signature.inputs):
        return
    if any(_holds_text(value) for value in values):
        takes = ", ".join(
            f"{spec.name!r} ({spec.datatype} {list(spec.v2_shape())})" for spec in signature.inputs
        )
        raise InvalidRequest(
            f"this model takes numbers, not text: {takes}; send them as "
            '{"input": [[...]]}, or publish the model with a tokenizer to send text'
        )


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
        truncate: str | None = None,
        timer: Timer | None = None,
    ) -> dict[str, Any]:
        """``truncate`` is the query value: texts over max length are cut unless ``false``."""
        allow_truncation = parse_truncate(truncate)
        request = protocol.parse_simple(
            protocol.decode_json(body, max_bytes=self.max_request_bytes)
        )
        model = self.runtime.load(
            name, version=version or request.version, alias=alias or request.alias
        )
        if model.text is not None:
            texts = model.text.check(_text_value(model.text, request.values))
            answer = self._predict_texts(model, model.text, texts, allow_truncation, timer)
            reply = protocol.simple_response(model.name, model.version, answer.outputs)
            if answer.truncated:
                reply["truncated"] = answer.truncated
            return reply
        try:
            inputs = protocol.simple_inputs(request, model.signature)
        except InvalidRequest:  # strings are refused there; say why text is, if it was text
            refuse_text_for_tensor_model(model.signature, request.values.values())
            raise
        outputs = self._timed_run(model, inputs, None, timer)
        return protocol.simple_response(model.name, model.version, outputs)

    def _predict_texts(
        self,
        model: LoadedModel,
        text: TextModel,
        texts: list[str],
        truncate: bool,
        timer: Timer | None,
    ) -> TextAnswer:
        def run(feeds: Mapping[str, np.ndarray], names: list[str] | None) -> dict[str, np.ndarray]:
            return self._timed_run(model, dict(feeds), names, timer)

        return text.predict(texts, run, truncate=truncate)

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
        if model.text is not None:
            return self._infer_texts(model, model.text, decoded, timer)
        request = protocol.parse_infer(decoded, model.signature)
        outputs = self._timed_run(model, request.inputs, request.outputs, timer)
        return protocol.infer_response(model.name, model.version, outputs, request.id)

    def _infer_texts(
        self, model: LoadedModel, text: TextModel, decoded: Any, timer: Timer | None
    ) -> dict[str, Any]:
        """V2 on a text model: one BYTES input of texts, the declared answers as outputs."""
        from maaskit.onnxmodel.text import served_signature

        request = protocol.parse_infer(
            decoded, _texts_as_sent(decoded, served_signature(text.processing, model.signature))
        )
        [texts] = request.inputs.values()
        strings = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts.ravel()]
        truncate = request.parameters.get("truncate", True)
        if not isinstance(truncate, bool):
            raise InvalidRequest('parameter "truncate" must be true or false')
        answer = self._predict_texts(model, text, text.check(strings), truncate, timer)
        outputs = {name: np.asarray(value) for name, value in answer.outputs.items()}
        if request.outputs is not None:
            known = list(outputs)
            unknown = [n for n in request.outputs if n not in known]
            if unknown:
                raise InvalidRequest(
                    f"unknown output {unknown[0]!r}; the model returns: {', '.join(map(repr, known))}"
                )
            outputs = {n: outputs[n] for n in request.outputs}
        reply = protocol.infer_response(model.name, model.version, outputs, request.id)
        if answer.truncated:
            reply["parameters"] = {"truncated": answer.truncated}
        return reply

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        number = self.runtime.resolve_version(name, version=version)
        manifest = self.registry.get_manifest(name, number)
        versions = [number] if version is not None else self.registry.list_versions(name)
        signature = manifest.signature
        if manifest.processing is not None:
            from maaskit.onnxmodel.text import TextProcessing, served_signature

            signature = served_signature(TextProcessing.from_dict(manifest.processing), signature)
        return protocol.model_metadata(name, versions, signature)

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

"""Which model version a batch file runs on: the key, the object's metadata, or the default.

* the key's model segment: ``batch/in/iris@3/...`` (version 3) or ``iris@production/...``;
* the object's metadata: ``x-amz-meta-model-version: 3`` or ``x-amz-meta-model-alias: staging``;
* otherwise the ``production`` alias if the model has one, else ``latest``.

Giving two different choices is refused rather than silently preferring one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from maaskit.batch.keys import BatchKey
from maaskit.errors import InvalidRequest, NotFound
from maaskit.registry.catalog import (
    LATEST,
    PRODUCTION,
    parse_version,
    validate_alias,
    validate_name,
)
from maaskit.serving.runtime import LoadedModel, Runtime

VERSION_METADATA = "model-version"  # x-amz-meta-model-version
ALIAS_METADATA = "model-alias"  # x-amz-meta-model-alias


@dataclass(frozen=True)
class ModelChoice:
    name: str
    version: int | None = None
    alias: str | None = None
    selected_by: str = "default"  # "key", "metadata" or "default"

    def describe(self) -> str:
        if self.version is not None:
            return f"version {self.version} ({self.selected_by})"
        if self.alias is not None:
            return f"alias {self.alias!r} ({self.selected_by})"
        return f"alias {PRODUCTION!r}, else {LATEST!r} (default)"


def _reference(value: str, *, where: str) -> tuple[int | None, str | None]:
    if value.isdigit():
        return parse_version(value), None
    try:
        return None, validate_alias(value)
    except InvalidRequest as err:
        raise InvalidRequest(f"{where}: {err.message}") from None


def choose_model(key: BatchKey, metadata: Mapping[str, str]) -> ModelChoice:
    """The model reference a file asks for, before looking anything up."""
    validate_name(key.model)
    choices: list[ModelChoice] = []
    if key.ref is not None:
        version, alias = _reference(key.ref, where=f"the key's model segment {key.model_segment!r}")
        choices.append(ModelChoice(key.model, version, alias, "key"))
    meta = {k.lower(): v.strip() for k, v in metadata.items()}
    if meta.get(VERSION_METADATA):
        raw = meta[VERSION_METADATA]
        if not raw.isdigit():
            raise InvalidRequest(
                f"x-amz-meta-{VERSION_METADATA} must be a version number, got {raw!r} (name an "
                f"alias with x-amz-meta-{ALIAS_METADATA})"
            )
        choices.append(ModelChoice(key.model, parse_version(raw), None, "metadata"))
    if meta.get(ALIAS_METADATA):
        _, alias = _reference(meta[ALIAS_METADATA], where=f"x-amz-meta-{ALIAS_METADATA}")
        choices.append(ModelChoice(key.model, None, alias, "metadata"))
    distinct = {(c.version, c.alias) for c in choices}
    if len(distinct) > 1:
        said = "; ".join(f"the {c.selected_by} says {c.describe().split(' (')[0]}" for c in choices)
        raise InvalidRequest(f"the file names more than one model version ({said}): keep one")
    return choices[0] if choices else ModelChoice(key.model)


class ModelPicker:
    """Loads the model a file asks for, as a warm sandbox should: without asking S3 again.

    Aliases that exist are cached by the runtime; this also remembers, for the same TTL,
    that a model has no ``production`` alias, so a sandbox working through many files of
    a model without one does not look it up (several requests) for every file.
    """

    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self._clock = clock
        self._no_production: dict[str, float] = {}

    def load(self, choice: ModelChoice) -> tuple[LoadedModel, str]:
        """The loaded model and how it was chosen, for the report."""
        if choice.version is not None or choice.alias is not None:
            model = self.runtime.load(choice.name, version=choice.version, alias=choice.alias)
            return model, choice.describe()
        now = self._clock()
        if self._no_production.get(choice.name, 0.0) <= now:
            try:
                model = self.runtime.load(choice.name, alias=PRODUCTION)
                return model, f"alias {PRODUCTION!r} (default)"
            except NotFound:
                self._no_production[choice.name] = now + self.runtime.alias_ttl_seconds
        model = self.runtime.load(choice.name, alias=LATEST)  # raises if the model does not exist
        return model, f"alias {LATEST!r} (default: the model has no {PRODUCTION!r} alias)"

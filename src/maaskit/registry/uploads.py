"""Model registration by upload: an ``.onnx`` file under ``uploads/models/{name}/`` becomes a version.

A package (``model.onnx`` with ``tokenizer.json`` and the export's config files, see
:mod:`maaskit.registry.packages`) may be uploaded as one ``.zip`` or ``.tar.gz`` instead; it is read
in memory with unsafe paths, links, oversize contents and failed checksums refused.

The file is checked before anything is published (size from a HEAD, so an oversized upload
is never downloaded; then onnxruntime loads it and its signature is read by the registry),
and the outcome is left beside it for the person who uploaded it:

* ``{file}.onnx.registered.json``: the model, version and ETag it was published as;
* ``{file}.onnx.rejected.json``: why it was not published.

An optional sidecar ``{file}.json`` (description, labels, owner, tags) goes into the
manifest's metadata; upload it before the model. Every version made this way records the
upload's key and ETag in its lineage, which is what makes a redelivered event harmless:
the same ETag is never published twice. Two deliveries of one event at the same moment
are kept apart by a lease: ``{file}.onnx.lease-{etag}.json``, created with a conditional
write, names the moment its holder's invocation will have been stopped; a delivery that
finds a live lease leaves the work to its holder, and one that finds an expired lease
(its holder crashed) takes it over.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from maaskit.errors import (
    AlreadyExists,
    CorruptObject,
    InvalidModel,
    InvalidRequest,
    MaaskitError,
    NotFound,
    PayloadTooLarge,
)
from maaskit.registry.catalog import Manifest, Registry, validate_name
from maaskit.registry.packages import Package, read_archive
from maaskit.registry.safekeys import check_segments
from maaskit.registry.store import ObjectStore

UPLOAD_PREFIX = "uploads/models/"
MODEL_SUFFIX = ".onnx"
PACKAGE_SUFFIXES = (".zip", ".tar.gz")
UPLOAD_SUFFIXES = (MODEL_SUFFIX, *PACKAGE_SUFFIXES)
REGISTERED_SUFFIX = ".registered.json"
REJECTED_SUFFIX = ".rejected.json"
MAX_SIDECAR_BYTES = 64 * 1024
_SIDECAR_FIELDS = {
    "description": "a string",
    "labels": "a list of strings (class labels, in output order)",
    "owner": "a string",
    "tags": "an object of string values",
}

REGISTERED = "registered"
REJECTED = "rejected"
SKIPPED = "skipped"  # this upload (same ETag) is already a version
IGNORED = "ignored"  # not a model upload, or gone


@dataclass(frozen=True)
class UploadOutcome:
    key: str
    status: str
    model: str | None = None
    version: int | None = None
    reason: str | None = None
    marker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _upload_suffix(key: str) -> str | None:
    return next((suffix for suffix in UPLOAD_SUFFIXES if key.endswith(suffix)), None)


def sidecar_key(key: str) -> str:
    suffix = _upload_suffix(key) or MODEL_SUFFIX
    return key[: -len(suffix)] + ".json"


def parse_sidecar(data: Any) -> dict[str, Any]:
    """The sidecar's metadata, checked field by field (a typo is refused, not dropped)."""
    if not isinstance(data, dict):
        raise InvalidRequest("the sidecar must be a JSON object")
    unknown = sorted(set(data) - set(_SIDECAR_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0]!r} in the sidecar; allowed: {', '.join(_SIDECAR_FIELDS)}"
        )
    checks = {
        "description": lambda v: isinstance(v, str),
        "owner": lambda v: isinstance(v, str),
        "labels": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "tags": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    }
    for name, value in data.items():
        if not checks[name](value):
            raise InvalidRequest(f"sidecar field {name!r} must be {_SIDECAR_FIELDS[name]}")
    return dict(data)


class ModelUploads:
    """Turns uploaded files into registry versions, once each."""

    def __init__(self, store: ObjectStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    @property
    def max_model_bytes(self) -> int:
        return self.registry.max_model_bytes

    def register(
        self, key: str, *, lease_seconds: float = 900.0, clock: Any = time.time
    ) -> UploadOutcome:
        """Validate and publish the upload at ``key`` (already URL-decoded).

        ``lease_seconds`` is how long this invocation can still run (the handler passes
        its remaining time): no other delivery of the same upload works on it until then.
        """
        if not key.startswith(UPLOAD_PREFIX) or _upload_suffix(key) is None:
            return UploadOutcome(
                key,
                IGNORED,
                reason=f"not an {', '.join(UPLOAD_SUFFIXES)} file under {UPLOAD_PREFIX}",
            )
        segments = key[len(UPLOAD_PREFIX) :].split("/")
        name = segments[0]
        info = self.store.head(key)
        if info is None:
            return UploadOutcome(key, IGNORED, reason="the upload no longer exists")
        try:
            check_segments(key, segments)
            if len(segments) < 2:
                raise InvalidRequest(
                    f"put the file in a folder named after the model: {UPLOAD_PREFIX}{{name}}/{{file}}.onnx"
                )
            validate_name(name)
            if info.size > self.max_model_bytes:
                raise PayloadTooLarge(
                    f"the model file is {info.size} bytes; the limit is {self.max_model_bytes} "
                    "(MAASKIT_MAX_MODEL_MB)"
                )
        except (InvalidRequest, PayloadTooLarge) as err:
            return self._reject(key, info.etag, name, err)
        done = self._published(name, key, info.etag)
        if done is not None:
            return self._already(key, name, info.etag, done)
        if not self._take_lease(key, info.etag, clock() + lease_seconds, clock):
            return UploadOutcome(
                key,
                SKIPPED,
                model=name,
                reason="another delivery of this upload is registering it now",
            )
        try:  # whatever happens, a retry must not wait for this lease to run out
            return self._publish_upload(key, name, info.etag)
        finally:
            self._release_lease(key, info.etag)

    def _already(self, key: str, name: str, etag: str, done: Manifest) -> UploadOutcome:
        return UploadOutcome(
            key,
            SKIPPED,
            model=name,
            version=done.version,
            reason=f"this upload (ETag {etag}) is already version {done.version}",
            marker=key + REGISTERED_SUFFIX,
        )

    def _publish_upload(self, key: str, name: str, etag: str) -> UploadOutcome:
        """Publish under the lease: the lineage check is repeated now that no one else can."""
        done = self._published(name, key, etag)
        if done is not None:  # the previous holder finished just before we took over
            return self._already(key, name, etag, done)
        try:
            metadata = self._sidecar(key)
            upload = self.store.get(key)
            package = self._package(key, upload.body)
            manifest = self.registry.publish(
                name,
                package.model,
                files=package.files,
                processing=package.processing,
                metadata=metadata,
                lineage={"source": "upload", "key": key, "etag": upload.etag},
            )
        except (InvalidRequest, InvalidModel, PayloadTooLarge) as err:
            return self._reject(key, etag, name, err)
        marker = key + REGISTERED_SUFFIX
        self.store.put_json(
            marker,
            {
                "model": name,
                "version": manifest.version,
                "etag": upload.etag,
                "sha256": manifest.sha256,
                "signature": manifest.signature.to_dict(),
                "registered_at": _now(),
            },
        )
        if self.store.exists(key + REJECTED_SUFFIX):  # an earlier, bad upload at the same key
            self.store.delete(key + REJECTED_SUFFIX)
        return UploadOutcome(key, REGISTERED, model=name, version=manifest.version, marker=marker)

    def _package(self, key: str, body: bytes) -> Package:
        if key.endswith(MODEL_SUFFIX):
            return Package(model=body)
        return read_archive(body, key.rsplit("/", 1)[-1], max_bytes=self.max_model_bytes)

    @staticmethod
    def _lease_key(key: str, etag: str) -> str:
        return f"{key}.lease-{etag.strip(chr(34))}.json"

    def _take_lease(self, key: str, etag: str, expires_at: float, clock: Any) -> bool:
        """Whether this delivery now holds the lease (False: a live holder has it)."""
        lease = self._lease_key(key, etag)
        body = {"etag": etag, "expires_at": expires_at}
        try:
            self.store.put_json(lease, body, if_none_match=True)
            return True
        except AlreadyExists:
            pass
        try:
            current = self.store.get(lease)
        except NotFound:  # released between our two calls: the holder finished
            return False
        if float(json.loads(current.body).get("expires_at", 0)) > clock():
            return False
        try:  # the holder was stopped before it finished: take over, unless another did
            self.store.put_json(lease, body, if_match=current.etag)
        except AlreadyExists:
            return False
        return True

    def _release_lease(self, key: str, etag: str) -> None:
        self.store.delete(self._lease_key(key, etag))

    def _published(self, name: str, key: str, etag: str) -> Manifest | None:
        """The version this exact upload already became, if any (newest first)."""
        for version in reversed(self.registry.list_versions(name)):
            manifest = self.registry.get_manifest(name, version)
            lineage = manifest.lineage
            if lineage.get("source") == "upload" and (lineage.get("key"), lineage.get("etag")) == (
                key,
                etag,
            ):
                return manifest
        return None

    def _sidecar(self, key: str) -> dict[str, Any]:
        side = sidecar_key(key)
        info = self.store.head(side)
        if info is None:
            return {}
        if info.size > MAX_SIDECAR_BYTES:
            raise InvalidRequest(f"the sidecar {side} is over {MAX_SIDECAR_BYTES} bytes")
        try:
            data = self.store.get_json(side)
        except NotFound:
            return {}
        except CorruptObject as err:
            raise InvalidRequest(f"the sidecar {err.message}") from None
        try:
            return parse_sidecar(data)
        except InvalidRequest as err:
            raise InvalidRequest(f"the sidecar {side}: {err.message}") from None

    def _reject(self, key: str, etag: str, name: str, err: MaaskitError) -> UploadOutcome:
        marker = key + REJECTED_SUFFIX
        self.store.put_json(
            marker,
            {
                "key": key,
                "etag": etag,
                "reason": err.message,
                "error": type(err).__name__,
                "rejected_at": _now(),
            },
        )
        return UploadOutcome(key, REJECTED, model=name, reason=err.message, marker=marker)

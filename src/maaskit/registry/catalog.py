"""Model names, versions, aliases and manifests, kept in S3 with no database.

Layout (one bucket)::

    models/{name}/versions/{version}/model.onnx      immutable once written
    models/{name}/versions/{version}/{file}          the package's other files (tokenizer.json)
    models/{name}/versions/{version}/manifest.json   written last: its presence publishes
    models/{name}/aliases/{alias}.json               {"version": N}

Versions are claimed with conditional writes (``IfNoneMatch="*"`` on the artifact), so two
concurrent publishers can never get the same number; aliases move with ``IfMatch`` on the
ETag they read, so ``latest`` only ever moves forward.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from maaskit.errors import (
    AlreadyExists,
    CorruptObject,
    InvalidName,
    NotFound,
    PayloadTooLarge,
    StoredObjectError,
)
from maaskit.onnxmodel.signature import Signature, inspect_model
from maaskit.registry.store import BULK_CHECKSUM, ObjectStore, StoredObject

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ALIAS_PATTERN = re.compile(r"[a-z][a-z0-9._-]{0,63}")
FILE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
LATEST = "latest"
PRODUCTION = "production"
_CLAIM_ATTEMPTS = 50


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidName(
            f"invalid model name {name!r}: use 1-64 characters from a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
        raise InvalidName(
            f"invalid alias {alias!r}: use 1-64 characters from a-z, 0-9, '.', '_', '-', "
            "starting with a letter"
        )
    return alias


def parse_version(version: str | int) -> int:
    if isinstance(version, int) and not isinstance(version, bool):
        number = version
    elif isinstance(version, str) and version.isdigit():
        number = int(version)
    else:
        raise InvalidName(f"invalid version {version!r}: versions are positive integers")
    if number < 1:
        raise InvalidName(f"invalid version {version!r}: versions start at 1")
    return number


def version_prefix(name: str, version: int) -> str:
    return f"models/{name}/versions/{version}/"


def artifact_key(name: str, version: int) -> str:
    return version_prefix(name, version) + MODEL_FILE


def file_key(name: str, version: int, filename: str) -> str:
    return version_prefix(name, version) + filename


def manifest_key(name: str, version: int) -> str:
    return version_prefix(name, version) + MANIFEST_FILE


def validate_file_name(filename: str) -> str:
    """A package file beside model.onnx: one flat name, no path, not a reserved one."""
    if not isinstance(filename, str) or not FILE_PATTERN.fullmatch(filename):
        raise InvalidName(
            f"invalid package file name {filename!r}: use a flat name of letters, digits, "
            "'.', '_' and '-' (no folders)"
        )
    if filename in (MODEL_FILE, MANIFEST_FILE):
        raise InvalidName(f"{filename!r} is reserved: pass the model as the model, not a file")
    return filename


def alias_key(name: str, alias: str) -> str:
    return f"models/{name}/aliases/{alias}.json"


def _version_in(alias_body: bytes) -> int | None:
    """The version an alias file names, or ``None`` if it is not ``{"version": N}``."""
    try:
        data = json.loads(alias_body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    number = data.get("version") if isinstance(data, dict) else None
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        return None
    return number


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PackageFile:
    """One stored file of a version, as its manifest records it."""

    sha256: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> PackageFile:
        return cls(sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """Everything known about one published version."""

    name: str
    version: int
    sha256: str
    size: int
    signature: Signature
    created_at: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)
    extra_files: Mapping[str, PackageFile] = field(default_factory=dict)
    processing: Mapping[str, Any] | None = None

    @property
    def artifact_key(self) -> str:
        return artifact_key(self.name, self.version)

    @property
    def files(self) -> dict[str, PackageFile]:
        """Every file of the package, model.onnx first (old manifests: model.onnx only)."""
        return {MODEL_FILE: PackageFile(self.sha256, self.size), **self.extra_files}

    @property
    def package_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())

    def file_key(self, filename: str) -> str:
        return file_key(self.name, self.version, filename)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "artifact": self.artifact_key,
            "format": "onnx",
            "sha256": self.sha256,
            "size": self.size,
            "signature": self.signature.to_dict(),
            "created_at": self.created_at,
            "metrics": dict(self.metrics),
            "metadata": dict(self.metadata),
            "lineage": dict(self.lineage),
            "files": {name: entry.to_dict() for name, entry in self.files.items()},
            **({"processing": dict(self.processing)} if self.processing is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(
            name=data["name"],
            version=int(data["version"]),
            sha256=data["sha256"],
            size=int(data["size"]),
            signature=Signature.from_dict(data["signature"]),
            created_at=data["created_at"],
            metrics=data.get("metrics", {}),
            metadata=data.get("metadata", {}),
            lineage=data.get("lineage", {}),
            extra_files={
                filename: PackageFile(sha256=entry["sha256"], size=int(entry["size"]))
                for filename, entry in (data.get("files") or {}).items()
                if filename != MODEL_FILE
            },
            processing=data.get("processing"),
        )


class Registry:
    """Publish, resolve and list model versions in one bucket."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        max_model_bytes: int = 200 * 1024 * 1024,
        inspect: Callable[[bytes], Signature] = inspect_model,
    ) -> None:
        self.store = store
        self.max_model_bytes = max_model_bytes
        self._inspect = inspect

    # publishing ------------------------------------------------------------

    def publish(
        self,
        name: str,
        model_bytes: bytes,
        *,
        files: Mapping[str, bytes] | None = None,
        processing: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
        move_latest: bool = True,
    ) -> Manifest:
        """Validate and publish ``model_bytes`` as the next version of ``name``.

        Nothing is written unless the file loads in onnxruntime. The manifest is written
        last, so a crash part-way leaves a claimed number but no visible version.
        ``move_latest=False`` leaves ``latest`` to a later :meth:`advance_latest`, for a
        workflow that must not move any alias unless it finishes.

        ``files`` (e.g. ``tokenizer.json``) are stored beside the model and checksummed in
        the manifest; ``processing`` says how text becomes inputs and outputs become the
        answer (see ``maaskit.onnxmodel.text``), and is checked against the model and its tokenizer.
        """
        validate_name(name)
        for alias in aliases:
            validate_alias(alias)
        extra = {validate_file_name(filename): data for filename, data in (files or {}).items()}
        for filename, data in {MODEL_FILE: model_bytes, **extra}.items():
            if len(data) > self.max_model_bytes:
                raise PayloadTooLarge(
                    f"{filename} is {len(data)} bytes; the limit is {self.max_model_bytes} "
                    "(MAASKIT_MAX_MODEL_MB)"
                )
        signature = self._inspect(model_bytes)
        declared = None
        if processing is not None:
            from maaskit.onnxmodel.text import check_package

            declared = check_package(processing, signature, model_bytes, extra).to_dict()
        version = self._claim_version(name, model_bytes)
        for filename, data in extra.items():  # before the manifest: it publishes them all
            self.store.put(
                file_key(name, version, filename), data, if_none_match=True, checksum=BULK_CHECKSUM
            )
        manifest = Manifest(
            name=name,
            version=version,
            sha256=hashlib.sha256(model_bytes).hexdigest(),
            size=len(model_bytes),
            signature=signature,
            created_at=_now(),
            metrics=dict(metrics or {}),
            metadata=dict(metadata or {}),
            lineage=dict(lineage or {}),
            extra_files={filename: PackageFile.of(data) for filename, data in extra.items()},
            processing=declared,
        )
        self.store.put_json(manifest_key(name, version), manifest.to_dict(), if_none_match=True)
        if move_latest:
            self._advance_alias(name, LATEST, version)
        for alias in aliases:
            self.set_alias(name, alias, version)
        return manifest

    def _claimed_versions(self, name: str) -> list[int]:
        segments = self.store.list_prefixes(f"models/{name}/versions/")
        return sorted(int(s) for s in segments if s.isdigit())

    def _claim_version(self, name: str, model_bytes: bytes) -> int:
        claimed = self._claimed_versions(name)
        candidate = (claimed[-1] if claimed else 0) + 1
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                # S3's CRC32 catches a damaged transfer; the manifest's sha256, checked by
                # every loader, is the integrity check: a second SHA-256 pass at every fetch
                # (botocore checks what the object was stored with) would buy nothing
                self.store.put(
                    artifact_key(name, candidate),
                    model_bytes,
                    if_none_match=True,
                    checksum=BULK_CHECKSUM,
                )
            except AlreadyExists:
                candidate += 1
                continue
            return candidate
        raise AlreadyExists(
            f"could not claim a version of {name!r}: too many concurrent publishers"
        )

    def _advance_alias(self, name: str, alias: str, version: int) -> None:
        """Move ``alias`` to ``version`` unless it already points at a newer one."""
        key = alias_key(name, alias)
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                current: StoredObject | None = self.store.get(key)
            except NotFound:
                current = None
            if current is not None and (_version_in(current.body) or 0) >= version:
                return  # a corrupt alias (no version in it) is repaired by this write
            body = {"version": version, "updated_at": _now()}
            try:
                if current is None:
                    self.store.put_json(key, body, if_none_match=True)
                else:
                    self.store.put_json(key, body, if_match=current.etag)
            except AlreadyExists:
                continue
            return

    def advance_latest(self, name: str, version: int) -> None:
        """Move ``latest`` to ``version`` unless it already points at a newer one."""
        self.get_manifest(name, version)  # raises NotFound for an unpublished version
        self._advance_alias(name, LATEST, version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``, which must be published."""
        validate_name(name)
        validate_alias(alias)
        self.get_manifest(name, version)  # raises NotFound for an unpublished version
        self.store.put_json(alias_key(name, alias), {"version": version, "updated_at": _now()})

    # reading ---------------------------------------------------------------

    def get_manifest(self, name: str, version: int) -> Manifest:
        """The manifest of a published version; ``CorruptObject`` if it cannot be one."""
        validate_name(name)
        key = manifest_key(name, version)
        what = f"model {name!r} version {version}"
        try:
            data = self.store.get_json(key)
        except NotFound:
            if not self.list_versions(name):
                raise NotFound(f"model {name!r} does not exist") from None
            raise NotFound(f"model {name!r} has no version {version}") from None
        except StoredObjectError as err:
            raise type(err)(f"{what} cannot be served: its manifest {err.message}") from None
        try:
            manifest = Manifest.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            problem = f"missing {err}" if isinstance(err, KeyError) else str(err)
            raise CorruptObject(
                f"{what} cannot be served: {self.store.uri(key)} is not a valid manifest "
                f"({problem}); publish the model again"
            ) from None
        if (manifest.name, manifest.version) != (name, version):
            raise CorruptObject(
                f"{what} cannot be served: {self.store.uri(key)} describes model "
                f"{manifest.name!r} version {manifest.version}; publish the model again"
            )
        return manifest

    def is_published(self, name: str, version: int) -> bool:
        """A version is published exactly while its manifest exists (one HEAD request)."""
        return self.store.exists(manifest_key(name, version))

    def get_alias(self, name: str, alias: str) -> int:
        """The version ``alias`` points at; ``CorruptObject`` if the alias file is not one."""
        validate_name(name)
        validate_alias(alias)
        key = alias_key(name, alias)
        try:
            data = self.store.get(key).body
        except NotFound:
            if not self.list_versions(name):
                raise NotFound(f"model {name!r} does not exist") from None
            known = ", ".join(sorted(self.aliases(name))) or "none"
            raise NotFound(f"model {name!r} has no alias {alias!r} (aliases: {known})") from None
        except StoredObjectError as err:
            raise type(err)(f"model {name!r}: its alias {alias!r} {err.message}") from None
        number = _version_in(data)
        if number is None:
            raise CorruptObject(
                f"model {name!r}: its alias {alias!r} ({self.store.uri(key)}) is not a JSON "
                'object like {"version": 3}; point it at a version again (maaskit models '
                f"promote {name} --version N --alias {alias})"
            )
        return number

    def resolve_version(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> int:
        """The version number a request means: explicit, through an alias, or ``latest``."""
        validate_name(name)
        if version is not None and alias is not None:
            raise InvalidName("give either a version or an alias, not both")
        if version is not None:
            return parse_version(version)
        return self.get_alias(name, alias or LATEST)

    def resolve(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> Manifest:
        return self.get_manifest(name, self.resolve_version(name, version=version, alias=alias))

    def list_models(self) -> list[str]:
        return sorted(self.store.list_prefixes("models/"))

    def list_versions(self, name: str) -> list[int]:
        """Published versions only: a claimed number without a manifest is not a version."""
        validate_name(name)
        prefix = f"models/{name}/versions/"
        versions = []
        for info in self.store.list_keys(prefix):
            rest = info.key[len(prefix) :]
            number, _, leaf = rest.partition("/")
            if leaf == "manifest.json" and number.isdigit():
                versions.append(int(number))
        return sorted(versions)

    def aliases(self, name: str) -> dict[str, int]:
        validate_name(name)
        prefix = f"models/{name}/aliases/"
        found: dict[str, int] = {}
        for info in self.store.list_keys(prefix):
            alias = info.key[len(prefix) :].removesuffix(".json")
            found[alias] = self.get_alias(name, alias)
        return found

    def catalog(self) -> dict[str, Any]:
        """Every model with its versions and aliases; a model whose aliases cannot be read is
        listed under ``skipped`` with the reason, so one corrupt file hides only its model."""
        models: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        for name in self.list_models():
            try:
                versions = self.list_versions(name)
                if versions:  # only claimed numbers: nothing published yet
                    models.append(
                        {"name": name, "versions": versions, "aliases": self.aliases(name)}
                    )
            except (StoredObjectError, InvalidName) as err:
                skipped.append({"name": name, "reason": err.message})
        return {"models": models, "skipped": skipped}

    def describe(self, name: str) -> dict[str, Any]:
        """Versions, aliases and the latest signature and metrics, for listings and the API."""
        versions = self.list_versions(name)
        if not versions:
            raise NotFound(f"model {name!r} does not exist")
        aliases = self.aliases(name)
        manifests = [self.get_manifest(name, v).to_dict() for v in versions]
        return {"name": name, "aliases": aliases, "versions": manifests}

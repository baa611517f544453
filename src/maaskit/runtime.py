"""ONNX sessions: load by reference, verify, cache, run.

Warm invocations must never touch S3 for an artifact: sessions stay in an in-memory LRU
bounded by bytes, files stay in ``/tmp`` keyed by sha256 (so a model evicted from memory,
or shared by two names, is not downloaded twice), and aliases are re-resolved only after a
short TTL so that promoting a version takes effect without a redeploy.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maaskit.errors import IntegrityError, InvalidRequest, MaaskitError
from maaskit.registry import LATEST, Manifest, Registry
from maaskit.settings import Settings
from maaskit.signature import Signature
from maaskit.store import ObjectStore
from maaskit.tensors import prepare_inputs


class ModelRunError(MaaskitError):
    """onnxruntime refused an input that passed our checks (e.g. a token id out of range)."""

    http_status = 422


def default_threads() -> int:
    """Threads for onnxruntime: one per vCPU this sandbox may use (Lambda scales vCPUs with memory)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class LoadedModel:
    """A verified model with its session, ready to run."""

    manifest: Manifest
    session: Any  # onnxruntime.InferenceSession
    load_ms: float

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def signature(self) -> Signature:
        return self.manifest.signature

    def prepare(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return prepare_inputs(self.signature, values)

    def run(
        self, inputs: Mapping[str, np.ndarray], output_names: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run already-prepared inputs; return the requested outputs (all by default)."""
        names = [spec.name for spec in self.signature.outputs]
        if output_names is not None:
            wanted = list(output_names)
            unknown = [n for n in wanted if n not in names]
            if unknown:
                raise InvalidRequest(
                    f"unknown output {unknown[0]!r}; the model returns: {', '.join(map(repr, names))}"
                )
            names = wanted
        try:
            results = self.session.run(names, dict(inputs))
        except Exception as err:
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelRunError(
                f"model {self.name!r} version {self.version} could not run on this input: "
                f"{message[:300]}"
            ) from None
        return dict(zip(names, results, strict=True))

    def predict(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return self.run(self.prepare(values))


class _SessionCache:
    """LRU of loaded models, bounded by the bytes of their artifacts."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self._items: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()

    def get(self, key: tuple[str, int]) -> LoadedModel | None:
        model = self._items.get(key)
        if model is not None:
            self._items.move_to_end(key)
        return model

    def put(self, key: tuple[str, int], model: LoadedModel) -> None:
        if key in self._items:
            return
        self._items[key] = model
        self.used_bytes += model.manifest.size
        while self.used_bytes > self.capacity_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self.used_bytes -= evicted.manifest.size

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class Runtime:
    """Resolves references to versions and hands out loaded models."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_bytes: int = 1024 * 1024 * 1024,
        cache_dir: Path = Path("/tmp/maaskit"),
        disk_cache_bytes: int = 400 * 1024 * 1024,
        alias_ttl_seconds: float = 10.0,
        intra_op_threads: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.registry = registry
        self.cache_dir = cache_dir
        self.disk_cache_bytes = disk_cache_bytes
        self.alias_ttl_seconds = alias_ttl_seconds
        self.intra_op_threads = intra_op_threads or default_threads()
        self._clock = clock
        self._sessions = _SessionCache(cache_bytes)
        self._aliases: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._on_load = on_load

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: ObjectStore | None = None,
        on_load: Callable[[LoadedModel], None] | None = None,
    ) -> Runtime:
        store = store or ObjectStore(settings.bucket)
        return cls(
            Registry(store, max_model_bytes=settings.max_model_bytes),
            cache_bytes=settings.model_cache_bytes,
            cache_dir=settings.cache_dir,
            disk_cache_bytes=settings.disk_cache_bytes,
            alias_ttl_seconds=settings.alias_ttl_seconds,
            intra_op_threads=settings.intra_op_threads,
            on_load=on_load,
        )

    def prepare(self) -> None:
        """Do the per-sandbox work up front: the S3 client and the onnxruntime import.

        Called from a handler's init phase, where it is snapshotted by Lambda SnapStart
        (and runs with the init phase's full CPU) instead of delaying the first request.
        """
        import onnxruntime  # noqa: F401

        _ = self.registry.store.client

    # resolution ------------------------------------------------------------

    def resolve_version(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> int:
        """As ``Registry.resolve_version``, with aliases trusted for ``alias_ttl_seconds``."""
        if version is not None:  # no I/O: the registry only validates
            return self.registry.resolve_version(name, version=version, alias=alias)
        key = (name, alias or LATEST)
        now = self._clock()
        cached = self._aliases.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        number = self.registry.resolve_version(name, alias=key[1])
        self._aliases[key] = (number, now + self.alias_ttl_seconds)
        return number

    def is_loaded(self, name: str, version: int) -> bool:
        return (name, version) in self._sessions

    # loading ---------------------------------------------------------------

    def load(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> LoadedModel:
        number = self.resolve_version(name, version=version, alias=alias)
        key = (name, number)
        model = self._sessions.get(key)
        if model is not None:
            return model
        with self._lock:  # one download and one session per model, even under threads
            model = self._sessions.get(key)
            if model is None:
                model = self._load_verified(self.registry.get_manifest(name, number))
                self._sessions.put(key, model)
                if self._on_load is not None:
                    self._on_load(model)
        return model

    def _cached_file(self, sha256: str) -> Path:
        return self.cache_dir / f"{sha256}.onnx"

    def _fetch_verified(self, manifest: Manifest) -> bytes:
        path = self._cached_file(manifest.sha256)
        if path.exists():
            path.touch()  # most recently used
            return path.read_bytes()  # written only after its hash matched
        data = self.registry.store.get_bytes(manifest.artifact_key)
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest.sha256:
            raise IntegrityError(
                f"model {manifest.name!r} version {manifest.version} failed its integrity check "
                f"(stored file sha256 {digest[:12]}… differs from the manifest's "
                f"{manifest.sha256[:12]}…); it will not be served: republish the model"
            )
        self._keep_on_disk(path, data)
        return data

    def _keep_on_disk(self, path: Path, data: bytes) -> None:
        """Write atomically, evicting the least recently used files to stay under budget."""
        if len(data) > self.disk_cache_bytes:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            files = sorted(self.cache_dir.glob("*.onnx"), key=lambda f: f.stat().st_mtime)
            used = sum(f.stat().st_size for f in files)
            while files and used + len(data) > self.disk_cache_bytes:
                oldest = files.pop(0)
                used -= oldest.stat().st_size
                oldest.unlink(missing_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
            partial.write_bytes(data)
            partial.replace(path)
        except OSError:
            pass  # a full or read-only /tmp costs a re-download on eviction, nothing more

    def _new_session(self, data: bytes) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    def _load_verified(self, manifest: Manifest) -> LoadedModel:
        started = time.perf_counter()
        data = self._fetch_verified(manifest)
        session = self._new_session(data)
        return LoadedModel(
            manifest=manifest, session=session, load_ms=(time.perf_counter() - started) * 1000
        )

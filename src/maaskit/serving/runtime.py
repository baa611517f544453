"""ONNX sessions: load by reference, verify, cache, run.

Warm invocations must never touch S3 for an artifact: sessions stay in an in-memory LRU
bounded by bytes, files stay in ``/tmp`` keyed by sha256 (so a model evicted from memory,
or shared by two names, is not downloaded twice), and aliases are re-resolved only after a
short TTL so that promoting a version takes effect without a redeploy.

Every file of a package (``model.onnx``, ``tokenizer.json``) is streamed to ``/tmp`` while
it is hashed, and only a file whose hash matches its manifest is renamed into the cache;
the session is built from that file, so a model is never held twice in memory.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maaskit.errors import IntegrityError, InvalidRequest, MaaskitError, StoreUnavailable
from maaskit.onnxmodel.signature import Signature
from maaskit.onnxmodel.tensors import all_finite, prepare_inputs
from maaskit.registry.catalog import LATEST, MODEL_FILE, Manifest, PackageFile, Registry
from maaskit.registry.store import ObjectStore
from maaskit.settings import DEFAULT_CACHE_DIR, Settings

if TYPE_CHECKING:
    from maaskit.onnxmodel.text import TextEncoder, TextModel, TextProcessing

_READ_BYTES = 1024 * 1024
_PARTIAL = ".part"


class ModelRunError(MaaskitError):
    """onnxruntime refused an input that passed our checks (e.g. a token id out of range)."""

    http_status = 422


class NonFiniteOutput(ModelRunError):
    """The model computed NaN or infinity for this input: JSON cannot carry it, and a
    number that silently became ``null`` is a wrong answer, so the input is refused (400)."""

    http_status = 400


def _check_finite(manifest: Manifest, outputs: Mapping[str, np.ndarray]) -> None:
    for name, array in outputs.items():
        if array.dtype.kind == "f" and not all_finite(array):
            raise NonFiniteOutput(
                f"model {manifest.name!r} version {manifest.version} computed NaN or infinity "
                f"in output {name!r} for this input: check that the input is on the scale the "
                "model was trained on"
            )


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
    text: TextModel | None = None  # when the package takes text: its processing and tokenizer

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def signature(self) -> Signature:
        return self.manifest.signature

    @property
    def processing(self) -> TextProcessing | None:
        """The package's processing, when it takes text (as :attr:`text` holds it)."""
        return self.text.processing if self.text is not None else None

    @property
    def encoder(self) -> TextEncoder | None:
        """The package's tokenizer, when it takes text (as :attr:`text` holds it)."""
        return self.text.encoder if self.text is not None else None

    @cached_property
    def output_names(self) -> tuple[str, ...]:
        """Every output, in the signature's order (what :meth:`run` returns by default)."""
        return tuple(spec.name for spec in self.signature.outputs)

    def prepare(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return prepare_inputs(self.signature, values)

    def run(
        self, inputs: Mapping[str, np.ndarray], output_names: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run already-prepared inputs; return the requested outputs (all by default)."""
        names: Sequence[str] = self.output_names
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
        outputs = dict(zip(names, results, strict=True))
        _check_finite(self.manifest, outputs)
        return outputs

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
        self.used_bytes += model.manifest.package_bytes
        while self.used_bytes > self.capacity_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self.used_bytes -= evicted.manifest.package_bytes

    def discard(self, key: tuple[str, int]) -> None:
        evicted = self._items.pop(key, None)
        if evicted is not None:
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
        cache_dir: Path = DEFAULT_CACHE_DIR,
        disk_cache_bytes: int = 400 * 1024 * 1024,
        alias_ttl_seconds: float = 10.0,
        intra_op_threads: int = 0,
        spin_wait: bool = True,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[LoadedModel], None] | None = None,
        on_integrity_failure: Callable[[str, int], None] | None = None,
    ) -> None:
        self.registry = registry
        self.cache_dir = cache_dir
        self.disk_cache_bytes = disk_cache_bytes
        self.alias_ttl_seconds = alias_ttl_seconds
        self.intra_op_threads = intra_op_threads or default_threads()
        self.spin_wait = spin_wait
        self._clock = clock
        self._sessions = _SessionCache(cache_bytes)
        self._aliases: dict[tuple[str, str], tuple[int, float]] = {}
        self._published_until: dict[tuple[str, int], float] = {}
        self._last_good: dict[tuple[str, str], int] = {}  # alias -> the version it last served
        self._lock = threading.Lock()
        self._on_load = on_load
        self._on_integrity_failure = on_integrity_failure

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: ObjectStore | None = None,
        on_load: Callable[[LoadedModel], None] | None = None,
        on_integrity_failure: Callable[[str, int], None] | None = None,
        *,
        registry: Registry | None = None,
        spin_wait: bool = True,
    ) -> Runtime:
        if registry is None:
            store = store or ObjectStore(settings.bucket)
            registry = Registry(store, max_model_bytes=settings.max_model_bytes)
        return cls(
            registry,
            cache_bytes=settings.model_cache_bytes,
            cache_dir=settings.cache_dir,
            disk_cache_bytes=settings.disk_cache_bytes,
            alias_ttl_seconds=settings.alias_ttl_seconds,
            intra_op_threads=settings.intra_op_threads,
            spin_wait=spin_wait,
            on_load=on_load,
            on_integrity_failure=on_integrity_failure,
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
        try:
            number = self.registry.resolve_version(name, alias=key[1])
        except StoreUnavailable:
            if cached is None:
                raise
            number = cached[0]  # S3 failing past its retries: keep the alias as last read
        self._aliases[key] = (number, now + self.alias_ttl_seconds)
        return number

    def is_loaded(self, name: str, version: int) -> bool:
        return (name, version) in self._sessions

    def _still_published(self, key: tuple[str, int]) -> bool:
        """Whether a loaded version's manifest still exists, re-checked once per alias TTL.

        A version is published exactly while its manifest exists: one deleted stops being
        served within ``alias_ttl_seconds``, and a warm request inside the TTL makes no S3 call.
        """
        now = self._clock()
        if self._published_until.get(key, now) > now:
            return True
        try:
            published = self.registry.is_published(*key)
        except StoreUnavailable:  # S3 failing past its retries: serve what was verified
            published = True
        if published:
            self._published_until[key] = now + self.alias_ttl_seconds
            return True
        with self._lock:
            self._sessions.discard(key)
            self._published_until.pop(key, None)
        return False

    # loading ---------------------------------------------------------------

    def load(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> LoadedModel:
        number = self.resolve_version(name, version=version, alias=alias)
        if version is not None:
            return self._load_number(name, number)
        alias_ref = (name, alias or LATEST)
        try:
            model = self._load_number(name, number)
        except IntegrityError as refused:
            model = self._keep_serving(alias_ref, number, refused)
        self._last_good[alias_ref] = model.version
        return model

    def _keep_serving(
        self, alias_ref: tuple[str, str], refused_number: int, refused: IntegrityError
    ) -> LoadedModel:
        """An alias moved to a version that failed its integrity check: it keeps serving the
        version it served before (re-trying the new one each TTL), or the refusal stands."""
        previous = self._last_good.get(alias_ref)
        if previous is None or previous == refused_number:
            raise refused
        try:
            model = self._load_number(alias_ref[0], previous)
        except MaaskitError:
            raise refused from None
        self._aliases[alias_ref] = (previous, self._clock() + self.alias_ttl_seconds)
        return model

    def _load_number(self, name: str, number: int) -> LoadedModel:
        key = (name, number)
        model = self._sessions.get(key)
        if model is not None and self._still_published(key):
            return model
        with self._lock:  # one download and one session per model, even under threads
            model = self._sessions.get(key)
            if model is None:
                try:
                    model = self._load_verified(self.registry.get_manifest(name, number))
                except IntegrityError:
                    if self._on_integrity_failure is not None:
                        self._on_integrity_failure(name, number)
                    raise
                self._sessions.put(key, model)
                self._published_until[key] = self._clock() + self.alias_ttl_seconds
                if self._on_load is not None:
                    self._on_load(model)
        return model

    def _cached_file(self, filename: str, sha256: str) -> Path:
        return self.cache_dir / f"{sha256}{Path(filename).suffix}"

    def _verified_file(self, manifest: Manifest, filename: str, entry: PackageFile) -> Path | bytes:
        """The file, verified against the manifest: a path in /tmp, or bytes if /tmp fails.

        Downloaded in chunks into a partial file while hashing; only a complete file whose
        sha256 matches is renamed into the cache, so nothing half-written or tampered with is
        ever found there. A file over the disk budget is verified the same way and removed
        by the caller once used.
        """
        path = self._cached_file(filename, entry.sha256)
        if self._still_intact(path, entry.sha256):
            path.touch()  # most recently used
            return path
        try:
            self._own_cache_dir()
            self._make_room(entry.size)
            partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}{_PARTIAL}")
            handle = partial.open("wb")
        except OSError:  # a read-only or full /tmp: verify in memory instead
            data = self.registry.store.get_bytes(manifest.file_key(filename))
            self._check_digest(manifest, filename, entry, hashlib.sha256(data).hexdigest())
            return data
        digest = hashlib.sha256()
        try:
            body, _ = self.registry.store.open(manifest.file_key(filename))
            with closing(body), handle:
                for chunk in iter(lambda: body.read(_READ_BYTES), b""):
                    digest.update(chunk)
                    handle.write(chunk)
            self._check_digest(manifest, filename, entry, digest.hexdigest())
            if entry.size > self.disk_cache_bytes:
                return partial  # verified, used once, then removed (see _load_verified)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path

    def _own_cache_dir(self) -> None:
        """Create the cache folder for this user only; refuse one that others could write.

        Outside Lambda the folder is under a shared ``/tmp``: a folder someone else made
        first could hold files they chose. Raising ``OSError`` verifies in memory instead.
        """
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.cache_dir.stat().st_uid != os.getuid():
            raise PermissionError(f"{self.cache_dir} belongs to another user")
        self.cache_dir.chmod(0o700)

    @staticmethod
    def _still_intact(path: Path, sha256: str) -> bool:
        """Whether a cached file still hashes to its name; a changed one is removed.

        Files are renamed into the cache only once verified, but one may be damaged since:
        hashing again at load costs far less than serving a model nobody published.
        """
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(_READ_BYTES), b""):
                    digest.update(chunk)
        except OSError:
            return False
        if digest.hexdigest() == sha256:
            return True
        path.unlink(missing_ok=True)
        return False

    @staticmethod
    def _check_digest(manifest: Manifest, filename: str, entry: PackageFile, digest: str) -> None:
        if digest != entry.sha256:
            raise IntegrityError(
                f"model {manifest.name!r} version {manifest.version} failed its integrity check "
                f"({filename} sha256 {digest[:12]}… differs from the manifest's "
                f"{entry.sha256[:12]}…); it will not be served: republish the model"
            )

    def _make_room(self, size: int) -> None:
        """Evict the least recently used cached files so that ``size`` more bytes fit."""
        if size > self.disk_cache_bytes:
            return
        files = sorted(
            (f for f in self.cache_dir.iterdir() if f.is_file() and not f.name.endswith(_PARTIAL)),
            key=lambda f: f.stat().st_mtime,
        )
        used = sum(f.stat().st_size for f in files)
        while files and used + size > self.disk_cache_bytes:
            oldest = files.pop(0)
            used -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)

    def _new_session(self, model: Path | bytes) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        if not self.spin_wait:
            # onnxruntime's idle workers busy-wait for the next run by default: the lowest
            # latency for back-to-back calls, but between a batch job's runs the Python
            # thread is parsing, and a spinning worker takes the vCPU it needs (1.8x slower
            # JSON Lines on two vCPUs). Parked workers wake in microseconds.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = str(model) if isinstance(model, Path) else model
        return ort.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _load_verified(self, manifest: Manifest) -> LoadedModel:
        started = time.perf_counter()
        local = {
            filename: self._verified_file(manifest, filename, entry)
            for filename, entry in manifest.files.items()
        }
        try:
            session = self._new_session(local[MODEL_FILE])
            text = _text_model(manifest, local)
        finally:
            for item in local.values():
                if isinstance(item, Path) and item.name.endswith(_PARTIAL):
                    item.unlink(missing_ok=True)
        return LoadedModel(
            manifest=manifest,
            session=session,
            load_ms=(time.perf_counter() - started) * 1000,
            text=text,
        )


def _text_model(manifest: Manifest, local: Mapping[str, Path | bytes]) -> TextModel | None:
    """The package's processing and tokenizer when it takes text (tokenizers loads here)."""
    if manifest.processing is None:
        return None
    from maaskit.onnxmodel.text import TextModel, TextProcessing

    processing = TextProcessing.from_dict(manifest.processing)
    if processing.input is None:
        return None
    source = local[processing.input.tokenizer]
    data = source.read_bytes() if isinstance(source, Path) else source
    return TextModel.load(processing, data.decode("utf-8"))

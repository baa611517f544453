"""Each function's environment variables in ``os.environ`` while it runs.

``os.environ`` is one per process, so invocations running at once share it: layers are
pushed and popped (:class:`EnvironOverlay`). A process that exists to run the functions (the
local stack) keeps what they all share applied, and the last function's own variables stay
applied after its invocation, as a warm sandbox keeps its environment
(:class:`FunctionEnvironments`), instead of setting and restoring every variable per call.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType

from maaskit.local.lambda_function import FunctionSpec


class _SnapshotEnviron(os._Environ[str]):  # the class of os.environ itself
    """``os.environ`` whose iterations read one snapshot of it.

    ``os.environ.items()`` lists the keys, then reads each: a key that another thread's
    invocation removes in between is a ``KeyError`` in code that never touched it (botocore's
    proxy lookup does this on every request). Here the keys and values come from one copy of
    the underlying dict, taken atomically. Reads of one key and writes are unchanged.
    """

    def _snapshot(self) -> dict[str, str]:
        data = self._data.copy()  # type: ignore[attr-defined]  # os._Environ's own dict
        return {self.decodekey(key): self.decodevalue(value) for key, value in data.items()}

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot())

    def keys(self) -> KeysView[str]:
        return self._snapshot().keys()

    def items(self) -> ItemsView[str, str]:
        return self._snapshot().items()

    def values(self) -> ValuesView[str]:
        return self._snapshot().values()

    def copy(self) -> dict[str, str]:
        return self._snapshot()


def _snapshot_iterations() -> None:
    """Give ``os.environ`` snapshot iterations, once per process, before it is shared."""
    if type(os.environ) is os._Environ:
        os.environ.__class__ = _SnapshotEnviron


class EnvironOverlay:
    """Layers of environment variables applied to ``os.environ`` while invocations run.

    A variable set by two running invocations holds the value of the one that started last,
    and it goes back to its original value once no running invocation sets it. Handlers that
    read their settings once at cold start (import runs under the function's exact
    environment) never notice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._layers: dict[int, Mapping[str, str]] = {}
        self._saved: dict[str, str | None] = {}
        self._tokens = itertools.count()

    @contextmanager
    def applied(self, env: Mapping[str, str]) -> Iterator[None]:
        if not env:
            yield
            return
        token = self.push(env)
        try:
            yield
        finally:
            self.pop(token)

    def push(self, env: Mapping[str, str]) -> int:
        _snapshot_iterations()
        with self._lock:
            token = next(self._tokens)
            self._layers[token] = dict(env)
            for key, value in env.items():
                if key not in self._saved:
                    self._saved[key] = os.environ.get(key)
                os.environ[key] = value
            return token

    def pop(self, token: int) -> None:
        with self._lock:
            env = self._layers.pop(token)
            for key in env:
                still = [layer[key] for layer in self._layers.values() if key in layer]
                if still:
                    os.environ[key] = still[-1]
                    continue
                original = self._saved.pop(key, None)
                if original is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = original


ENVIRON = EnvironOverlay()  # one process, one os.environ: every router shares it


class FunctionEnvironments:
    """The environments of one router's functions: resident common part, one warm function."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resident: dict[str, str] = {}
        self._resident_token: int | None = None
        self._differences: dict[str, Mapping[str, str]] = {}
        self._warm_function: str | None = None
        self._warm_token: int | None = None
        self._running: dict[str, int] = {}

    @property
    def keeping(self) -> bool:
        """Whether a common environment is kept applied."""
        return self._resident_token is not None

    def keep_common(self, specs: list[FunctionSpec]) -> dict[str, str]:
        """Apply what every spec's environment shares, until :meth:`release`."""
        common = dict(specs[0].runtime_environment) if specs else {}
        for spec in specs[1:]:
            env = spec.runtime_environment
            common = {k: v for k, v in common.items() if env.get(k) == v}
        with self._lock:
            self._release()
            self._resident = common
            self._resident_token = ENVIRON.push(common)
        return common

    def forget(self, function_name: str) -> None:
        """A function was registered again: its environment may have changed."""
        with self._lock:
            self._differences.pop(function_name, None)
            if self._warm_function == function_name:
                self._drop_warm()

    def release(self) -> None:
        """Put the process environment back as it was before :meth:`keep_common`."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        self._drop_warm()
        if self._resident_token is not None:
            ENVIRON.pop(self._resident_token)
        self._resident_token = None
        self._resident = {}
        self._differences.clear()

    def _drop_warm(self) -> None:
        if self._warm_token is not None:
            ENVIRON.pop(self._warm_token)
        self._warm_token = None
        self._warm_function = None

    def applied(self, spec: FunctionSpec) -> AbstractContextManager[None]:
        """The function's variables in ``os.environ`` while it runs (kept warm when resident).

        A plain context manager object rather than a generator: it is entered on every
        invocation, and a warm function's costs no more than two lock round trips.
        """
        return _Applied(self, spec)

    def _enter(self, spec: FunctionSpec) -> int | None:
        """Count the function as running; the overlay token to pop when it ends, if any."""
        own = self._own(spec)
        with self._lock:
            reuse = self._warm_function == spec.name
            if not reuse and self._resident_token is not None and own:
                idle = self._warm_function is None or not self._running.get(self._warm_function)
                if idle:  # nothing of the warm function runs: swap it for this one
                    self._drop_warm()
                    self._warm_token = ENVIRON.push(own)
                    self._warm_function = spec.name
                    reuse = True
            self._running[spec.name] = self._running.get(spec.name, 0) + 1
        if reuse or not own:
            return None
        try:
            return ENVIRON.push(own)
        except BaseException:
            self._exit(spec, None)
            raise

    def _exit(self, spec: FunctionSpec, token: int | None) -> None:
        try:
            if token is not None:
                ENVIRON.pop(token)
        finally:
            with self._lock:
                self._running[spec.name] -= 1

    def _own(self, spec: FunctionSpec) -> Mapping[str, str]:
        """The function's variables that the resident environment does not already hold."""
        found = self._differences.get(spec.name)
        if found is None:
            resident = self._resident
            found = {k: v for k, v in spec.runtime_environment.items() if resident.get(k) != v}
            self._differences[spec.name] = found
        return found


class _Applied:
    """One invocation's stay in its function's environment (:meth:`FunctionEnvironments.applied`)."""

    __slots__ = ("_environments", "_spec", "_token")

    def __init__(self, environments: FunctionEnvironments, spec: FunctionSpec) -> None:
        self._environments = environments
        self._spec = spec
        self._token: int | None = None

    def __enter__(self) -> None:
        self._token = self._environments._enter(self._spec)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        self._environments._exit(self._spec, token)

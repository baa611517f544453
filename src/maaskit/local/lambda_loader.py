"""Handlers imported from ``functions/<dir>/app.py`` afresh, once per function: a cold start.

Each router imports its own copy of a handler's module (under a private module name), as a
new sandbox would, under the function's exact environment, with the function's folder first
on ``sys.path`` during the import, as ``/var/task`` is on Lambda, so a handler can import
modules that sit beside it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from types import ModuleType

from maaskit.local.lambda_environment import ENVIRON
from maaskit.local.lambda_function import FunctionSpec, Handler


def _module_name(spec: FunctionSpec, router_id: int) -> str:
    safe = re.sub(r"\W", "_", spec.name)
    return f"_maaskit_local_{router_id}_{safe}"


def load_handler(spec: FunctionSpec, router_id: int) -> Handler:
    """Import the handler's module afresh and return its handler function."""
    module_path, _, attribute = spec.handler.rpartition(".")
    if not module_path or not attribute:
        raise ValueError(f"handler {spec.handler!r} of {spec.name} is not 'module.function'")
    source = spec.code_dir / (module_path.replace(".", "/") + ".py")
    if not source.is_file():
        raise FileNotFoundError(f"handler module of {spec.name} not found: {source}")
    name = _module_name(spec, router_id)
    module_spec = importlib.util.spec_from_file_location(name, source)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    code_dir = str(spec.code_dir)
    sys.path.insert(0, code_dir)
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if code_dir in sys.path:
            sys.path.remove(code_dir)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise AttributeError(f"{source} has no callable {attribute!r} (handler of {spec.name})")
    return handler  # type: ignore[no-any-return]


class HandlerCache:
    """Function name → its imported handler, imported at most once at a time per function."""

    def __init__(self, router_id: int) -> None:
        self._router_id = router_id
        self._handlers: dict[str, Handler] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def forget(self, function_name: str) -> None:
        """The function was registered again: import it afresh at its next invocation."""
        with self._lock:
            self._handlers.pop(function_name, None)
            self._load_locks.setdefault(function_name, threading.Lock())

    def handler(self, spec: FunctionSpec) -> Handler:
        handler = self._handlers.get(spec.name)
        if handler is not None:
            return handler
        with self._lock:
            load_lock = self._load_locks.setdefault(spec.name, threading.Lock())
        with load_lock:
            handler = self._handlers.get(spec.name)
            if handler is None:
                with ENVIRON.applied(spec.runtime_environment):
                    handler = load_handler(spec, self._router_id)
                self._handlers[spec.name] = handler
        return handler

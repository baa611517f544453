"""Run every Lambda invocation of the embedded AWS in this process, with our own handlers.

moto runs Lambda code only in Docker. Direct invokes, S3 notifications and Step Functions
Task states all end in one method, ``moto.awslambda.models.LambdaFunction._invoke_lambda``;
:class:`LambdaRouter` replaces that method while it is installed and sends each call to the
handler in ``functions/<dir>/app.py`` that was registered under the function's name, with a
realistic context and that function's environment. Functions it does not know keep moto's
own behaviour.

Usage::

    router = LambdaRouter()
    router.register("maaskit-ApiFunction", "functions/api", environment={"MAASKIT_BUCKET": b})
    with router.installed():
        ...  # boto3 lambda.invoke, S3 notifications and state machines reach the handler

    router.invoke("maaskit-ApiFunction", event)  # the same path, without going through moto

Failures come back the way the Lambda service reports them (``{"errorType": <exception class
name>, "errorMessage": ...}`` with the error flag set), so Step Functions ``Retry``/``Catch``
match on the class name. moto swallows errors of S3-triggered invocations; the router logs
every failure on the ``maaskit-local.lambda`` logger and keeps the recent ones in
:attr:`LambdaRouter.failures`.

The moto version this hook was written against is pinned in ``pyproject.toml``; the tests in
``tests/integration/test_lambda_router.py`` fail if the hook stops firing.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from maaskit.local.request_ids import new_request_id

# Not under "maaskit": Powertools names its logger after the service ("maaskit") and stops
# propagation there, which would swallow the stack's own messages into a handler's JSON logs.
log = logging.getLogger("maaskit-local.lambda")

TESTED_MOTO_VERSION = "5.2.5"
_HOOKED_METHOD = "_invoke_lambda"  # on moto.awslambda.models.LambdaFunction
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account

Handler = Callable[[Any, Any], Any]


class UnknownFunctionError(LookupError):
    """No handler is registered under that function name."""


@dataclass(frozen=True)
class FunctionSpec:
    """Where a function's code lives and how it runs, as the template declares it."""

    name: str
    code_dir: Path
    handler: str = "app.lambda_handler"
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 3.0
    memory_mb: int = 128
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    @cached_property
    def runtime_environment(self) -> Mapping[str, str]:
        """What the Lambda runtime itself sets, then the function's own variables on top."""
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": self.handler,
        }
        env.update(self.environment)
        return env


class LambdaContext:
    """The context object handlers receive: the attributes Powertools and user code read."""

    def __init__(
        self, spec: FunctionSpec, request_id: str, deadline: float, log_stream: str | None = None
    ) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = str(spec.memory_mb)
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = log_stream or new_log_stream()
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def new_log_stream() -> str:
    """A log stream name as Lambda gives each sandbox: its start date and a random id."""
    return f"{datetime.now(UTC).strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Invocation:
    """One finished invocation: the JSON payload the caller receives, and what happened."""

    function_name: str
    request_id: str
    source: str
    payload: str
    duration_ms: float
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: tuple[str, ...] = ()
    # The handler's reply as it returned it, for a caller in this process that would only
    # decode ``payload`` again (the local API front); ``None`` for failed invocations.
    value: Any = field(default=None, compare=False, repr=False)

    @property
    def errored(self) -> bool:
        return self.error_type is not None

    def result(self) -> Any:
        """The handler's reply (or the error document), decoded."""
        return json.loads(self.payload)

    def log_text(self) -> str:
        lines = [f"START RequestId: {self.request_id} Version: $LATEST"]
        if self.errored:
            lines.append(f"[ERROR] {self.error_type}: {self.error_message}")
            lines.extend(line.rstrip("\n") for line in self.stack_trace)
        lines.append(f"END RequestId: {self.request_id}")
        lines.append(f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms")
        return "\n".join(lines)


class _EnvironOverlay:
    """Layers of environment variables applied to ``os.environ`` while invocations run.

    ``os.environ`` is one per process, so concurrent invocations share it: a variable set by
    two running invocations holds the value of the one that started last, and it goes back to
    its original value once no running invocation sets it. Handlers that read their settings
    once at cold start (import runs under the function's exact environment) never notice.
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


_ENVIRON = _EnvironOverlay()


def _module_name(spec: FunctionSpec, router_id: int) -> str:
    safe = re.sub(r"\W", "_", spec.name)
    return f"_maaskit_local_{router_id}_{safe}"


def _load_handler(spec: FunctionSpec, router_id: int) -> Handler:
    """Import the handler's module afresh, as a new sandbox would: a cold start per router.

    The function's folder is put first on ``sys.path`` during the import, as ``/var/task`` is
    on Lambda, so a handler can import modules that sit beside it.
    """
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


def _source_of(event: Any) -> str:
    """A label for logs: where an event came from, judged by its shape."""
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return str(records[0].get("eventSource", "event")).replace("aws:", "") + " event"
        if "httpMethod" in event and "requestContext" in event:
            return "API request"
    return "invoke"


def _decode_event(event: Any) -> Any:
    if event is None:
        return {}
    if isinstance(event, bytes | str):
        try:
            return json.loads(event or "{}")
        except json.JSONDecodeError:
            return event
    return event


class LambdaRouter:
    """Function name → in-process handler, for moto's Lambda and for the local API front."""

    _ids = itertools.count(1)

    def __init__(self, *, enforce_timeouts: bool = True, keep_failures: int = 100) -> None:
        self.enforce_timeouts = enforce_timeouts
        self.failures: deque[Invocation] = deque(maxlen=keep_failures)
        self._id = next(self._ids)
        self._specs: dict[str, FunctionSpec] = {}
        self._handlers: dict[str, Handler] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        # One invocation at a time per function, as in one Lambda sandbox: handlers keep
        # per-invocation state (Powertools metrics, log keys) at module level.
        self._run_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._resident: dict[str, str] = {}
        self._resident_token: int | None = None
        self._differences: dict[str, Mapping[str, str]] = {}
        # In resident mode, the last function's own variables stay applied after its
        # invocation (as a warm sandbox keeps its environment): the next invocation of the
        # same function sets nothing, instead of setting and restoring each variable.
        self._log_streams: dict[str, str] = {}  # one per sandbox, as on Lambda
        self._warm_function: str | None = None
        self._warm_token: int | None = None
        self._running: dict[str, int] = {}

    # registration ---------------------------------------------------------------------

    def register(
        self,
        function_name: str,
        code_dir: str | Path,
        handler: str = "app.lambda_handler",
        *,
        environment: Mapping[str, str] | None = None,
        timeout_s: float = 3.0,
        memory_mb: int = 128,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT,
    ) -> FunctionSpec:
        """Route ``function_name`` to ``handler`` in ``code_dir``; imported at first invoke."""
        spec = FunctionSpec(
            name=function_name,
            code_dir=Path(code_dir).resolve(),
            handler=handler,
            environment={k: str(v) for k, v in (environment or {}).items()},
            timeout_s=float(timeout_s),
            memory_mb=int(memory_mb),
            region=region,
            account_id=account_id,
        )
        with self._lock:
            self._specs[function_name] = spec
            self._handlers.pop(function_name, None)
            self._log_streams.pop(function_name, None)
            self._load_locks.setdefault(function_name, threading.Lock())
            self._run_locks.setdefault(function_name, threading.Lock())
            self._differences.pop(function_name, None)
            if self._warm_function == function_name:
                self._drop_warm()
            keeping = self._resident_token is not None
        if keeping:  # a function added later: what is common may have shrunk
            self.keep_common_environment()
        return spec

    def keep_common_environment(self) -> dict[str, str]:
        """Apply what every registered function's environment shares until :meth:`uninstall`.

        Each invocation then sets only what is its own, instead of every variable (about
        0.2 ms a call). For a process that exists to run these functions, as the local stack
        does; a test that shares its process with other code should not call it.
        """
        specs = list(self._specs.values())
        common = dict(specs[0].runtime_environment) if specs else {}
        for spec in specs[1:]:
            env = spec.runtime_environment
            common = {k: v for k, v in common.items() if env.get(k) == v}
        with self._lock:
            self._drop_resident()
            self._resident = common
            self._resident_token = _ENVIRON.push(common)
            self._differences.clear()
        return common

    def _drop_resident(self) -> None:
        self._drop_warm()
        if self._resident_token is not None:
            _ENVIRON.pop(self._resident_token)
        self._resident_token = None
        self._resident = {}
        self._differences.clear()

    def _drop_warm(self) -> None:
        if self._warm_token is not None:
            _ENVIRON.pop(self._warm_token)
        self._warm_token = None
        self._warm_function = None

    @contextmanager
    def _environment(self, spec: FunctionSpec) -> Iterator[None]:
        """The function's variables in ``os.environ`` while it runs (kept warm when resident)."""
        own = self._invocation_environment(spec)
        with self._lock:
            reuse = self._warm_function == spec.name
            if not reuse and self._resident_token is not None and own:
                idle = self._warm_function is None or not self._running.get(self._warm_function)
                if idle:  # nothing of the warm function runs: swap it for this one
                    self._drop_warm()
                    self._warm_token = _ENVIRON.push(own)
                    self._warm_function = spec.name
                    reuse = True
            self._running[spec.name] = self._running.get(spec.name, 0) + 1
        try:
            if reuse:
                yield
            else:
                with _ENVIRON.applied(own):
                    yield
        finally:
            with self._lock:
                self._running[spec.name] -= 1

    def _invocation_environment(self, spec: FunctionSpec) -> Mapping[str, str]:
        """The function's variables that the resident environment does not already hold."""
        found = self._differences.get(spec.name)
        if found is None:
            resident = self._resident
            found = {k: v for k, v in spec.runtime_environment.items() if resident.get(k) != v}
            self._differences[spec.name] = found
        return found

    def spec(self, function_name: str) -> FunctionSpec:
        try:
            return self._specs[function_name]
        except KeyError:
            raise UnknownFunctionError(
                f"no local handler for Lambda function {function_name!r}"
            ) from None

    def handles(self, function_name: str) -> bool:
        return function_name in self._specs

    @property
    def function_names(self) -> list[str]:
        return sorted(self._specs)

    # invocation -----------------------------------------------------------------------

    def _handler(self, spec: FunctionSpec) -> Handler:
        handler = self._handlers.get(spec.name)
        if handler is not None:
            return handler
        with self._load_locks[spec.name]:
            handler = self._handlers.get(spec.name)
            if handler is None:
                with _ENVIRON.applied(spec.runtime_environment):
                    handler = _load_handler(spec, self._id)
                self._handlers[spec.name] = handler
        return handler

    def invoke(self, function_name: str, event: Any, *, source: str | None = None) -> Invocation:
        """Run the handler of ``function_name`` on ``event`` and report as Lambda would."""
        spec = self.spec(function_name)
        with self._run_locks[spec.name]:  # the time waited here is not the function's
            return self._invoke(spec, event, source)

    def _invoke(self, spec: FunctionSpec, event: Any, source: str | None) -> Invocation:
        source = source or _source_of(event)
        request_id = new_request_id()
        started = time.monotonic()
        deadline = started + spec.timeout_s
        error: BaseException | None = None
        error_type: str | None = None
        payload = "null"
        with self._environment(spec):
            try:
                handler = self._handler(spec)
            except Exception as err:  # Lambda reports a module that fails to import this way
                error, error_type = err, "Runtime.ImportModuleError"
            else:
                stream = self._log_streams.get(spec.name)
                if stream is None:
                    stream = self._log_streams[spec.name] = new_log_stream()
                try:
                    result = handler(event, LambdaContext(spec, request_id, deadline, stream))
                except Exception as err:  # the handler's failure is the invocation's result
                    error = err
                else:
                    try:
                        payload = json.dumps(result)
                    except (TypeError, ValueError) as err:
                        error, error_type = err, "Runtime.MarshalError"
        duration_ms = (time.monotonic() - started) * 1000
        if error is not None:
            invocation = self._failed(
                spec=spec,
                request_id=request_id,
                source=source,
                duration_ms=duration_ms,
                error=error,
                error_type=error_type,
            )
        elif self.enforce_timeouts and duration_ms > spec.timeout_s * 1000:
            invocation = Invocation(
                function_name=spec.name,
                request_id=request_id,
                source=source,
                payload="",
                duration_ms=duration_ms,
                error_type="Sandbox.Timedout",
                error_message=(
                    f"{request_id} Task timed out after {spec.timeout_s:.2f} seconds "
                    f"(ran {duration_ms / 1000:.2f} s locally; raise the function's Timeout "
                    "or do less per invocation)"
                ),
            )
            invocation = self._with_error_payload(invocation)
        else:
            return Invocation(
                function_name=spec.name,
                request_id=request_id,
                source=source,
                payload=payload,
                duration_ms=duration_ms,
                value=result,
            )
        self._report(invocation)
        return invocation

    def _failed(
        self,
        *,
        spec: FunctionSpec,
        request_id: str,
        source: str,
        duration_ms: float,
        error: BaseException,
        error_type: str | None,
    ) -> Invocation:
        message = str(error)
        if error_type == "Runtime.ImportModuleError":
            message = f"Unable to import module of {spec.name} ({spec.handler}): {error!r}"
        elif error_type == "Runtime.MarshalError":
            message = f"Unable to marshal response: {message}"
        stack = tuple(traceback.format_tb(error.__traceback__))
        invocation = Invocation(
            function_name=spec.name,
            request_id=request_id,
            source=source,
            payload="",
            duration_ms=duration_ms,
            error_type=error_type or type(error).__name__,
            error_message=message,
            stack_trace=stack,
        )
        return self._with_error_payload(invocation)

    @staticmethod
    def _with_error_payload(invocation: Invocation) -> Invocation:
        document = {
            "errorType": invocation.error_type,
            "errorMessage": invocation.error_message,
            "requestId": invocation.request_id,
            "stackTrace": list(invocation.stack_trace),
        }
        return Invocation(
            function_name=invocation.function_name,
            request_id=invocation.request_id,
            source=invocation.source,
            payload=json.dumps(document),
            duration_ms=invocation.duration_ms,
            error_type=invocation.error_type,
            error_message=invocation.error_message,
            stack_trace=invocation.stack_trace,
        )

    def _report(self, invocation: Invocation) -> None:
        self.failures.append(invocation)
        note = ""
        if invocation.source.startswith("s3"):
            note = " (moto drops errors of S3-triggered invocations; this log is where they show)"
        log.error(
            "%s of %s failed%s: %s: %s\n%s",
            invocation.source,
            invocation.function_name,
            note,
            invocation.error_type,
            invocation.error_message,
            "".join(invocation.stack_trace).rstrip(),
        )

    # the moto hook --------------------------------------------------------------------

    def install(self) -> None:
        """Send moto's Lambda invocations of registered functions to this router."""
        _hook.install(self)

    def uninstall(self) -> None:
        _hook.uninstall(self)
        with self._lock:
            self._drop_resident()

    @contextmanager
    def installed(self) -> Iterator[LambdaRouter]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()


class _MotoHook:
    """The one patch of moto, shared by all routers: at most one router is active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: LambdaRouter | None = None
        self._original: Callable[..., tuple[str, bool, str]] | None = None

    @property
    def active(self) -> LambdaRouter | None:
        return self._active

    def install(self, router: LambdaRouter) -> None:
        import moto
        from moto.awslambda.models import LambdaFunction

        with self._lock:
            if self._active is router:
                return
            if self._active is not None:
                raise RuntimeError("another LambdaRouter is installed; uninstall it first")
            if moto.__version__ != TESTED_MOTO_VERSION:
                log.warning(
                    "moto %s is installed; the Lambda hook was tested with %s",
                    moto.__version__,
                    TESTED_MOTO_VERSION,
                )
            self._original = getattr(LambdaFunction, _HOOKED_METHOD)
            hook = self

            def _invoke_lambda(function: Any, event: Any = None) -> tuple[str, bool, str]:
                return hook.dispatch(function, event)

            setattr(LambdaFunction, _HOOKED_METHOD, _invoke_lambda)
            self._active = router

    def uninstall(self, router: LambdaRouter) -> None:
        from moto.awslambda.models import LambdaFunction

        with self._lock:
            if self._active is not router:
                return
            setattr(LambdaFunction, _HOOKED_METHOD, self._original)
            self._active = None
            self._original = None

    def dispatch(self, function: Any, event: Any) -> tuple[str, bool, str]:
        router = self._active
        original = self._original
        if router is None or not router.handles(function.function_name):
            if original is None:  # uninstalled while this call was on its way
                raise UnknownFunctionError(function.function_name)
            return original(function, event)
        invocation = router.invoke(function.function_name, _decode_event(event))
        _save_logs(function, invocation.log_text())
        return invocation.payload, invocation.errored, invocation.log_text()


def _save_logs(function: Any, text: str) -> None:
    """Keep moto's CloudWatch Logs view of the function (best effort, never fails a call)."""
    try:
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs(text)
    except Exception:  # logs are a convenience; the invocation result matters
        log.debug("could not store logs of %s", function.function_name, exc_info=True)


_hook = _MotoHook()


def active_router() -> LambdaRouter | None:
    """The router moto's Lambda is sent to right now, if any."""
    return _hook.active

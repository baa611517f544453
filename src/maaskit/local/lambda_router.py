"""Run every Lambda invocation of the embedded AWS in this process, with our own handlers.

:class:`LambdaRouter` sends each call to the handler in ``functions/<dir>/app.py`` that was
registered under the function's name, with a realistic context and that function's
environment, one invocation at a time per function as in one Lambda sandbox. While it is
installed, moto's Lambda sends it direct invokes, S3 notifications and Step Functions Task
states (:mod:`maaskit.local.moto_hook`); functions it does not know keep moto's own behaviour.

Usage::

    router = LambdaRouter()
    router.register("maaskit-ApiFunction", "functions/api", environment={"MAASKIT_BUCKET": b})
    with router.installed():
        ...  # boto3 lambda.invoke, S3 notifications and state machines reach the handler

    router.invoke("maaskit-ApiFunction", event)  # the same path, without going through moto

Failures come back the way the Lambda service reports them
(:mod:`maaskit.local.lambda_invocation`). moto swallows errors of S3-triggered invocations;
the router logs every failure on the ``maaskit-local.lambda`` logger and keeps the recent
ones in :attr:`LambdaRouter.failures`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maaskit.local.lambda_environment import FunctionEnvironments
from maaskit.local.lambda_function import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    FunctionSpec,
    LambdaContext,
    UnknownFunctionError,
    new_log_stream,
)
from maaskit.local.lambda_invocation import Invocation, run_invocation, source_of
from maaskit.local.lambda_loader import HandlerCache
from maaskit.local.moto_hook import TESTED_MOTO_VERSION, active_router, hook

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "TESTED_MOTO_VERSION",
    "FunctionSpec",
    "Invocation",
    "LambdaContext",
    "LambdaRouter",
    "UnknownFunctionError",
    "active_router",
    "new_log_stream",
]

# Not under "maaskit": Powertools names its logger after the service ("maaskit") and stops
# propagation there, which would swallow the stack's own messages into a handler's JSON logs.
log = logging.getLogger("maaskit-local.lambda")


class LambdaRouter:
    """Function name → in-process handler, for moto's Lambda and for the local API front."""

    _ids = itertools.count(1)

    def __init__(self, *, enforce_timeouts: bool = True, keep_failures: int = 100) -> None:
        self.enforce_timeouts = enforce_timeouts
        self.failures: deque[Invocation] = deque(maxlen=keep_failures)
        self._specs: dict[str, FunctionSpec] = {}
        self._handlers = HandlerCache(next(self._ids))
        self._environments = FunctionEnvironments()
        # One invocation at a time per function, as in one Lambda sandbox: handlers keep
        # per-invocation state (Powertools metrics, log keys) at module level.
        self._run_locks: dict[str, threading.Lock] = {}
        self._log_streams: dict[str, str] = {}  # one per sandbox, as on Lambda
        self._lock = threading.Lock()

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
            self._handlers.forget(function_name)
            self._log_streams.pop(function_name, None)
            self._run_locks.setdefault(function_name, threading.Lock())
            self._environments.forget(function_name)
        if self._environments.keeping:  # a function added later: the common part may shrink
            self.keep_common_environment()
        return spec

    def keep_common_environment(self) -> dict[str, str]:
        """Apply what every registered function's environment shares until :meth:`uninstall`.

        Each invocation then sets only what is its own, instead of every variable (about
        0.2 ms a call). For a process that exists to run these functions, as the local stack
        does; a test that shares its process with other code should not call it.
        """
        return self._environments.keep_common(list(self._specs.values()))

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

    def invoke(self, function_name: str, event: Any, *, source: str | None = None) -> Invocation:
        """Run the handler of ``function_name`` on ``event`` and report as Lambda would."""
        spec = self.spec(function_name)
        with self._run_locks[spec.name]:  # the time waited here is not the function's
            return self._invoke(spec, event, source)

    def _invoke(self, spec: FunctionSpec, event: Any, source: str | None) -> Invocation:
        invocation = run_invocation(
            spec,
            event,
            source=source or source_of(event),
            environment=self._environments.applied(spec),
            load=self._handlers.handler,
            log_stream=self._log_stream,
            enforce_timeout=self.enforce_timeouts,
        )
        if invocation.errored:
            self._report(invocation)
        return invocation

    def _log_stream(self, spec: FunctionSpec) -> str:
        stream = self._log_streams.get(spec.name)
        if stream is None:
            stream = self._log_streams[spec.name] = new_log_stream()
        return stream

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
        hook.install(self)

    def uninstall(self) -> None:
        hook.uninstall(self)
        self._environments.release()

    @contextmanager
    def installed(self) -> Iterator[LambdaRouter]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

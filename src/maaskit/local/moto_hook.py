"""The patch of moto's Lambda: its invocations of registered functions go to a router.

moto runs Lambda code only in Docker. Direct invokes, S3 notifications and Step Functions
Task states all end in one method, ``moto.awslambda.models.LambdaFunction._invoke_lambda``;
while a router is installed, that method sends the functions it knows to the router and
leaves the others to moto. The moto version this hook was written against is pinned in
``pyproject.toml``; ``tests/integration/test_lambda_router.py`` fails if it stops firing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maaskit.local.lambda_function import UnknownFunctionError

if TYPE_CHECKING:
    from maaskit.local.lambda_router import LambdaRouter

log = logging.getLogger("maaskit-local.lambda")

TESTED_MOTO_VERSION = "5.2.5"
_HOOKED_METHOD = "_invoke_lambda"  # on moto.awslambda.models.LambdaFunction


def _decode_event(event: Any) -> Any:
    if event is None:
        return {}
    if isinstance(event, bytes | str):
        try:
            return json.loads(event or "{}")
        except json.JSONDecodeError:
            return event
    return event


def _save_logs(function: Any, text: str) -> None:
    """Keep moto's CloudWatch Logs view of the function (best effort, never fails a call)."""
    try:
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs(text)
    except Exception:  # logs are a convenience; the invocation result matters
        log.debug("could not store logs of %s", function.function_name, exc_info=True)


class MotoHook:
    """The patch, shared by all routers: at most one router is active."""

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


hook = MotoHook()


def active_router() -> LambdaRouter | None:
    """The router moto's Lambda is sent to right now, if any."""
    return hook.active

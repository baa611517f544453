"""What one invocation reports, the way the Lambda service reports it.

A failure is ``{"errorType": <exception class name>, "errorMessage": ..., ...}`` with the
error flag set, so Step Functions ``Retry``/``Catch`` match on the class name; an import
failure, an unmarshallable reply and a timeout get Lambda's own error types.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from maaskit.local.lambda_function import FunctionSpec, Handler, LambdaContext
from maaskit.local.request_ids import new_request_id

IMPORT_ERROR = "Runtime.ImportModuleError"
MARSHAL_ERROR = "Runtime.MarshalError"
TIMEOUT_ERROR = "Sandbox.Timedout"


class Invocation:
    """One finished invocation: the JSON payload the caller receives, and what happened.

    Treated as immutable. A plain class with slots, not a frozen dataclass: one is built per
    request, and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    __slots__ = (
        "_payload",
        "duration_ms",
        "error_message",
        "error_type",
        "function_name",
        "request_id",
        "source",
        "stack_trace",
        "value",
    )

    def __init__(
        self,
        function_name: str,
        request_id: str,
        source: str,
        payload: str | None,
        duration_ms: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        stack_trace: tuple[str, ...] = (),
        value: Any = None,
    ) -> None:
        self.function_name = function_name
        self.request_id = request_id
        self.source = source
        # None: ``value`` is known to encode, and is encoded when the payload is asked for
        # (the local API front never asks: it takes ``value`` as it is)
        self._payload = payload
        self.duration_ms = duration_ms
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = stack_trace
        # The handler's reply as it returned it, for a caller in this process that would
        # only decode ``payload`` again (the local API front); ``None`` for failed ones.
        self.value = value

    @property
    def payload(self) -> str:
        """The reply (or the error document) as JSON, as the Lambda service returns it."""
        if self._payload is None:
            self._payload = json.dumps(self.value)
        return self._payload

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

    def __repr__(self) -> str:
        return (
            f"Invocation(function_name={self.function_name!r}, request_id={self.request_id!r}, "
            f"source={self.source!r}, duration_ms={self.duration_ms:.3f}, "
            f"error_type={self.error_type!r}, error_message={self.error_message!r})"
        )


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_CHECK_DEPTH = 32


def encodes_as_json(value: Any, depth: int = 0) -> bool:
    """Whether ``json.dumps`` takes ``value`` as it is: JSON's own types all the way down.

    ``False`` means "not known": anything else (a subclass, a tuple, a key that is not a
    string, a nesting deeper than a reply's) is left to ``json.dumps`` to judge. A walk of
    a proxy reply's few keys costs a fraction of encoding its body string again.
    """
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if depth >= _CHECK_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in _JSON_SCALARS and not encodes_as_json(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:
            if type(item) not in _JSON_SCALARS and not encodes_as_json(item, depth + 1):
                return False
        return True
    return False


def source_of(event: Any) -> str:
    """A label for logs: where an event came from, judged by its shape."""
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return str(records[0].get("eventSource", "event")).replace("aws:", "") + " event"
        if "httpMethod" in event and "requestContext" in event:
            return "API request"
    return "invoke"


def run_invocation(
    spec: FunctionSpec,
    event: Any,
    *,
    source: str,
    environment: AbstractContextManager[None],
    load: Callable[[FunctionSpec], Handler],
    log_stream: Callable[[FunctionSpec], str],
    enforce_timeout: bool,
) -> Invocation:
    """Load and run the handler on ``event`` within ``environment``; report as Lambda would."""
    request_id = new_request_id()
    started = time.monotonic()
    deadline = started + spec.timeout_s
    error: BaseException | None = None
    error_type: str | None = None
    payload: str | None = "null"
    with environment:
        try:
            handler = load(spec)
        except Exception as err:  # Lambda reports a module that fails to import this way
            error, error_type = err, IMPORT_ERROR
        else:
            context = LambdaContext(spec, request_id, deadline, log_stream(spec))
            try:
                result = handler(event, context)
            except Exception as err:  # the handler's failure is the invocation's result
                error = err
            else:
                if encodes_as_json(result):
                    payload = None  # encoded if a caller asks for it
                else:
                    try:
                        payload = json.dumps(result)
                    except (TypeError, ValueError) as err:
                        error, error_type = err, MARSHAL_ERROR
    duration_ms = (time.monotonic() - started) * 1000
    if error is not None:
        return failed(
            spec=spec,
            request_id=request_id,
            source=source,
            duration_ms=duration_ms,
            error=error,
            error_type=error_type,
        )
    if enforce_timeout and duration_ms > spec.timeout_s * 1000:
        return timed_out(spec=spec, request_id=request_id, source=source, duration_ms=duration_ms)
    return Invocation(
        function_name=spec.name,
        request_id=request_id,
        source=source,
        payload=payload,
        duration_ms=duration_ms,
        value=result,
    )


def _error(
    *,
    spec: FunctionSpec,
    request_id: str,
    source: str,
    duration_ms: float,
    error_type: str,
    message: str,
    stack_trace: tuple[str, ...] = (),
) -> Invocation:
    """An invocation that failed, with the error document Lambda returns as its payload."""
    document = {
        "errorType": error_type,
        "errorMessage": message,
        "requestId": request_id,
        "stackTrace": list(stack_trace),
    }
    return Invocation(
        function_name=spec.name,
        request_id=request_id,
        source=source,
        payload=json.dumps(document),
        duration_ms=duration_ms,
        error_type=error_type,
        error_message=message,
        stack_trace=stack_trace,
    )


def failed(
    *,
    spec: FunctionSpec,
    request_id: str,
    source: str,
    duration_ms: float,
    error: BaseException,
    error_type: str | None,
) -> Invocation:
    """The invocation of a handler that raised ``error`` (or failed to import or marshal)."""
    message = str(error)
    if error_type == IMPORT_ERROR:
        message = f"Unable to import module of {spec.name} ({spec.handler}): {error!r}"
    elif error_type == MARSHAL_ERROR:
        message = f"Unable to marshal response: {message}"
    return _error(
        spec=spec,
        request_id=request_id,
        source=source,
        duration_ms=duration_ms,
        error_type=error_type or type(error).__name__,
        message=message,
        stack_trace=tuple(traceback.format_tb(error.__traceback__)),
    )


def timed_out(
    *, spec: FunctionSpec, request_id: str, source: str, duration_ms: float
) -> Invocation:
    """The invocation of a handler that ran past the function's timeout."""
    return _error(
        spec=spec,
        request_id=request_id,
        source=source,
        duration_ms=duration_ms,
        error_type=TIMEOUT_ERROR,
        message=(
            f"{request_id} Task timed out after {spec.timeout_s:.2f} seconds "
            f"(ran {duration_ms / 1000:.2f} s locally; raise the function's Timeout "
            "or do less per invocation)"
        ),
    )

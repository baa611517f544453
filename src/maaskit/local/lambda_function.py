"""A Lambda function as the local stack runs it: where its code is, and the context it gets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

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

    @cached_property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    @cached_property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"

    @cached_property
    def memory_limit_in_mb(self) -> str:
        """As the context gives it: a string."""
        return str(self.memory_mb)

    @cached_property
    def runtime_environment(self) -> Mapping[str, str]:
        """What the Lambda runtime itself sets, then the function's own variables on top."""
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
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
        self.memory_limit_in_mb = spec.memory_limit_in_mb
        self.aws_request_id = request_id
        self.log_group_name = spec.log_group_name
        self.log_stream_name = log_stream or new_log_stream()
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def new_log_stream() -> str:
    """A log stream name as Lambda gives each sandbox: its start date and a random id."""
    return f"{datetime.now(UTC).strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"

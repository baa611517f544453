"""The local stack's Lambda router, counting what it runs: for the workflow harnesses."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from maaskit.local.lambda_router import Invocation, LambdaRouter


@dataclass(frozen=True)
class Call:
    function_name: str
    event: Any
    invocation: Invocation

    @property
    def error_type(self) -> str | None:
        return self.invocation.error_type


class CountingLambdas(LambdaRouter):
    """The local stack's router, also keeping every call and how many ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.invocations: list[Call] = []
        self.running = 0
        self.most_at_once = 0
        self._gauge = threading.Lock()

    def invoke(self, function_name: str, event: Any, *, source: str | None = None) -> Invocation:
        with self._gauge:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            invocation = super().invoke(function_name, event, source=source)
        finally:
            with self._gauge:
                self.running -= 1
        decoded = json.loads(event) if isinstance(event, str | bytes) else event
        with self._gauge:
            self.invocations.append(Call(function_name, decoded, invocation))
        return invocation

    def calls(self, function_name: str) -> list[Call]:
        with self._gauge:
            return [c for c in self.invocations if c.function_name == function_name]

"""Training runs: Step Functions executions named by their run id, and what the workflow
writes under ``training/{run_id}/`` (metrics, status)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from maaskit.errors import CorruptObject, InvalidRequest, MaaskitError, NotFound
from maaskit.sdk.connection import Connection


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    execution_arn: str


@dataclass(frozen=True)
class TrainingStatus:
    run_id: str
    status: str  # RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None
    output: Any = None
    details: dict[str, Any] = field(default_factory=dict)  # training/{run_id}/status.json

    @property
    def done(self) -> bool:
        return self.status != "RUNNING"

    @property
    def latest(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}


def new_run_id(model: str) -> str:
    """A readable, unique execution name: ``{model}-{UTC time}-{random}``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", model)[:50]
    return f"{safe}-{stamp}-{secrets.token_hex(2)}"


def execution_input(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A training execution starts with the spec as written; its name is the run id."""
    return dict(spec)


def _parse_metrics(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written as we read
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _history_line(event: Mapping[str, Any]) -> str:
    stamp = event.get("timestamp")
    when = stamp.strftime("%H:%M:%S") if isinstance(stamp, datetime) else ""
    details: Mapping[str, Any] = next(
        (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
    )
    parts = [when, str(event.get("type", ""))]
    if details.get("name"):
        parts.append(str(details["name"]))
    if details.get("error"):
        parts.append(f"error={details['error']}")
    if details.get("cause"):
        parts.append(f"cause={str(details['cause'])[:500]}")
    return " ".join(part for part in parts if part)


class TrainingOperations(Connection):
    """Start a run, read its metrics, status and history, wait for it to end."""

    def _training_machine(self) -> str:
        return self.target.state_machine("training")

    def _execution_arn(self, run_id: str) -> str:
        machine = self._training_machine()
        return machine.replace(":stateMachine:", ":execution:", 1) + f":{run_id}"

    def start_training(self, spec: Mapping[str, Any], *, run_id: str | None = None) -> TrainingRun:
        """Start the training state machine on ``spec``; the run id names the execution."""
        if not isinstance(spec, Mapping) or "model" not in spec:
            raise InvalidRequest('a training spec is a JSON object with at least "model"')
        run_id = run_id or new_run_id(str(spec["model"]))
        response = self.target.client("stepfunctions").start_execution(
            stateMachineArn=self._training_machine(),
            name=run_id,
            input=json.dumps(execution_input(spec)),
        )
        return TrainingRun(run_id=run_id, execution_arn=str(response["executionArn"]))

    def training_metrics(self, run_id: str) -> list[dict[str, Any]]:
        try:
            data = self.store.get_bytes(f"training/{run_id}/metrics.jsonl")
            text = data.decode("utf-8", errors="replace")  # a damaged line is skipped below
        except NotFound:
            return []
        return _parse_metrics(text)

    def training_details(self, run_id: str) -> dict[str, Any]:
        """What the workflow itself says about the run (its current step, how it ended)."""
        try:
            details = self.store.get_json(f"training/{run_id}/status.json")
        except NotFound:
            return {}
        except CorruptObject as err:  # the execution's own state still answers
            return {"unreadable": err.message}
        if not isinstance(details, dict):
            return {"unreadable": f"training/{run_id}/status.json is not a JSON object"}
        return details

    def training_status(self, run_id: str) -> TrainingStatus:
        sfn = self.target.client("stepfunctions")
        try:
            described = sfn.describe_execution(executionArn=self._execution_arn(run_id))
        except sfn.exceptions.ExecutionDoesNotExist:
            raise NotFound(f"no training run {run_id!r}") from None
        output = described.get("output")
        return TrainingStatus(
            run_id=run_id,
            status=str(described["status"]),
            metrics=self.training_metrics(run_id),
            error=described.get("error"),
            cause=described.get("cause"),
            output=json.loads(output) if output else None,
            details=self.training_details(run_id),
        )

    def training_logs(self, run_id: str) -> list[str]:
        """The execution's history, one line per event (states, task failures, retries)."""
        sfn = self.target.client("stepfunctions")
        arn = self._execution_arn(run_id)
        lines: list[str] = []
        token: str | None = None
        try:
            while True:
                args: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
                if token:
                    args["nextToken"] = token
                page = sfn.get_execution_history(**args)
                lines.extend(_history_line(event) for event in page.get("events", []))
                token = page.get("nextToken")
                if not token:
                    return lines
        except sfn.exceptions.ExecutionDoesNotExist:
            raise NotFound(f"no training run {run_id!r}") from None

    def wait_for_training(
        self,
        run_id: str,
        *,
        on_progress: Callable[[TrainingStatus], None] | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> TrainingStatus:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.training_status(run_id)
            if on_progress is not None:
                on_progress(status)
            if status.done:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise MaaskitError(
                    f"training run {run_id} still {status.status} after {timeout_s} s"
                )
            time.sleep(poll_s)

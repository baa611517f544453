"""Structured logs and CloudWatch metrics for a request path that must stay in microseconds.

Both are JSON lines on stdout, where Lambda sends them to CloudWatch Logs: log records
carry the correlation id of the request they belong to, and metric records are in the
embedded metric format (EMF), which CloudWatch turns into metrics without an API call.
Powertools does the same with per-request validation, context models and a flush that
cost the API about 0.2 ms a request; this writes each record once, with the dimensions
of a metric built once per (metric, dimensions) and reused.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import orjson

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}

Write = Callable[[str], Any]


def _stdout(line: str) -> None:
    sys.stdout.write(line)  # looked up each call: tests and Lambda may swap stdout


class Logger:
    """JSON log lines (level, message, service, timestamp, the request's keys, extras)."""

    def __init__(self, service: str, level: str = "INFO", write: Write = _stdout) -> None:
        self.service = service
        self.threshold = _LEVELS.get(level.upper(), 20)
        self.keys: dict[str, Any] = {}
        self._write = write

    def bind(self, **keys: Any) -> None:
        """Keys every following record carries (the request's ids), replacing earlier ones."""
        self.keys.update(keys)

    def log(self, level: str, message: str, *, exc_info: bool = False, **extra: Any) -> None:
        if _LEVELS[level] < self.threshold:
            return
        record: dict[str, Any] = {
            "level": level,
            "message": message,
            "timestamp": _iso_now(),
            "service": self.service,
            **self.keys,
            **extra,
        }
        if exc_info:
            record["exception"] = traceback.format_exc().rstrip()
        self._write(orjson.dumps(record, default=str).decode() + "\n")

    def debug(self, message: str, **extra: Any) -> None:
        self.log("DEBUG", message, **extra)

    def info(self, message: str, **extra: Any) -> None:
        self.log("INFO", message, **extra)

    def warning(self, message: str, **extra: Any) -> None:
        self.log("WARNING", message, **extra)

    def error(self, message: str, **extra: Any) -> None:
        self.log("ERROR", message, **extra)

    def exception(self, message: str, **extra: Any) -> None:
        self.log("ERROR", message, exc_info=True, **extra)


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class Metrics:
    """EMF records, one line per metric value; nothing at all when disabled.

    All of a record but its timestamp and value is the same for each (metric, unit,
    dimensions): that text is encoded once, and each record splices the two numbers in.
    """

    def __init__(
        self, namespace: str, service: str, *, enabled: bool = True, write: Write = _stdout
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.enabled = enabled
        self._write = write
        self._frames: dict[tuple[str, str, tuple[tuple[str, str], ...]], str | None] = {}

    def _directive(self, name: str, unit: str, dimensions: tuple[tuple[str, str], ...]) -> Any:
        return [
            {
                "Namespace": self.namespace,
                "Dimensions": [["service", *(k for k, _ in dimensions)]],
                "Metrics": [{"Name": name, "Unit": unit}],
            }
        ]

    def _frame(self, name: str, unit: str, pairs: tuple[tuple[str, str], ...]) -> str | None:
        """The record's text between its timestamp and its value; ``None`` when the metric
        is named like one of the record's other keys (encoded whole, as a dict merges it)."""
        key = (name, unit, pairs)
        if key in self._frames:
            return self._frames[key]
        keys = {"_aws", "service", *(k for k, _ in pairs)}
        frame = None
        if name not in keys and "_aws" not in dict(pairs):
            members = orjson.dumps({"service": self.service, **dict(pairs)}).decode()
            frame = (
                f',"CloudWatchMetrics":{orjson.dumps(self._directive(name, unit, pairs)).decode()}'
                f"}},{members[1:-1]},{orjson.dumps(name).decode()}:"
            )
        self._frames[key] = frame
        return frame

    def recorder(
        self, name: str, unit: str, dimensions: Mapping[str, str] | None = None
    ) -> Callable[[float], None]:
        """What records values of one metric and dimensions, for a path that records it per
        request: the lookup of its encoded frame is done here, once."""
        pairs = tuple(dimensions.items()) if dimensions else ()
        frame = self._frame(name, unit, pairs)
        if frame is None:
            return lambda value: self.record(name, value, unit, dimensions)

        def record(value: float) -> None:
            if self.enabled:
                self._write(_emf_line(frame, value))

        return record

    def record(
        self, name: str, value: float, unit: str, dimensions: Mapping[str, str] | None = None
    ) -> None:
        if not self.enabled:
            return
        pairs = tuple(dimensions.items()) if dimensions else ()
        frame = self._frame(name, unit, pairs)
        if frame is not None:
            self._write(_emf_line(frame, value))
            return
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": self._directive(name, unit, pairs),
            },
            "service": self.service,
            **dict(pairs),
            name: value,
        }
        self._write(orjson.dumps(document).decode() + "\n")


def _emf_line(frame: str, value: float) -> str:
    timestamp = int(time.time() * 1000)
    return f'{{"_aws":{{"Timestamp":{timestamp}{frame}{orjson.dumps(value).decode()}}}\n'

"""How the command line shows things: JSON, small tables, a training progress bar.

Pure formatting, kept apart from the commands so it can be tested without a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from maaskit.sdk.client import TrainingStatus

_SKIPPED_IN_BAR = frozenset({"epoch", "step", "time", "elapsed", "elapsed_s", "timestamp"})


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def to_compact_json(value: Any) -> str:
    """One line: a tensor reply stays a line a person can scroll past, not one per number."""
    return json.dumps(value, separators=(",", ":"), default=str)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Left-aligned columns, two spaces apart."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
    return str(value)


def progress_line(status: TrainingStatus, total_epochs: int | None, width: int = 24) -> str:
    """``[#####-----] epoch 3/20  loss 0.4321  val_accuracy 0.9123  RUNNING``."""
    latest: Mapping[str, Any] = status.latest
    epoch = latest.get("epoch")
    parts = []
    if total_epochs and isinstance(epoch, int | float):
        done = min(1.0, max(0.0, float(epoch) / total_epochs))
        filled = round(done * width)
        parts.append("[" + "#" * filled + "-" * (width - filled) + "]")
        parts.append(f"epoch {int(epoch)}/{total_epochs}")
    elif epoch is not None:
        parts.append(f"epoch {epoch}")
    step = status.details.get("step")
    if not latest and isinstance(step, str):
        parts.append(step)
    for key, value in latest.items():
        if key in _SKIPPED_IN_BAR or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if "loss" in key or key.startswith(("val", "test", "accuracy")) or "metric" in key:
            parts.append(f"{key} {_number(value)}")
    parts.append(status.status)
    return "  ".join(parts)


class ProgressBar:
    """Redraws one line on a terminal; prints a line per change elsewhere (logs, CI)."""

    def __init__(self, total_epochs: int | None, stream: TextIO | None = None) -> None:
        self.total_epochs = total_epochs
        self.stream = stream or sys.stderr
        self._last = ""
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, status: TrainingStatus) -> None:
        line = progress_line(status, self.total_epochs)
        if line == self._last:
            return
        if self._tty:
            self.stream.write("\r\x1b[2K" + line)
            if status.done:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last = line


class WaitingLine:
    """``waiting for ... 12s`` redrawn on a terminal; one line in logs; cleared by ``close``."""

    def __init__(self, what: str, stream: TextIO | None = None) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = False

    def __call__(self, waited_s: float) -> None:
        if self._tty:
            self.stream.write(f"\r\x1b[2K{self.what} ... {waited_s:.0f}s")
            self.stream.flush()
        elif not self._shown:
            self.stream.write(f"{self.what} ...\n")
        self._shown = True

    def close(self) -> None:
        if self._tty and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def batch_summary(report: Mapping[str, Any], output_uri: str) -> str:
    """One line for a batch report: its status, the row counts, where the predictions are."""
    counts = ", ".join(f"{report.get(f'rows_{k}', 0)} {k}" for k in ("in", "out", "failed"))
    where = output_uri if report.get("output") else "no output written"
    return f"{report.get('status', 'UNKNOWN')}: rows {counts} -> {where}"

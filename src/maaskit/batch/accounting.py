"""Row accounting: every row read is either written or failed, with a reason.

The counts are exact for any file; the list of failed rows is capped (the first
``max_listed`` by position) so a file where every row fails still has a report of bounded
size, and the report says when the list is incomplete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from maaskit.batch.formats.base import Failure


class AccountingError(RuntimeError):
    """Rows went missing between reader and writer: a bug, never a property of the input."""


@dataclass
class Accounting:
    max_listed: int = 1000
    rows_in: int = 0
    rows_out: int = 0
    rows_failed: int = 0
    row_failures: int = 0  # failed one by one (the rest failed with the file, if it did)
    failures: list[Failure] = field(default_factory=list)

    def received(self, count: int) -> None:
        self.rows_in += count

    def wrote(self, count: int) -> None:
        self.rows_out += count

    def failed(self, failures: Iterable[Failure]) -> None:
        for failure in sorted(failures, key=lambda f: f.position):
            self.rows_failed += 1
            self.row_failures += 1
            if len(self.failures) < self.max_listed:
                self.failures.append(failure)

    def discard_output(self) -> None:
        """The output was not kept (the file failed as a whole): every row read has failed."""
        self.rows_out = 0
        self.rows_failed = self.rows_in

    @property
    def balanced(self) -> bool:
        return self.rows_out + self.rows_failed == self.rows_in

    def check(self) -> None:
        if not self.balanced:
            raise AccountingError(
                f"rows out ({self.rows_out}) + rows failed ({self.rows_failed}) != rows in "
                f"({self.rows_in})"
            )

    def to_dict(self, label: str) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_failed": self.rows_failed,
            "failures": [{label: f.position, "reason": f.reason} for f in self.failures],
            "failures_truncated": self.row_failures > len(self.failures),
        }

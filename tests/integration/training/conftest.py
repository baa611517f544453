"""Workflow tests run the real state machine on moto, handlers in process.

The harness lives in ``tests/support/training_stack.py`` (the benchmark uses it too).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BUCKET
from tests.support.training_stack import TrainingStack, training_stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[TrainingStack]:
    monkeypatch.setenv("MAASKIT_TRAINING_MARGIN_MS", "1000")
    monkeypatch.setenv("MAASKIT_TRAINING_STEPS_PER_INVOCATION", "100")
    with training_stack(BUCKET) as created:
        yield created

"""The checkpointed embedding loop: batches by index, skipped when saved, same matrix."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from maaskit.errors import IntegrityError
from maaskit.training.embedding import (
    EmbeddingPlan,
    assemble,
    embed_batches,
    from_bytes,
    to_bytes,
)

TEXTS = [f"sentence number {i}" for i in range(23)]


class Encoder:
    """A deterministic stand-in for the frozen encoder, counting what it embeds."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        numbers = np.array([float(t.rsplit(" ", 1)[1]) for t in texts])
        return np.stack([numbers, numbers**2, np.sin(numbers)], axis=1)


class Saved(dict[int, bytes]):
    def has(self, batch: int) -> bool:
        return batch in self

    def save(self, batch: int, values: np.ndarray) -> None:
        self[batch] = to_bytes(values)

    def load(self, batch: int) -> np.ndarray:
        return from_bytes(self[batch])


def test_one_go_embeds_every_batch_in_row_order() -> None:
    # Given 23 texts in batches of 5
    plan = EmbeddingPlan(rows=23, batch_size=5)
    saved, encoder = Saved(), Encoder()
    # When they are embedded without limits
    progress = embed_batches(TEXTS, plan, 0, encoder, saved=saved.has, save=saved.save)
    # Then all 5 batches are saved, the last one short, and assembled in row order
    assert (progress.next_batch, progress.embedded, progress.skipped) == (5, 5, 0)
    assert [len(call) for call in encoder.calls] == [5, 5, 5, 5, 3]
    matrix = assemble(plan, saved.load)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, Encoder()(TEXTS).astype(np.float32))


def test_invocations_with_a_batch_limit_resume_where_the_last_stopped() -> None:
    plan = EmbeddingPlan(rows=23, batch_size=5)
    saved, encoder = Saved(), Encoder()
    starts = []
    batch = 0
    while batch < plan.batches:
        starts.append(batch)
        batch = embed_batches(
            TEXTS, plan, batch, encoder, saved=saved.has, save=saved.save, max_batches=2
        ).next_batch
    assert starts == [0, 2, 4]
    np.testing.assert_array_equal(assemble(plan, saved.load), Encoder()(TEXTS).astype(np.float32))


def test_a_retried_invocation_skips_the_batches_its_killed_attempt_saved() -> None:
    # Given an invocation from batch 1 killed after saving batches 1 and 2
    plan = EmbeddingPlan(rows=23, batch_size=5)
    saved, encoder = Saved(), Encoder()
    embed_batches(TEXTS, plan, 0, encoder, saved=saved.has, save=saved.save, max_batches=1)
    embed_batches(TEXTS, plan, 1, encoder, saved=saved.has, save=saved.save, max_batches=2)
    kept = dict(saved)
    encoder.calls.clear()
    # When the same input (start at batch 1) is retried
    progress = embed_batches(TEXTS, plan, 1, encoder, saved=saved.has, save=saved.save)
    # Then only the missing batches are computed, the saved ones are left as they were
    assert (progress.skipped, progress.embedded, progress.next_batch) == (2, 2, 5)
    assert [call[0] for call in encoder.calls] == [TEXTS[15], TEXTS[20]]
    assert all(saved[b] == kept[b] for b in kept)
    np.testing.assert_array_equal(assemble(plan, saved.load), Encoder()(TEXTS).astype(np.float32))


def test_the_time_budget_stops_before_a_batch_that_might_not_fit_but_one_always_runs() -> None:
    plan = EmbeddingPlan(rows=23, batch_size=5)
    saved = Saved()
    ticks = itertools.count(step=1.0)  # every clock read is a second later
    progress = embed_batches(
        TEXTS, plan, 0, Encoder(), saved=saved.has, save=saved.save,
        time_budget=0.5, clock=lambda: next(ticks),
    )  # fmt: skip
    assert progress.embedded == 1
    progress = embed_batches(
        TEXTS, plan, 1, Encoder(), saved=saved.has, save=saved.save,
        time_budget=6.0, clock=lambda: next(ticks),
    )  # fmt: skip
    assert progress.embedded == 2  # after 2 batches: 4 s used + 2 * 1 s > 6 s


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.zeros((4, 3)), r"shape \(4, 3\) for batch 0 of 5"),
        (np.zeros(5), r"expected \[texts, dim\]"),
        (np.full((5, 3), np.nan), "non-finite"),
    ],
)
def test_an_encoder_answer_of_the_wrong_shape_or_not_finite_is_refused(
    values: np.ndarray, message: str
) -> None:
    saved = Saved()
    with pytest.raises(IntegrityError, match=message):
        embed_batches(
            TEXTS, EmbeddingPlan(23, 5), 0, lambda texts: values, saved=saved.has, save=saved.save
        )
    assert not saved


def test_assemble_refuses_batches_that_do_not_fit_together() -> None:
    plan = EmbeddingPlan(rows=7, batch_size=5)
    parts = {0: np.zeros((5, 3), np.float32), 1: np.zeros((2, 4), np.float32)}
    with pytest.raises(IntegrityError, match="width"):
        assemble(plan, parts.__getitem__)
    parts[1] = np.zeros((3, 3), np.float32)
    with pytest.raises(IntegrityError, match="batch 1 has 3 rows"):
        assemble(plan, parts.__getitem__)

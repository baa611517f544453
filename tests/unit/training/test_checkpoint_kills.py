"""A TrainSteps invocation killed at each point of its checkpoint write resumes to the same
final weights, bit for bit; a checkpoint that cannot be read is refused, never half-used."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from maaskit.errors import CorruptObject
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.training import workflow
from maaskit.training.checkpoint import TrainingState, state_from_bytes, state_to_bytes

from .helpers import blobs, spec_dict
from .test_workflow_steps import to_csv

KILLED_INVOCATION = 3


class Killed(Exception):
    """The sandbox died (a timeout, a crash): Step Functions retries with the same input."""


@contextmanager
def killed_at(store: ObjectStore, point: str | None) -> Iterator[None]:
    """Kill the invocation at ``point`` of its checkpoint put: before it, during it (the
    bytes that landed are cut short), or after it (the reply never got back)."""
    original = store.put

    def put(key: str, body: bytes, **kwargs: Any) -> str:
        if point is None or "/checkpoints/" not in key:
            return original(key, body, **kwargs)
        if point == "during":
            original(key, body[: len(body) // 2], **kwargs)
        elif point == "after":
            original(key, body, **kwargs)
        raise Killed(f"killed {point} the put of {key}")

    store.put = put  # type: ignore[method-assign]
    try:
        yield
    finally:
        store.put = original  # type: ignore[method-assign]


def train_to_the_end(
    store: ObjectStore, registry: Registry, run_id: str, point: str | None
) -> tuple[TrainingState, int]:
    """Prepare, then TrainSteps until done, retrying a killed invocation as the workflow does."""
    store.put(f"datasets/{run_id}.csv", to_csv(blobs()))
    request = spec_dict(dataset=f"datasets/{run_id}.csv", epochs=4)
    state = workflow.prepare_run(
        store, registry, {"request": request, "run_id": run_id}, max_dataset_bytes=10**7
    )
    invocations = kills = 0
    while not state["done"]:
        invocations += 1
        try:
            with killed_at(store, point if invocations == KILLED_INVOCATION else None):
                state = workflow.train_steps(store, state, time_budget=60.0, max_steps=5)
        except Killed:
            kills += 1
    return state_from_bytes(store.get_bytes(state["checkpoint"])), kills


@pytest.mark.parametrize("point", ["before", "during", "after"])
def test_a_step_killed_at_its_checkpoint_write_resumes_to_the_same_weights(
    store: ObjectStore, registry: Registry, point: str
) -> None:
    # Given the same run trained without any interruption
    expected, _ = train_to_the_end(store, registry, "whole", None)
    # When the third TrainSteps invocation is killed at that point of its checkpoint put
    state, kills = train_to_the_end(store, registry, f"killed-{point}", point)
    # Then the retry resumed from the checkpoint it was given and ended bit for bit the same
    assert kills == 1
    assert state.step == expected.step
    assert state.params.tobytes() == expected.params.tobytes()
    for name, slot in expected.slots.items():
        assert state.slots[name].tobytes() == slot.tobytes()
    assert state.history == expected.history


def sample_state() -> TrainingState:
    return TrainingState(
        params=np.arange(6, dtype=np.float64),
        slots={"m": np.ones(6)},
        cursors=np.zeros(2, np.int64),
        history=[{"epoch": 1, "loss": 0.5}],
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"\xff" * 64,
        lambda data: b"",
        lambda data: state_to_bytes(sample_state()).replace(b"history", b"hxstory"),
    ],
    ids=["truncated", "garbage", "empty", "a missing field"],
)
def test_a_damaged_checkpoint_is_refused_with_its_key(
    store: ObjectStore, registry: Registry, damage: Any
) -> None:
    # Given a run whose current checkpoint was damaged in the bucket
    store.put("datasets/d.csv", to_csv(blobs()))
    request = spec_dict(dataset="datasets/d.csv", epochs=2)
    state = workflow.prepare_run(
        store, registry, {"request": request, "run_id": "damaged"}, max_dataset_bytes=10**7
    )
    store.put(state["checkpoint"], damage(store.get_bytes(state["checkpoint"])))
    # When the next step loads it, Then it is refused, naming the object, and nothing trains
    with pytest.raises(CorruptObject, match=r"training/damaged/checkpoints/.*cannot resume"):
        workflow.train_steps(store, state, time_budget=60.0, max_steps=5)
    assert state_from_bytes(state_to_bytes(sample_state())).history == sample_state().history

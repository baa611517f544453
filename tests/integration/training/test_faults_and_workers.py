"""A killed step resumes bit for bit; N workers agree with one."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from maaskit.training.checkpoint import TrainingState, state_from_bytes
from maaskit.training.datasets import read_table
from maaskit.training.finetune import fresh_params
from maaskit.training.preparation import architecture_for, prepare
from maaskit.training.spec import parse_spec
from maaskit.training.trainer import Trainer
from maaskit.training.weights import ModelWeights
from tests.support.training_stack import TrainingStack

from .data import digits, digits_spec, to_csv

# How the Lambda service names an invocation killed at its timeout; Retry matches it.
SandboxTimedout = type("Sandbox.Timedout", (Exception,), {})


def uninterrupted_core_run(csv: bytes, spec: dict[str, Any]) -> TrainingState:
    """The same training in one go, in memory, with no workflow around it."""
    parsed = parse_spec(spec)
    data = prepare(read_table(csv, "csv", target=parsed.target), parsed)
    architecture = architecture_for(data.spec, len(data.feature_names), data.n_outputs)
    trainer = Trainer(architecture, data.spec, data.validation, [data.train.rows])
    state = trainer.start(fresh_params(architecture, data.spec.seed))
    trainer.run(state, data.train)
    return state


def final_state(stack: TrainingStack, output: dict[str, Any]) -> TrainingState:
    return state_from_bytes(stack.store.get_bytes(output["checkpoint"]))


def test_a_step_killed_mid_invocation_is_retried_and_ends_bit_identical(
    stack: TrainingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given digits, 5 epochs (115 steps) and at most 20 steps per invocation
    csv = to_csv(digits())
    stack.store.put("datasets/digits.csv", csv)
    spec = digits_spec(epochs=5, weight_decay=0.0001, lr_schedule={"type": "cosine"})
    expected = uninterrupted_core_run(csv, spec)
    monkeypatch.setenv("MAASKIT_TRAINING_STEPS_PER_INVOCATION", "20")
    # And the third TrainSteps invocation dies after 7 batches, before its checkpoint
    original = Trainer.run
    invocation = itertools.count(1)

    def run_then_die(self: Trainer, state: TrainingState, shard: Any, **kwargs: Any) -> Any:
        if next(invocation) != 3:
            return original(self, state, shard, **kwargs)
        original(self, state, shard, **{**kwargs, "max_steps": 7})
        raise SandboxTimedout("Task timed out after 7 batches")

    monkeypatch.setattr(Trainer, "run", run_then_die)
    # When the workflow runs
    output = stack.output(stack.run(spec, "killed"))
    # Then the killed invocation was retried from the same checkpoint
    steps = stack.calls("TrainStepsFunction")
    errors = [call.error_type for call in steps]
    assert errors.count("Sandbox.Timedout") == 1
    killed = errors.index("Sandbox.Timedout")
    assert steps[killed + 1].event["checkpoint"] == steps[killed].event["checkpoint"]
    assert len(steps) == 115 // 20 + 1 + 1  # six invocations, plus the retry
    # And the final weights and optimizer state are those of an uninterrupted run, bit for bit
    state = final_state(stack, output)
    assert state.params.tobytes() == expected.params.tobytes()
    for name, slot in expected.slots.items():
        assert state.slots[name].tobytes() == slot.tobytes()
    assert state.history == expected.history
    weights = ModelWeights.from_bytes(stack.store.get_bytes(output["weights"]))
    assert weights.params.tobytes() == expected.params.tobytes()


def pairs_spec(workers: int, batch_size: int) -> dict[str, Any]:
    return digits_spec(
        model="zeros-ones",
        dataset="s3://maaskit-test-models/datasets/zeros-ones.csv",
        architecture={"type": "mlp", "hidden": [16]},
        optimizer={"type": "sgd", "learning_rate": 0.5},
        weight_decay=0.001,
        batch_size=batch_size,
        epochs=5,
        workers=workers,
        local_steps=1,
    )


def test_two_workers_reach_the_weights_of_one_with_full_batch_sgd(stack: TrainingStack) -> None:
    # Given digits 0 and 1 (288 training rows: two equal shards of 144)
    stack.store.put("datasets/zeros-ones.csv", to_csv(digits(classes=(0, 1))))
    # When one worker and two workers train with full-batch SGD and K = 1
    one = stack.output(stack.run(pairs_spec(workers=1, batch_size=288), "one-worker"))
    two = stack.output(stack.run(pairs_spec(workers=2, batch_size=288), "two-workers"))
    # Then the shards were equal and the workers ran in rounds of a Map
    record = stack.store.get_json("training/two-workers/run.json")
    assert record["shard_rows"] == [144, 144]
    assert len(stack.calls("TrainWorkerFunction")) == 2 * 5
    assert len(stack.calls("TrainReduceFunction")) == 5
    # And both reach the same weights within 1e-6
    np.testing.assert_allclose(
        final_state(stack, two).params, final_state(stack, one).params, rtol=0, atol=1e-6
    )
    assert two["metrics"]["val_loss"] == pytest.approx(one["metrics"]["val_loss"], abs=1e-9)


def test_three_workers_with_local_steps_train_a_registered_model(stack: TrainingStack) -> None:
    # Given all digits, 3 workers, 4 local Adam steps per averaging round
    stack.store.put("datasets/digits.csv", to_csv(digits()))
    spec = digits_spec(
        epochs=8, workers=3, local_steps=4, optimizer={"type": "adam", "learning_rate": 0.01}
    )
    # When it trains
    output = stack.output(stack.run(spec, "three-workers"))
    # Then every epoch took 2 rounds (8 batches per shard, 4 per round) and the model is good
    assert len(stack.calls("TrainReduceFunction")) == 8 * 2
    assert output["metrics"]["val_accuracy"] >= 0.95
    assert stack.registry.aliases("digits-mlp")["production"] == output["version"]

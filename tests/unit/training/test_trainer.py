from __future__ import annotations

import itertools

import numpy as np
import pytest

from maaskit.training.checkpoint import TrainingState, state_from_bytes, state_to_bytes
from maaskit.training.datasets import Table
from maaskit.training.errors import TrainingDiverged
from maaskit.training.trainer import Shard

from .helpers import blobs, initial_params, linear_data, make_spec, trainer_for

SPEC = {
    "epochs": 4,
    "batch_size": 16,
    "optimizer": {"type": "adam", "learning_rate": 0.01},
    "weight_decay": 0.001,
    "lr_schedule": {"type": "cosine"},
    "patience": 3,
}


def uninterrupted(**overrides) -> TrainingState:
    trainer, data = trainer_for(blobs(), make_spec(**{**SPEC, **overrides}))
    state = trainer.start(initial_params(trainer))
    trainer.run(state, data.train)
    assert state.done
    return state


def assert_same_state(a: TrainingState, b: TrainingState) -> None:
    assert a.params.tobytes() == b.params.tobytes()
    assert a.slots.keys() == b.slots.keys()
    for name in a.slots:
        assert a.slots[name].tobytes() == b.slots[name].tobytes()
    assert (a.epoch, a.step, a.done, a.stop_reason) == (b.epoch, b.step, b.done, b.stop_reason)
    assert a.history == b.history


def test_training_learns_separable_blobs() -> None:
    state = uninterrupted(epochs=10, patience=None)
    assert state.history[-1]["val_accuracy"] >= 0.95
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]
    assert state.stop_reason == "completed 10 epoch(s)"


@pytest.mark.parametrize("cuts", [(1,), (5, 6), (3, 7, 11), (17,)])
def test_a_run_split_anywhere_through_checkpoints_is_bit_identical(cuts: tuple[int, ...]) -> None:
    # Given an uninterrupted run (6 batches an epoch, so cuts fall mid-epoch and on its end)
    expected = uninterrupted()
    # When the same run stops after each cut, goes through checkpoint bytes and resumes
    trainer, data = trainer_for(blobs(), make_spec(**SPEC))
    blob = state_to_bytes(trainer.start(initial_params(trainer)))
    for steps in itertools.chain(np.diff((0, *cuts)), [None]):
        trainer, data = trainer_for(blobs(), make_spec(**SPEC))  # a fresh "invocation"
        state = state_from_bytes(blob)
        trainer.run(state, data.train, max_steps=None if steps is None else int(steps))
        blob = state_to_bytes(state)
    # Then the weights, optimizer state and history are the same bit for bit
    assert_same_state(state_from_bytes(blob), expected)


def test_a_retried_step_reaches_the_same_state() -> None:
    # Given checkpoint k of a run
    trainer, data = trainer_for(blobs(), make_spec(**SPEC))
    state = trainer.start(initial_params(trainer))
    trainer.run(state, data.train, max_steps=4)
    checkpoint = state_to_bytes(state)
    # When the next step runs, "crashes" (its result is thrown away) and is retried
    crashed = state_from_bytes(checkpoint)
    trainer.run(crashed, data.train, max_steps=3)
    retried = state_from_bytes(checkpoint)
    trainer.run(retried, data.train)
    # Then the retry finishes exactly like an uninterrupted run
    assert_same_state(retried, uninterrupted())


def test_a_time_budget_splits_the_run_without_changing_it() -> None:
    # Given a clock where every batch takes 1 s
    ticks = itertools.count()

    def clock() -> float:
        return float(next(ticks)) / 2  # two readings per batch

    trainer, data = trainer_for(blobs(), make_spec(**SPEC))
    state = trainer.start(initial_params(trainer))
    invocations = 0
    # When each invocation gets a 5 s budget
    while not state.done:
        report = trainer.run(state, data.train, time_budget=5.0, clock=clock)
        invocations += 1
        assert report.steps >= 1
        assert report.stopped_by in ("time_budget", "done")
    # Then it took several invocations and ended where the uninterrupted run ends
    assert invocations > 3
    assert_same_state(state, uninterrupted())


def test_checkpoint_round_trip_keeps_every_field() -> None:
    trainer, data = trainer_for(blobs(), make_spec(**SPEC))
    state = trainer.start(initial_params(trainer))
    trainer.run(state, data.train, max_steps=9)
    assert state.best_params is not None
    again = state_from_bytes(state_to_bytes(state))
    assert_same_state(again, state)
    assert again.cursors.tolist() == state.cursors.tolist()
    assert (again.loss_sum, again.rows_seen) == (state.loss_sum, state.rows_seen)
    assert again.best_params is not None
    assert again.best_params.tobytes() == state.best_params.tobytes()


def test_a_diverging_learning_rate_stops_with_a_clear_error() -> None:
    # Given plain SGD with an absurd learning rate on a regression
    spec = make_spec(
        architecture={"type": "linear"},
        optimizer={"type": "sgd", "learning_rate": 1e6},
        epochs=50,
    )
    trainer, data = trainer_for(linear_data(), spec)
    state = trainer.start(initial_params(trainer))
    # When it trains, Then it fails naming the loss and suggesting a lower rate
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        trainer.run(state, data.train)


def test_early_stopping_keeps_the_best_epoch_weights() -> None:
    # Given labels that are pure noise: a wide MLP can only overfit them
    rng = np.random.default_rng(5)
    noise = Table(rng.normal(size=(120, 4)), rng.integers(0, 2, 120).astype(float), ("a",) * 4)
    spec = make_spec(
        architecture={"type": "mlp", "hidden": [64]},
        optimizer={"type": "adam", "learning_rate": 0.05},
        epochs=200,
        patience=2,
    )
    trainer, data = trainer_for(noise, spec)
    state = trainer.start(initial_params(trainer))
    trainer.run(state, data.train)
    # Then it stopped early, said why, and the weights score the best validation loss
    assert state.done
    assert state.epoch < 200
    assert "early stopping" in state.stop_reason
    best = min(record["val_loss"] for record in state.history)
    assert trainer.evaluate(state.params)["loss"] == pytest.approx(best, rel=1e-12)


def test_frozen_layers_do_not_move_and_the_others_do() -> None:
    spec = make_spec(base_model={"name": "base", "freeze": [0]}, weight_decay=0.01)
    trainer, data = trainer_for(blobs(), spec)
    start = initial_params(trainer)
    state = trainer.start(start)
    trainer.run(state, data.train)
    w0, b0 = trainer.architecture.layer_slices(0)
    w1, _ = trainer.architecture.layer_slices(1)
    assert state.params[w0].tobytes() == start[w0].tobytes()
    assert state.params[b0].tobytes() == start[b0].tobytes()
    assert not np.array_equal(state.params[w1], start[w1])


def test_weight_decay_shrinks_weights_but_not_biases() -> None:
    # Given SGD on data where the loss gradient is zero (all-zero features, balanced labels)
    spec = make_spec(optimizer={"type": "sgd", "learning_rate": 0.1}, weight_decay=0.5, epochs=1)
    trainer, data = trainer_for(blobs(), spec)
    params = initial_params(trainer)
    state = trainer.start(params)
    zero_x = np.zeros((16, data.train.x.shape[1]))
    trainer.run(state, Shard(zero_x, np.tile([0, 1, 2, 0], 4)), max_steps=1)
    # Then each weight moved by -lr * decay * w (up to the data gradient of the last layer)
    w0, b0 = trainer.architecture.layer_slices(0)
    np.testing.assert_allclose(state.params[w0], params[w0] * (1 - 0.1 * 0.5))
    assert np.array_equal(state.params[b0], params[b0])  # relu(0 + 0) = 0: no data gradient

from __future__ import annotations

import numpy as np
import pytest

from maaskit.training.checkpoint import TrainingState, state_from_bytes, state_to_bytes
from maaskit.training.network import Backprop, init_params
from maaskit.training.trainer import Trainer

from .helpers import blobs, initial_params, linear_data, make_spec, parallel_trainer_for


def train_in_rounds(trainer: Trainer, shards, params) -> TrainingState:
    """The reducer loop the workflow runs, with each state passing through bytes."""
    state = trainer.start(params)
    while not state.done:
        results = [
            state_from_bytes(state_to_bytes(trainer.local_round(state, shard, worker)))
            for worker, shard in enumerate(shards)
        ]
        trainer.reduce(state, results)
        state = state_from_bytes(state_to_bytes(state))
    return state


def full_batch_sgd(workers: int, rows: int = 96, **overrides):
    # 96 rows, 25% validation: 72 training rows split evenly over 1, 2, 3, 4 or 6 workers
    spec = make_spec(
        optimizer={"type": "sgd", "learning_rate": 0.5},
        batch_size=72 // workers,
        epochs=5,
        workers=workers,
        local_steps=1,
        weight_decay=0.01,
        **overrides,
    )
    return parallel_trainer_for(blobs(rows=rows), spec)


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_n_workers_and_one_worker_reach_the_same_weights_with_full_batch_sgd(
    workers: int,
) -> None:
    # Given full-batch plain SGD, K = 1, equal shards
    single, single_shards = full_batch_sgd(1)
    parallel, shards = full_batch_sgd(workers)
    assert len({shard.rows for shard in shards}) == 1
    params = initial_params(single)
    # When one worker and N workers train from the same weights
    one = train_in_rounds(single, single_shards, params)
    many = train_in_rounds(parallel, shards, params)
    # Then they agree within 1e-6, epoch by epoch
    np.testing.assert_allclose(many.params, one.params, rtol=0, atol=1e-6)
    assert [r["val_loss"] for r in many.history] == pytest.approx(
        [r["val_loss"] for r in one.history], abs=1e-9
    )
    assert many.step == one.step == 5


def test_averaging_models_after_one_sgd_step_equals_averaging_gradients() -> None:
    # Given two equal shards and one starting point
    trainer, shards = full_batch_sgd(2)
    architecture = trainer.architecture
    params = init_params(architecture, np.random.default_rng(1))
    lr = 0.5
    # When each shard takes one SGD step and the models are averaged
    models, grads = [], []
    for shard in shards:
        grad = np.zeros_like(params)
        Backprop(architecture, params, grad, shard.rows).loss_and_gradient(shard.x, shard.y)
        grads.append(grad)
        models.append(params - lr * grad)
    # Then that is one step along the averaged gradient
    np.testing.assert_allclose(
        (models[0] + models[1]) / 2, params - lr * (grads[0] + grads[1]) / 2, atol=1e-12
    )


def test_local_steps_with_adam_and_uneven_shards_complete_every_epoch() -> None:
    # Given 3 workers on 80 training rows (27, 27, 26), batches of 8, 2 local steps a round
    spec = make_spec(
        workers=3,
        local_steps=2,
        batch_size=8,
        epochs=3,
        optimizer={"type": "adam", "learning_rate": 0.05},
    )
    trainer, shards = parallel_trainer_for(blobs(rows=107), spec)
    params = initial_params(trainer)
    # When it trains in rounds
    state = train_in_rounds(trainer, shards, params)
    # Then each epoch saw every training row once and has one history record
    assert [record["epoch"] for record in state.history] == [1, 2, 3]
    assert state.rounds == 3 * 2  # 4 batches per shard and epoch, 2 per round
    assert state.step == 3 * 4
    # And the run is reproducible
    again = train_in_rounds(trainer, shards, params)
    assert again.params.tobytes() == state.params.tobytes()
    assert state.history[-1]["val_accuracy"] > 0.9


def test_a_worker_that_finished_its_shard_does_not_dilute_the_average() -> None:
    # Given shards of 2 and 1 rows with batch 1: worker 1 has nothing to do in round 2
    spec = make_spec(
        architecture={"type": "linear"},
        optimizer={"type": "sgd", "learning_rate": 0.1},
        workers=2,
        batch_size=1,
        epochs=1,
    )
    trainer, shards = parallel_trainer_for(linear_data(rows=4), spec)
    assert [s.rows for s in shards] == [2, 1]
    state = trainer.start(initial_params(trainer))
    trainer.reduce(state, [trainer.local_round(state, s, w) for w, s in enumerate(shards)])
    # When the second round runs
    worker0 = trainer.local_round(state, shards[0], 0)
    idle = trainer.local_round(state, shards[1], 1)
    assert idle.step == state.step
    trainer.reduce(state, [worker0, idle])
    # Then the model is worker 0's alone, and the epoch is closed
    assert state.params.tobytes() == worker0.params.tobytes()
    assert state.epoch == 1
    assert state.done


def test_a_state_copy_keeps_every_field_and_shares_nothing_mutable() -> None:
    state = TrainingState(
        params=np.arange(3.0),
        slots={"m": np.ones(3)},
        cursors=np.array([4, 5], np.int64),
        epoch=2,
        step=7,
        rounds=3,
        loss_sum=1.5,
        rows_seen=9,
        best_loss=0.25,
        best_epoch=1,
        best_params=np.zeros(3),
        stale_epochs=1,
        done=True,
        stop_reason="patience",
        history=[{"epoch": 1, "loss": 0.5}],
    )

    copied = state.copy()
    assert state_to_bytes(copied) == state_to_bytes(state)

    copied.params[0] = 99.0
    copied.slots["m"][0] = 99.0
    copied.cursors[0] = 99
    assert copied.best_params is not None
    copied.best_params[0] = 99.0
    copied.history[0]["loss"] = 99.0
    assert state_to_bytes(copied) != state_to_bytes(state)
    assert state.params[0] == 0.0
    assert state.slots["m"][0] == 1.0
    assert state.cursors[0] == 4
    assert state.best_params is not None
    assert state.best_params[0] == 0.0
    assert state.history[0]["loss"] == 0.5

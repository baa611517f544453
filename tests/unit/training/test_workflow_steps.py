"""The workflow's steps called directly, in order, on an in-process S3 (moto)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maaskit.errors import CorruptObject, InvalidRequest
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.training import spec as spec_module
from maaskit.training import workflow
from maaskit.training.datasets import Table
from tests.support import models

from .helpers import blobs, linear_data, spec_dict


def to_csv(table: Table) -> bytes:
    header = ",".join((*table.feature_names, "label"))
    rows = [
        ",".join(f"{v!r}" for v in (*features, label))
        for features, label in zip(table.features.tolist(), table.target.tolist(), strict=True)
    ]
    return ("\n".join([header, *rows]) + "\n").encode()


def train(
    store: ObjectStore, registry: Registry, run_id: str, table: Table, **spec: Any
) -> dict[str, Any]:
    """Prepare, TrainSteps until done, Evaluate, Export, Register: the state machine's path."""
    store.put("datasets/data.csv", to_csv(table))
    request = spec_dict(dataset="datasets/data.csv", **spec)
    state = workflow.prepare_run(
        store, registry, {"request": request, "run_id": run_id}, max_dataset_bytes=10**7
    )
    while not state["done"]:
        state = workflow.train_steps(store, state, time_budget=60.0, max_steps=5)
    state = workflow.evaluate(store, state)
    state = workflow.export(store, registry, state)
    return workflow.register(store, registry, state)


def test_a_retried_register_does_not_publish_twice(store: ObjectStore, registry: Registry) -> None:
    # Given a run that registered version 1
    state = train(store, registry, "run-1", blobs())
    assert state["version"] == 1
    # When Register runs again with the same input (its reply was lost, say)
    again = workflow.register(store, registry, {k: v for k, v in state.items() if k != "version"})
    # Then it answers with the same version and publishes nothing new
    assert again["version"] == 1
    assert registry.list_versions("blobs") == [1]


def test_no_alias_moves_until_promote_finishes_the_run(
    store: ObjectStore, registry: Registry
) -> None:
    # Given a run that has registered its model (a failure after this point fails the run)
    state = train(store, registry, "run-1", blobs())
    # Then the version is published but no alias points at it yet
    assert registry.list_versions("blobs") == [1]
    assert registry.aliases("blobs") == {}
    # When Promote finishes the run
    workflow.promote(store, registry, state)
    # Then latest (and, with nothing to beat, production) point at it
    assert registry.aliases("blobs") == {"latest": 1, "production": 1}


def test_a_retried_promote_says_the_version_is_already_production(
    store: ObjectStore, registry: Registry
) -> None:
    state = train(store, registry, "run-1", blobs())
    first = workflow.promote(store, registry, state)
    second = workflow.promote(store, registry, state)
    assert first["promoted"] is second["promoted"] is True
    assert "already production" in second["promotion"]["reason"]


def test_regression_promotes_on_lower_rmse_only(store: ObjectStore, registry: Registry) -> None:
    # Given a well-trained linear model in production
    good = train(
        store, registry, "good", linear_data(), model="line", architecture={"type": "linear"}, epochs=20,
        optimizer={"type": "adam", "learning_rate": 0.05},
    )  # fmt: skip
    assert workflow.promote(store, registry, good)["promoted"]
    # When a barely trained one is promoted
    weak = train(
        store, registry, "weak", linear_data(), model="line", architecture={"type": "linear"}, epochs=1,
        optimizer={"type": "sgd", "learning_rate": 0.0001},
    )  # fmt: skip
    result = workflow.promote(store, registry, weak)
    # Then it is refused on RMSE, lower being better
    assert result["promoted"] is False
    assert result["promotion"]["metric"] == "val_rmse"
    assert "(lower is better)" in result["promotion"]["reason"]
    assert registry.get_alias("line", "production") == good["version"]
    assert store.get_json("training/weak/status.json")["status"] == "succeeded"


def test_production_without_a_comparable_metric_is_left_alone(
    store: ObjectStore, registry: Registry
) -> None:
    # Given a hand-uploaded production model with no validation metrics
    uploaded = registry.publish("blobs", models.linear(4, 3)[0], aliases=("production",))
    # When a trained version asks to be promoted
    result = workflow.promote(store, registry, train(store, registry, "run-1", blobs()))
    # Then production stays, and the reply says how to move it by hand
    assert result["promoted"] is False
    assert "has no val_accuracy to compare with" in result["promotion"]["reason"]
    assert registry.get_alias("blobs", "production") == uploaded.version


def test_record_failure_keeps_the_error_type_and_message_from_the_lambda_error(
    store: ObjectStore,
) -> None:
    cause = json.dumps({"errorType": "InvalidRequest", "errorMessage": "bad field 'epochs'"})
    reply = workflow.record_failure(
        store,
        {"run_id": "r1", "checkpoint": "training/r1/checkpoints/000000005.npz",
         "error": {"Error": "InvalidRequest", "Cause": cause}},
    )  # fmt: skip
    assert reply == {
        "run_id": "r1", "status": "failed", "error": "InvalidRequest", "message": "bad field 'epochs'"
    }  # fmt: skip
    status = store.get_json("training/r1/status.json")
    assert status["last_checkpoint"] == "training/r1/checkpoints/000000005.npz"
    # A cause that is not a Lambda error document is kept as it is
    plain = workflow.record_failure(
        store, {"run_id": "r2", "error": {"Error": "States.Timeout", "Cause": "took too long"}}
    )
    assert (plain["error"], plain["message"]) == ("States.Timeout", "took too long")


def test_a_step_refuses_a_checkpoint_of_another_run(store: ObjectStore, registry: Registry) -> None:
    state = train(store, registry, "run-1", blobs())
    forged = {**state, "run_id": "run-2", "checkpoint": state["checkpoint"]}
    store.put_json("training/run-2/run.json", store.get_json("training/run-1/run.json"))
    with pytest.raises(InvalidRequest, match="not a file of training run run-2"):
        workflow.evaluate(store, forged)


def test_a_run_too_long_for_the_step_functions_history_is_refused(
    store: ObjectStore, registry: Registry
) -> None:
    with pytest.raises(InvalidRequest, match="25,000"):
        train(store, registry, "long", blobs(rows=400), workers=8, batch_size=1, epochs=50)


def test_an_invalid_run_id_is_refused(store: ObjectStore, registry: Registry) -> None:
    with pytest.raises(InvalidRequest, match="invalid training run id"):
        workflow.prepare_run(
            store, registry, {"request": spec_dict(), "run_id": "../escape"}, max_dataset_bytes=1
        )


def test_the_time_budget_keeps_the_margin_and_never_drops_below_a_second() -> None:
    assert workflow.time_budget(900_000, 10_000) == 890.0
    assert workflow.time_budget(5_000, 10_000) == 1.0


def prepared(store: ObjectStore, registry: Registry, run_id: str = "run-1") -> dict[str, Any]:
    store.put("datasets/data.csv", to_csv(blobs()))
    request = spec_dict(dataset="datasets/data.csv")
    return workflow.prepare_run(
        store, registry, {"request": request, "run_id": run_id}, max_dataset_bytes=10**7
    )


def test_later_steps_load_the_run_record_and_never_parse_the_spec_again(
    store: ObjectStore, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a prepared run, its spec validated once by Prepare
    state = prepared(store, registry)

    # When validating a spec would now fail
    def refuse(value: Any) -> None:
        raise AssertionError("the spec was validated again")

    monkeypatch.setattr(workflow, "parse_spec", refuse)
    monkeypatch.setattr(spec_module, "parse_spec", refuse)
    # Then training, Evaluate, Export and Register run from the typed record alone
    while not state["done"]:
        state = workflow.train_steps(store, state, time_budget=60.0, max_steps=5)
    state = workflow.evaluate(store, state)
    state = workflow.export(store, registry, state)
    assert workflow.register(store, registry, state)["version"] == 1
    # And the record keeps the resolved spec: the task decided, every default filled in
    record = store.get_json("training/run-1/run.json")
    assert record["spec"]["task"] == "classification"
    assert record["spec"]["dataset"] == {
        "bucket": None,
        "key": "datasets/data.csv",
        "format": "csv",
    }
    assert record["spec"]["optimizer"]["beta2"] == 0.999


def test_a_corrupt_run_record_is_refused_naming_its_key(
    store: ObjectStore, registry: Registry
) -> None:
    # Given a prepared run whose run.json was damaged by hand
    state = prepared(store, registry)
    record = store.get_json("training/run-1/run.json")
    store.put_json("training/run-1/run.json", {**record, "shard_rows": "many"})
    # When the next step loads it, Then it is refused as corrupt, naming the key and the field
    with pytest.raises(CorruptObject) as caught:
        workflow.train_steps(store, state, time_budget=60.0)
    assert "training/run-1/run.json" in str(caught.value)
    assert "shard_rows" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"checkpoint": 5}, "step input field 'checkpoint': must be a string, got 5"),
        ({"checkpoint": None}, "step input field 'checkpoint': must be a string, got None"),
        ({"epoch": -1}, "step input field 'epoch': must be >= 0, got -1"),
        ({"done": "no"}, "step input field 'done': must be true or false, got 'no'"),
        ({"task": "ranking"}, "step input field 'task': unknown task 'ranking'"),
        ({"run_id": "../escape"}, "invalid training run id"),
    ],
)
def test_a_hand_made_step_input_is_refused_naming_the_field(
    store: ObjectStore, registry: Registry, change: dict[str, Any], message: str
) -> None:
    # Given Prepare's reply with one field made wrong
    state = {**prepared(store, registry), **change}
    # When TrainSteps gets it, Then the error names the field
    with pytest.raises(InvalidRequest) as caught:
        workflow.train_steps(store, state, time_budget=60.0)
    assert message in str(caught.value)


def test_a_step_input_missing_a_field_says_which(store: ObjectStore, registry: Registry) -> None:
    state = prepared(store, registry)
    del state["checkpoint"]
    with pytest.raises(InvalidRequest, match="step input field 'checkpoint': is required"):
        workflow.evaluate(store, state)


def test_a_round_result_missing_its_file_is_named_by_its_place(
    store: ObjectStore, registry: Registry
) -> None:
    state = prepared(store, registry)
    broken = {**state, "round": [{"worker": 0, "steps": 1}]}
    with pytest.raises(InvalidRequest, match=r"step input field 'round\[0\].result': is required"):
        workflow.reduce_round(store, broken)

"""The whole training workflow on digits, through the real state machine definition."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson

from maaskit.training.weights import ModelWeights
from tests.integration.conftest import cold_start
from tests.support.events import FakeContext, api_event
from tests.support.training_stack import TrainingStack

from .data import digits, digits_spec, to_csv


def test_digits_trains_registers_promotes_and_serves(stack: TrainingStack) -> None:
    # Given the digits CSV in the bucket and the spec from the issue
    table = digits()
    stack.store.put("datasets/digits.csv", to_csv(table))
    etag = stack.store.head("datasets/digits.csv").etag  # type: ignore[union-attr]
    # When the state machine runs it
    output = stack.output(stack.run(digits_spec(), "digits-1"))
    # Then training took several checkpointed invocations (690 steps, at most 100 each)
    assert output["step"] == 30 * 23
    assert len(stack.calls("TrainStepsFunction")) == 7
    assert all(call.error_type is None for call in stack.lambdas.invocations)
    # And version 1 is published with metrics, classes, hyper-parameters and lineage
    assert output["version"] == 1
    manifest = stack.registry.get_manifest("digits-mlp", 1)
    assert manifest.metrics["val_accuracy"] >= 0.95
    assert manifest.metrics["epochs"] == 30
    assert manifest.metadata["classes"] == list(range(10))
    assert manifest.metadata["task"] == "classification"
    assert manifest.metadata["hyperparameters"]["optimizer"] == {
        "type": "adam", "learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
    }  # fmt: skip
    assert manifest.metadata["weights"] == "training/digits-1/weights.npz"
    assert manifest.metadata["training"]["parity"]["max_abs_diff"] <= 1e-5
    assert manifest.lineage == {
        "run_id": "digits-1",
        "dataset": "s3://maaskit-test-models/datasets/digits.csv",
        "dataset_etag": etag,
    }
    assert [spec.name for spec in manifest.signature.outputs] == ["probabilities", "label"]
    # And it is production, because there was none
    assert output["promoted"] is True
    assert stack.registry.aliases("digits-mlp") == {"latest": 1, "production": 1}
    # And the run left its per-epoch metrics and its status
    lines = stack.store.get_bytes("training/digits-1/metrics.jsonl").decode().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 31))
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(json.loads(lines[0]))
    status = stack.status("digits-1")
    assert status["status"] == "succeeded"
    assert status["version"] == 1

    # When the API function serves the production version with raw pixels
    api = cold_start("functions.api.app")
    rows = table.features[:40]
    event = api_event(
        "POST",
        "/models/digits-mlp/predict",
        {"input": rows.tolist()},
        query={"alias": "production"},
    )
    response = api.lambda_handler(event, FakeContext())
    # Then it answers with labels that are the digits, and probabilities
    assert response["statusCode"] == 200, response["body"]
    body = orjson.loads(response["body"])
    assert body["version"] == 1
    labels = np.array(body["outputs"]["label"])
    assert (labels == table.target[:40]).mean() >= 0.9
    assert np.array(body["outputs"]["probabilities"]).shape == (40, 10)


def test_a_worse_model_is_registered_but_production_stays(stack: TrainingStack) -> None:
    # Given a production model trained on digits
    stack.store.put("datasets/digits.csv", to_csv(digits()))
    stack.output(stack.run(digits_spec(epochs=10), "good"))
    # When a barely trained model of the same name finishes
    weak = digits_spec(epochs=1, optimizer={"type": "sgd", "learning_rate": 0.0001})
    output = stack.output(stack.run(weak, "weak"))
    # Then it is version 2 and latest, but production is still version 1, with the reason
    assert output["version"] == 2
    assert output["promoted"] is False
    assert "does not beat production version 1" in output["promotion"]["reason"]
    assert stack.registry.aliases("digits-mlp") == {"latest": 2, "production": 1}
    assert stack.status("weak")["promoted"] is False


def test_fine_tuning_reuses_the_base_body_and_learns_new_classes(stack: TrainingStack) -> None:
    # Given a production digits model (10 classes)
    stack.store.put("datasets/digits.csv", to_csv(digits()))
    stack.output(stack.run(digits_spec(epochs=5), "base"))
    base = ModelWeights.from_bytes(stack.store.get_bytes("training/base/weights.npz"))
    # When a new model is fine-tuned from it on digits 0-4 only, its first layer frozen
    stack.store.put("datasets/low-digits.csv", to_csv(digits(classes=(0, 1, 2, 3, 4))))
    spec = digits_spec(
        model="low-digits",
        dataset="s3://maaskit-test-models/datasets/low-digits.csv",
        epochs=10,
        optimizer={"type": "adam", "learning_rate": 0.01},
        base_model={"name": "digits-mlp", "alias": "production", "freeze": [0]},
    )
    output = stack.output(stack.run(spec, "fine-tune"))
    # Then the lineage names the base, the output layer is new and the first layer unchanged
    manifest = stack.registry.get_manifest("low-digits", output["version"])
    assert manifest.lineage["base_model"] == {
        "name": "digits-mlp",
        "version": 1,
        "weights": "training/base/weights.npz",
        "new_output_layer": True,
        "frozen_layers": [0],
    }
    assert manifest.metadata["classes"] == [0, 1, 2, 3, 4]
    tuned = ModelWeights.from_bytes(stack.store.get_bytes(output["weights"]))
    for ours, theirs in zip(
        tuned.architecture.layer_slices(0), base.architecture.layer_slices(0), strict=True
    ):
        assert tuned.params[ours].tobytes() == base.params[theirs].tobytes()
    assert manifest.metrics["val_accuracy"] >= 0.95
    assert np.load(io.BytesIO(stack.store.get_bytes(output["weights"])))["classes"].size == 5

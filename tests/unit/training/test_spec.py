from __future__ import annotations

from typing import Any

import pytest

from maaskit.errors import InvalidRequest
from maaskit.training.spec import parse_spec

from .helpers import spec_dict


def test_the_issue_example_parses_with_defaults_filled_in() -> None:
    # Given the spec from the issue, verbatim
    raw = {
        "model": "digits-mlp",
        "dataset": "s3://BUCKET/datasets/digits.csv",
        "target": "label",
        "architecture": {"type": "mlp", "hidden": [64]},
        "epochs": 30,
        "batch_size": 64,
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "validation_split": 0.2,
        "seed": 0,
    }
    # When it is parsed
    spec = parse_spec(raw)
    # Then every field is typed and the defaults are the documented ones
    assert spec.dataset.bucket == "BUCKET"
    assert spec.dataset.key == "datasets/digits.csv"
    assert spec.dataset.format == "csv"
    assert spec.architecture.hidden == (64,)
    assert spec.architecture.activation == "relu"
    assert spec.optimizer.type == "adam"
    assert spec.optimizer.beta2 == 0.999
    assert spec.task is None  # decided later, from the target
    assert spec.workers == 1
    assert spec.local_steps == 1
    assert spec.lr_schedule.type == "constant"


@pytest.mark.parametrize(
    ("optimizer", "schedule"),
    [
        ({"type": "adam", "learning_rate": 0.1, "beta1": 0.8}, {"type": "step", "gamma": 0.5}),
        ({"type": "momentum", "learning_rate": 0.1, "momentum": 0.5}, {"type": "cosine"}),
        ({"type": "sgd", "learning_rate": 0.1}, {"type": "constant"}),
    ],
)
def test_the_normalised_dict_parses_back_to_the_same_spec(
    optimizer: dict[str, Any], schedule: dict[str, Any]
) -> None:
    # Given a spec using every optional field
    spec = parse_spec(
        spec_dict(
            optimizer=optimizer,
            weight_decay=0.001,
            lr_schedule=schedule,
            activation="tanh",
            patience=2,
            task="classification",
            base_model={"name": "base", "version": 3, "freeze": [0]},
            workers=2,
            local_steps=4,
            features=["a", "b"],
        )
    )
    # When it goes to JSON and back, Then nothing changes
    assert parse_spec(spec.to_dict()) == spec


def test_linear_is_regression_and_softmax_is_classification() -> None:
    assert parse_spec(spec_dict(architecture={"type": "linear"})).task == "regression"
    assert parse_spec(spec_dict(architecture={"type": "softmax"})).task == "classification"
    assert parse_spec(spec_dict(architecture={"type": "logistic"})).task == "classification"


def test_base_model_without_alias_or_version_means_production() -> None:
    spec = parse_spec(spec_dict(base_model={"name": "base"}))
    assert spec.base_model is not None
    assert spec.base_model.alias == "production"


BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"architecture": {"type": "transformer"}}, "unknown architecture 'transformer'"),
    ({"optimizer": {"type": "adamw", "learning_rate": 0.1}}, "unknown optimizer 'adamw'"),
    ({"optimizer": {"type": "sgd"}}, "learning_rate"),
    ({"optimizer": {"type": "sgd", "learning_rate": -1}}, "must be > 0"),
    ({"optimizer": {"type": "sgd", "learning_rate": "fast"}}, "must be a number"),
    ({"optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}}, "momentum"),
    ({"optimizer": {"type": "adam", "learning_rate": 0.1, "beta1": 1.0}}, "beta1"),
    ({"architecture": {"type": "mlp"}}, "hidden layer sizes"),
    ({"architecture": {"type": "mlp", "hidden": []}}, "at least one hidden layer"),
    ({"architecture": {"type": "mlp", "hidden": [0]}}, "architecture.hidden[0]"),
    ({"architecture": {"type": "linear", "hidden": [4]}}, "no hidden layers"),
    ({"activation": "sigmoid"}, "unknown activation 'sigmoid'"),
    (
        {
            "activation": "tanh",
            "architecture": {"type": "mlp", "hidden": [4], "activation": "relu"},
        },
        "conflicts",
    ),
    ({"epochs": 0}, "'epochs'"),
    ({"epochs": True}, "must be an integer"),
    ({"epochs": 2.5}, "must be an integer"),
    ({"batch_size": "64"}, "'batch_size'"),
    ({"validation_split": 0}, "validation_split"),
    ({"validation_split": 1.0}, "validation_split"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"weight_decay": float("nan")}, "finite"),
    ({"patience": 0}, "patience"),
    ({"workers": 0}, "workers"),
    ({"workers": 65}, "workers"),
    ({"local_steps": 0}, "local_steps"),
    ({"task": "ranking"}, "unknown task 'ranking'"),
    ({"architecture": {"type": "linear"}, "task": "classification"}, "regression"),
    ({"architecture": {"type": "softmax"}, "task": "regression"}, "classifies"),
    ({"lr_schedule": {"type": "exponential"}}, "unknown learning-rate schedule"),
    ({"lr_schedule": {"type": "cosine", "gamma": 0.5}}, "step schedule"),
    ({"lr_schedule": {"type": "step", "gamma": 0}}, "gamma"),
    ({"dataset": "https://example.com/data.csv"}, "only s3://"),
    ({"dataset": "s3://bucket/datasets/data.parquet"}, "cannot tell the format"),
    ({"dataset": "s3://bucket/"}, "not an S3 URI"),
    ({"target": None}, "'target'"),
    ({"features": ["label"]}, "target column"),
    ({"features": []}, "non-empty list"),
    ({"model": "Bad Name!"}, "invalid model name"),
    ({"paitence": 3}, "unknown field(s) 'paitence'"),
    ({"base_model": {"name": "base", "alias": "production", "version": 2}}, "not both"),
    ({"base_model": {"name": "base", "freeze": [5]}}, "layer 5 does not exist"),
    ({"base_model": {"name": "base", "freeze": [0, 0]}}, "twice"),
    ({"base_model": {"name": "base", "colour": "red"}}, "unknown field(s) 'colour'"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_SPECS)
def test_each_bad_field_is_refused_with_a_message_naming_it(
    overrides: dict[str, Any], message: str
) -> None:
    # Given a valid spec with one field made wrong
    raw = spec_dict(**overrides)
    # When it is parsed, Then the error says what is wrong
    with pytest.raises(InvalidRequest) as caught:
        parse_spec(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize("missing", ["model", "dataset", "architecture", "optimizer", "epochs"])
def test_a_missing_required_field_is_named(missing: str) -> None:
    raw = spec_dict()
    del raw[missing]
    with pytest.raises(InvalidRequest, match=f"'{missing}': is required"):
        parse_spec(raw)


def test_a_spec_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_spec(["model"])


def test_npz_needs_no_target_and_jsonl_is_recognised() -> None:
    npz = parse_spec(spec_dict(dataset="datasets/x.npz", target=None))
    assert npz.dataset.format == "npz"
    assert npz.dataset.bucket is None
    assert parse_spec(spec_dict(dataset="s3://b/d/x.jsonl")).dataset.format == "jsonl"
    assert parse_spec(spec_dict(dataset="s3://b/d/x.txt", format="csv")).dataset.format == "csv"


def test_an_integral_float_is_an_integer_as_json_schema_says() -> None:
    # Given counts written as 30.0 (JSON Schema counts 30.0 as an integer)
    spec = parse_spec(spec_dict(epochs=30.0, batch_size=16.0))
    # Then they are the integers
    assert (spec.epochs, spec.batch_size) == (30, 16)
    assert isinstance(spec.epochs, int)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"lr_schedule": {"type": "step", "gama": 0.5}},
            "unknown field(s) 'gama' in 'lr_schedule' (did you mean 'gamma'?); "
            "allowed: gamma, step_size, type",
        ),
        (
            {"optimizer": {"type": "sgd", "learning_rate": 0.1, "beta2": 0.9}},
            "training spec field 'optimizer.beta2': only applies to the adam optimizer, not sgd",
        ),
        (
            {"optimizer": {"learning_rate": 0.1}},
            "training spec field 'optimizer.type': is required, one of sgd, momentum, adam",
        ),
        (
            {"architecture": {"type": "mlp", "hidden": [8, "wide"]}},
            "training spec field 'architecture.hidden[1]': must be an integer, got 'wide'",
        ),
        (
            {"workers": 65},
            "training spec field 'workers': must be >= 1 and <= 64, got 65",
        ),
        (
            {"optimizer": "adam"},
            "training spec field 'optimizer': must be a JSON object, got str",
        ),
    ],
)
def test_a_message_names_the_path_what_was_wrong_and_what_is_accepted(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_spec(spec_dict(**overrides))
    assert str(caught.value) == message


def test_the_resolved_spec_keeps_the_defaults_of_the_document() -> None:
    # Given a step schedule and a momentum optimizer with nothing but their type
    spec = parse_spec(
        spec_dict(
            optimizer={"type": "momentum", "learning_rate": 0.1}, lr_schedule={"type": "step"}
        )
    )
    # Then the documented defaults are filled in
    assert (spec.optimizer.momentum, spec.lr_schedule.step_size, spec.lr_schedule.gamma) == (
        0.9,
        10,
        0.1,
    )

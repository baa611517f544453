"""Bad inputs and failing runs: a clear error, a recorded status, the registry untouched."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maaskit.errors import NotFound
from tests.support.training_stack import TrainingStack

from .data import digits, digits_spec, to_csv

BUCKET_URI = "s3://maaskit-test-models/datasets/"


def regression_csv(rows: int = 120) -> bytes:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    y = x @ [1.0, 2.0, 3.0] * 100.0
    lines = ["a,b,c,y", *(f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(x, y, strict=True))]
    return ("\n".join(lines) + "\n").encode()


CASES: list[tuple[str, dict[str, Any], bytes | None, str, str]] = [
    (
        "unknown-architecture",
        {"architecture": {"type": "transformer"}},
        None,
        "InvalidRequest",
        "unknown architecture 'transformer'",
    ),
    (
        "unknown-optimizer",
        {"optimizer": {"type": "lbfgs", "learning_rate": 0.1}},
        None,
        "InvalidRequest",
        "unknown optimizer 'lbfgs'",
    ),
    (
        "missing-target",
        {"target": "digit"},
        None,
        "InvalidRequest",
        "target column 'digit' is not in the CSV header",
    ),
    (
        "non-numeric",
        {"dataset": BUCKET_URI + "words.csv"},
        b"a,b,label\n1,x,0\n2,y,1\n",
        "InvalidRequest",
        "feature column 'b' is not numeric: row 1",
    ),
    (
        "nan-feature",
        {"dataset": BUCKET_URI + "holes.csv", "batch_size": 1},
        b"a,label\n1,0\nnan,1\n3,0\n4,1\n",
        "InvalidRequest",
        "feature column 'a' has NaN in row 2",
    ),
    (
        "single-class",
        {"dataset": BUCKET_URI + "ones.csv", "batch_size": 2, "task": "classification"},
        b"a,label\n1,1\n2,1\n3,1\n4,1\n",
        "InvalidRequest",
        "single class",
    ),
    (
        "fewer-rows-than-a-batch",
        {"batch_size": 4096},
        None,
        "InvalidRequest",
        "fewer than one batch",
    ),
    (
        "dataset-missing",
        {"dataset": BUCKET_URI + "nowhere.csv"},
        None,
        "NotFound",
        "does not exist",
    ),
    (
        "dataset-elsewhere",
        {"dataset": "s3://someone-elses-bucket/datasets/digits.csv"},
        None,
        "InvalidRequest",
        "is not this deployment's bucket",
    ),
    (
        "diverging",
        {
            "dataset": BUCKET_URI + "line.csv",
            "target": "y",
            "architecture": {"type": "linear"},
            "optimizer": {"type": "sgd", "learning_rate": 1e6},
            "batch_size": 8,
        },
        regression_csv(),
        "TrainingDiverged",
        "lower the learning rate",
    ),
]


@pytest.mark.parametrize(
    ("run_id", "overrides", "upload", "error", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_a_bad_run_fails_clearly_and_leaves_the_registry_alone(
    stack: TrainingStack,
    run_id: str,
    overrides: dict[str, Any],
    upload: bytes | None,
    error: str,
    message: str,
) -> None:
    # Given the digits dataset, maybe another file, and a spec with one thing wrong
    stack.store.put("datasets/digits.csv", to_csv(digits()))
    spec = digits_spec(**overrides)
    if upload is not None:
        stack.store.put(spec["dataset"].removeprefix("s3://maaskit-test-models/"), upload)
    # When the workflow runs it
    described = stack.run(spec, run_id)
    # Then the execution fails with the error's own name and message
    assert described["status"] == "FAILED"
    assert described["error"] == error
    assert message in described["cause"]
    # And status.json says so, for a person to find
    status = stack.status(run_id)
    assert status["status"] == "failed"
    assert status["error"] == error
    assert message in status["message"]
    # And nothing was published
    assert stack.registry.list_models() == []
    assert not stack.calls("TrainRegisterFunction")


def test_a_base_model_of_another_architecture_is_refused(stack: TrainingStack) -> None:
    # Given a production MLP(64) digits model
    stack.store.put("datasets/digits.csv", to_csv(digits()))
    stack.output(stack.run(digits_spec(epochs=2), "base"))
    before = stack.registry.aliases("digits-mlp")
    # When a fine-tune asks for MLP(32) on top of it
    spec = digits_spec(
        architecture={"type": "mlp", "hidden": [32]}, base_model={"name": "digits-mlp"}
    )
    described = stack.run(spec, "mismatch")
    # Then it fails naming both architectures, and the registry is as it was
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidRequest"
    assert "hidden [64]" in described["cause"]
    assert "hidden [32]" in described["cause"]
    assert stack.registry.aliases("digits-mlp") == before
    assert stack.registry.list_versions("digits-mlp") == [1]


def test_a_base_model_that_does_not_exist_is_named(stack: TrainingStack) -> None:
    stack.store.put("datasets/digits.csv", to_csv(digits()))
    described = stack.run(digits_spec(base_model={"name": "ghost", "version": 3}), "ghost")
    assert described["status"] == "FAILED"
    assert described["error"] == "NotFound"
    assert "'ghost'" in described["cause"]
    with pytest.raises(NotFound):
        stack.registry.get_alias("digits-mlp", "latest")

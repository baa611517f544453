"""Datasets for workflow tests, written as the files a person would upload."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

from maaskit.training.datasets import Table


def digits(classes: tuple[int, ...] | None = None) -> Table:
    data = load_digits()
    keep = np.ones(len(data.target), bool) if classes is None else np.isin(data.target, classes)
    names = tuple(f"pixel{i}" for i in range(data.data.shape[1]))
    return Table(data.data[keep], data.target[keep].astype(np.float64), names)


def to_csv(table: Table, target: str = "label") -> bytes:
    out = io.StringIO()
    out.write(",".join((*table.feature_names, target)) + "\n")
    for row, label in zip(table.features, table.target, strict=True):
        out.write(",".join(f"{v:g}" for v in row) + f",{label:g}\n")
    return out.getvalue().encode()


def digits_spec(**overrides: Any) -> dict[str, Any]:
    """The spec from the issue, verbatim, plus overrides."""
    spec: dict[str, Any] = {
        "model": "digits-mlp",
        "dataset": "s3://maaskit-test-models/datasets/digits.csv",
        "target": "label",
        "architecture": {"type": "mlp", "hidden": [64]},
        "epochs": 30,
        "batch_size": 64,
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "validation_split": 0.2,
        "seed": 0,
    }
    spec.update(overrides)
    return spec

"""Small synthetic datasets and specs, built in code so every test says what it feeds in."""

from __future__ import annotations

from typing import Any

import numpy as np

from maaskit.training.datasets import Table
from maaskit.training.network import init_params
from maaskit.training.preparation import PreparedData, architecture_for, prepare
from maaskit.training.spec import TrainingSpec, parse_spec
from maaskit.training.split import shard_indices
from maaskit.training.trainer import Shard, Trainer


def spec_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "blobs",
        "dataset": "s3://bucket/datasets/blobs.csv",
        "target": "label",
        "architecture": {"type": "mlp", "hidden": [8]},
        "epochs": 3,
        "batch_size": 16,
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "validation_split": 0.25,
        "seed": 0,
    }
    base.update(overrides)
    return base


def make_spec(**overrides: Any) -> TrainingSpec:
    return parse_spec(spec_dict(**overrides))


def blobs(rows: int = 120, features: int = 4, classes: int = 3, seed: int = 0) -> Table:
    """Gaussian blobs, one per class, far enough apart to be learnable."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(classes, features))
    labels = np.arange(rows) % classes
    x = centers[labels] + rng.normal(size=(rows, features))
    return Table(
        features=x * 10.0 + 5.0,  # unstandardised on purpose
        target=labels.astype(np.float64),
        feature_names=tuple(f"f{i}" for i in range(features)),
    )


def linear_data(rows: int = 96, features: int = 3, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = x @ np.arange(1.0, features + 1.0) * 50.0 + 1000.0 + rng.normal(scale=0.1, size=rows)
    return Table(features=x, target=y, feature_names=tuple(f"f{i}" for i in range(features)))


def trainer_for(table: Table, spec: TrainingSpec) -> tuple[Trainer, PreparedData]:
    data = prepare(table, spec)
    architecture = architecture_for(data.spec, data.train.x.shape[1], data.n_outputs)
    trainer = Trainer(
        architecture, data.spec, data.validation, [data.train.rows], target_scale=data.target_scale
    )
    return trainer, data


def parallel_trainer_for(table: Table, spec: TrainingSpec) -> tuple[Trainer, list[Shard]]:
    """A trainer over ``spec.workers`` shards of the training split, as Prepare makes them."""
    data = prepare(table, spec)
    architecture = architecture_for(data.spec, data.train.x.shape[1], data.n_outputs)
    parts = shard_indices(data.train.rows, spec.workers, spec.seed)
    shards = [Shard(data.train.x[part], data.train.y[part]) for part in parts]
    trainer = Trainer(
        architecture,
        data.spec,
        data.validation,
        [shard.rows for shard in shards],
        target_scale=data.target_scale,
    )
    return trainer, shards


def initial_params(trainer: Trainer, seed: int = 0) -> np.ndarray:
    return init_params(trainer.architecture, np.random.default_rng(seed))

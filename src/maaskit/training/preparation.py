"""From a parsed table and a spec to what the step loop consumes.

Decides the task, encodes labels, splits (stratified for classification), fits the
standardisation on the training rows only, and refuses data that cannot train a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import InvalidRequest
from maaskit.training.datasets import Table
from maaskit.training.evaluation import Shard, TargetScale
from maaskit.training.network import Architecture
from maaskit.training.scaling import Standardizer
from maaskit.training.spec import TrainingSpec
from maaskit.training.split import train_validation_split
from maaskit.training.targets import encode_labels, infer_task, regression_target

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PreparedData:
    spec: TrainingSpec  # with ``task`` decided
    feature_names: tuple[str, ...]
    classes: npt.NDArray[Any] | None  # int64 or str; None for regression
    x_scaler: Standardizer
    target_scale: TargetScale | None  # regression only
    train: Shard
    validation: Shard
    validation_raw_x: FloatArray  # what a caller of the exported model would send
    validation_index: npt.NDArray[np.int64]  # the table rows held out, in validation order

    @property
    def n_outputs(self) -> int:
        return 1 if self.classes is None else int(self.classes.size)


def prepare(table: Table, spec: TrainingSpec) -> PreparedData:
    task = spec.task or infer_task(table.target)
    spec = spec.with_task(task)
    labels = encode_labels(table.target) if task == "classification" else None
    train_rows, validation_rows = train_validation_split(
        table.rows,
        spec.validation_split,
        spec.seed,
        labels.indices if labels is not None else None,
    )
    if train_rows.size < spec.batch_size:
        raise InvalidRequest(
            f"the training split has {train_rows.size} row(s), fewer than one batch "
            f"(batch_size {spec.batch_size}): lower batch_size or add data"
        )
    x_train_raw = table.features[train_rows]
    x_scaler = Standardizer.fit(x_train_raw)
    target_scale: TargetScale | None = None
    if labels is not None:
        if np.unique(labels.indices[train_rows]).size < 2:
            raise InvalidRequest("the training split has a single class: add data")
        y_train: npt.NDArray[Any] = labels.indices[train_rows]
        y_validation: npt.NDArray[Any] = labels.indices[validation_rows]
    else:
        target = regression_target(table.target)
        mean = float(target[train_rows].mean())
        std = float(target[train_rows].std())
        target_scale = TargetScale(mean=mean, scale=std if std > 1e-12 else 1.0)
        y_train = ((target[train_rows] - mean) / target_scale.scale).reshape(-1, 1)
        y_validation = ((target[validation_rows] - mean) / target_scale.scale).reshape(-1, 1)
    validation_raw = table.features[validation_rows]
    return PreparedData(
        spec=spec,
        feature_names=table.feature_names,
        classes=labels.classes if labels is not None else None,
        x_scaler=x_scaler,
        target_scale=target_scale,
        train=Shard(x_scaler.transform(x_train_raw), np.ascontiguousarray(y_train)),
        validation=Shard(x_scaler.transform(validation_raw), np.ascontiguousarray(y_validation)),
        validation_raw_x=validation_raw,
        validation_index=np.asarray(validation_rows, dtype=np.int64),
    )


def architecture_for(spec: TrainingSpec, n_features: int, n_outputs: int) -> Architecture:
    if spec.task is None:
        raise ValueError("decide the task (prepare) before building the architecture")
    return Architecture(
        kind=spec.architecture.type,
        layer_sizes=(n_features, *spec.architecture.hidden, n_outputs),
        activation=spec.architecture.activation,
        task=spec.task,
    )

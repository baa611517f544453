"""The SDK: call a deployed (or local) maaskit from Python.

``Model`` is one served model over HTTP, numpy in and numpy out::

    m = Model("digits", endpoint="http://127.0.0.1:3000/")
    probabilities = m.predict(images)          # or: m.set_input(images); m.predict()
    m.metadata(), m.versions()

``Client`` covers the rest, for scripts and the ``maaskit`` command: the registry (over S3),
datasets, training runs (Step Functions executions) and batch jobs (files through S3)::

    client = Client.connect(local=True)        # or stack="maaskit", or api_url=..., ...
    client.push_model("model.onnx", "digits", aliases=("production",))
    run = client.start_training(spec); client.wait_for_training(run.run_id)

``Client`` is one object over one ``Connection``; each group of its operations lives in its
own module (``catalog``, ``predictions``, ``datasets``, ``training_runs``, ``batch_jobs``).
Importing this module costs numpy and the standard library; boto3 is imported when a
``Client`` first needs AWS, onnxruntime only to validate a model being pushed.
"""

from __future__ import annotations

from typing import Any

from maaskit.sdk.batch_jobs import BatchJob, BatchOperations
from maaskit.sdk.catalog import CatalogOperations
from maaskit.sdk.datasets import DatasetOperations
from maaskit.sdk.model import ArrayLike, Model
from maaskit.sdk.predictions import PredictionOperations
from maaskit.sdk.targets import Target, TargetOptions
from maaskit.sdk.training_runs import (
    TrainingOperations,
    TrainingRun,
    TrainingStatus,
    execution_input,
    new_run_id,
)

__all__ = [
    "ArrayLike",
    "BatchJob",
    "Client",
    "Model",
    "TrainingRun",
    "TrainingStatus",
    "execution_input",
    "new_run_id",
]


class Client(
    CatalogOperations,
    PredictionOperations,
    DatasetOperations,
    TrainingOperations,
    BatchOperations,
):
    """Registry, datasets, training runs and batch jobs of one deployment."""

    @classmethod
    def connect(cls, **options: Any) -> Client:
        """``Client.connect(local=True)``, ``(stack="maaskit")``, ``(api_url=..., ...)``."""
        return cls(Target(TargetOptions(**options)))

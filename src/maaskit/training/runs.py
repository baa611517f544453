"""Where a training run keeps its files, and the run record every step starts from.

Layout under ``training/{run_id}/``::

    run.json                      the resolved spec and facts about the data (written by Prepare)
    status.json                   running / succeeded / failed, with the reason
    data/shard-000.npz ...        standardised training rows, one file per worker
    data/validation.npz           standardised and raw validation rows
    weights-initial.npz           the model before training (architecture, scaler, classes)
    checkpoints/000000042.npz     the training state after 42 optimizer steps
    rounds/000007/worker-001.npz  a worker's state after round 7 (data-parallel runs)
    metrics.jsonl                 one line per finished epoch
    embedding.json, data/texts.json, data/embeddings/000003.npy   a text fine-tune's dataset,
                                  the plan for embedding it, and each batch's embeddings
    data/validation-texts.json    a text fine-tune's held-out texts (Export's parity check)
    evaluation.json, weights.npz, model.onnx   what Evaluate and Export leave behind

Checkpoint keys are named by step, and their contents are a pure function of the step, so
a retried or duplicated invocation rewrites the same bytes under the same key.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import IntegrityError, InvalidRequest
from maaskit.training.network import Architecture
from maaskit.training.spec import TrainingSpec, parse_spec
from maaskit.training.trainer import Shard, TargetScale

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidRequest(
            f"invalid training run id {run_id!r}: use 1-80 characters from A-Z, a-z, 0-9, "
            "'_' and '-' (a Step Functions execution name)"
        )
    return run_id


@dataclass(frozen=True)
class RunPaths:
    run_id: str

    @property
    def prefix(self) -> str:
        return f"training/{self.run_id}/"

    @property
    def record(self) -> str:
        return self.prefix + "run.json"

    @property
    def status(self) -> str:
        return self.prefix + "status.json"

    @property
    def metrics(self) -> str:
        return self.prefix + "metrics.jsonl"

    @property
    def evaluation(self) -> str:
        return self.prefix + "evaluation.json"

    @property
    def validation(self) -> str:
        return self.prefix + "data/validation.npz"

    @property
    def initial_weights(self) -> str:
        return self.prefix + "weights-initial.npz"

    @property
    def weights(self) -> str:
        return self.prefix + "weights.npz"

    @property
    def model(self) -> str:
        return self.prefix + "model.onnx"

    @property
    def embedding_plan(self) -> str:
        return self.prefix + "embedding.json"

    @property
    def texts(self) -> str:
        return self.prefix + "data/texts.json"

    @property
    def validation_texts(self) -> str:
        return self.prefix + "data/validation-texts.json"

    def embedding_batch(self, batch: int) -> str:
        return self.prefix + f"data/embeddings/{batch:06d}.npy"

    def shard(self, worker: int) -> str:
        return self.prefix + f"data/shard-{worker:03d}.npz"

    def checkpoint(self, step: int) -> str:
        return self.prefix + f"checkpoints/{step:09d}.npz"

    def worker_result(self, round_number: int, worker: int) -> str:
        return self.prefix + f"rounds/{round_number:06d}/worker-{worker:03d}.npz"

    def owns(self, key: str) -> bool:
        return key.startswith(self.prefix) and ".." not in key


def shard_to_bytes(shard: Shard, raw_x: npt.NDArray[np.float64] | None = None) -> bytes:
    arrays: dict[str, Any] = {"x": shard.x, "y": shard.y}
    if raw_x is not None:
        arrays["raw_x"] = raw_x
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def shard_from_bytes(data: bytes) -> tuple[Shard, npt.NDArray[np.float64] | None]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            x = np.ascontiguousarray(archive["x"], dtype=np.float64)
            y = np.ascontiguousarray(archive["y"])
            raw_x = archive["raw_x"] if "raw_x" in archive.files else None
    except Exception as err:  # truncated or foreign file
        raise IntegrityError(f"training data file cannot be read: {err}") from None
    return Shard(x, y), raw_x


@dataclass(frozen=True)
class RunRecord:
    """``run.json``: what Prepare decided, so later steps never re-read the dataset."""

    run_id: str
    spec: TrainingSpec  # task resolved
    architecture: Architecture
    feature_names: tuple[str, ...]
    classes: list[int] | list[str] | None
    shard_rows: tuple[int, ...]
    validation_rows: int
    target_scale: TargetScale | None
    dataset: dict[str, Any]  # uri, etag, size
    base_model: dict[str, Any] | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "spec": self.spec.to_dict(),
            "architecture": self.architecture.to_dict(),
            "feature_names": list(self.feature_names),
            "classes": self.classes,
            "shard_rows": list(self.shard_rows),
            "validation_rows": self.validation_rows,
            "target_scale": (
                None
                if self.target_scale is None
                else {"mean": self.target_scale.mean, "scale": self.target_scale.scale}
            ),
            "dataset": self.dataset,
            "base_model": self.base_model,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        scale = data.get("target_scale")
        return cls(
            run_id=data["run_id"],
            spec=parse_spec(data["spec"]),
            architecture=Architecture.from_dict(data["architecture"]),
            feature_names=tuple(data["feature_names"]),
            classes=data.get("classes"),
            shard_rows=tuple(int(r) for r in data["shard_rows"]),
            validation_rows=int(data["validation_rows"]),
            target_scale=None if scale is None else TargetScale(scale["mean"], scale["scale"]),
            dataset=dict(data["dataset"]),
            base_model=data.get("base_model"),
            created_at=data["created_at"],
        )

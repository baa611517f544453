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
from typing import Any, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from maaskit.errors import CorruptObject, IntegrityError, InvalidRequest
from maaskit.registry.store import ObjectStore
from maaskit.training.contract import JsonRecord
from maaskit.training.evaluation import Shard, TargetScale
from maaskit.training.network import Architecture
from maaskit.training.spec import TrainingSpec

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


class DatasetFacts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which bytes a run trained on, for the lineage of what it publishes."""

    uri: str
    etag: str
    size: int


class RunRecord(JsonRecord, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``run.json``: what Prepare decided, so later steps never re-read the dataset nor
    validate the person's spec again: they load this, typed, and trust it."""

    run_id: str
    spec: TrainingSpec  # resolved: task decided, defaults filled in
    architecture: Architecture
    feature_names: tuple[str, ...]
    classes: list[int | str] | None
    shard_rows: tuple[int, ...]
    validation_rows: int
    target_scale: TargetScale | None
    dataset: DatasetFacts
    base_model: dict[str, Any] | None  # the lineage of a numeric base or a text encoder
    created_at: str


class EmbeddingRecord(JsonRecord, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``embedding.json``: a text fine-tune's plan, what Embed follows batch by batch."""

    spec: TrainingSpec  # resolved, as in the run record
    base: dict[str, Any]  # the text encoder's lineage
    dataset: DatasetFacts
    rows: int
    batch_size: int


Record = TypeVar("Record", RunRecord, EmbeddingRecord)


def load_record(store: ObjectStore, key: str, kind: type[Record]) -> Record:
    """A record Prepare wrote, typed; ``CorruptObject`` naming the key if it is not one."""
    data = store.get_json(key)
    try:
        return msgspec.convert(data, kind, strict=True)
    except msgspec.ValidationError as err:
        raise CorruptObject(
            f"{store.uri(key)} is not a {kind.__name__} maaskit wrote ({err}); start the run again"
        ) from None

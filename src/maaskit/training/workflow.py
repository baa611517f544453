"""The training workflow's steps, one function per Step Functions state.

Each takes the store (and registry) plus the state's JSON input, reads it as the typed
model of ``maaskit.training.states`` it expects, and returns the next JSON state: S3 keys
and a few numbers, never arrays (the 256 KB payload limit). The Lambda handlers in
``functions/training`` only parse the event and call these. Prepare validates the person's
spec, once; every later step loads the typed run record Prepare wrote and trusts it.

Every step can be retried: its outputs are a pure function of its inputs and land under
the same keys. The registry is touched only by Register and Promote, the last steps, so a
run that fails earlier leaves published versions and aliases alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from maaskit.errors import CorruptObject, IntegrityError, InvalidRequest, NotFound, PayloadTooLarge
from maaskit.registry.catalog import MODEL_FILE, PRODUCTION, Manifest, Registry
from maaskit.registry.store import ObjectStore
from maaskit.serving.runtime import Runtime
from maaskit.training.checkpoint import TrainingState, state_from_bytes, state_to_bytes
from maaskit.training.datasets import TEXT_COLUMN, Table, read_table, read_texts
from maaskit.training.embedding import Embed, EmbeddingPlan, assemble, embed_batches
from maaskit.training.embedding import from_bytes as embedding_from_bytes
from maaskit.training.embedding import to_bytes as embedding_to_bytes
from maaskit.training.export import ParityReport
from maaskit.training.finetune import fresh_params, from_base
from maaskit.training.preparation import architecture_for, prepare
from maaskit.training.runs import (
    DatasetFacts,
    EmbeddingRecord,
    RunPaths,
    RunRecord,
    load_record,
    shard_from_bytes,
    shard_to_bytes,
)
from maaskit.training.spec import TrainingSpec, parse_spec
from maaskit.training.split import shard_indices
from maaskit.training.states import (
    Embedding,
    EmbeddingProgress,
    Evaluated,
    Exported,
    Failure,
    FailureInput,
    PrepareInput,
    Progress,
    Promoted,
    Registered,
    Round,
    WorkerInput,
    WorkerResult,
    grow,
    read_state,
)
from maaskit.training.textbase import TextBase
from maaskit.training.trainer import Shard, Trainer
from maaskit.training.weights import ModelWeights

DATASET_PREFIX = "datasets/"
MIN_BUDGET_SECONDS = 1.0
PARITY_TEXTS = 256  # held-out texts Export runs through the composed model (bounds its time)
# Step Functions keeps at most 25,000 events per execution; a data-parallel round costs
# about 6 events plus 5 per worker. Refuse runs that would not fit, with room to spare.
MAX_HISTORY_EVENTS = 20_000
# How Promote compares a candidate with production, per task.
PROMOTION_METRIC = {
    "classification": ("val_accuracy", "higher"),
    "regression": ("val_rmse", "lower"),
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def time_budget(remaining_ms: int, margin_ms: int) -> float:
    """Seconds of training an invocation may spend, keeping ``margin_ms`` for its writes."""
    return max((remaining_ms - margin_ms) / 1000.0, MIN_BUDGET_SECONDS)


def _owned(paths: RunPaths, key: str, name: str) -> str:
    if not paths.owns(key):
        raise InvalidRequest(f"{name} {key!r} is not a file of training run {paths.run_id}")
    return key


def _write_status(store: ObjectStore, paths: RunPaths, status: str, **details: Any) -> None:
    store.put_json(
        paths.status, {"run_id": paths.run_id, "status": status, "updated_at": _now(), **details}
    )


# loading a run -----------------------------------------------------------------


class _Run:
    """What a step needs to know about its run, read from S3 once per invocation."""

    def __init__(self, store: ObjectStore, paths: RunPaths) -> None:
        self.store = store
        self.paths = paths
        try:
            self.record = load_record(store, paths.record, RunRecord)
        except NotFound:
            raise NotFound(f"training run {paths.run_id} does not exist (no run.json)") from None
        self._validation: tuple[Shard, np.ndarray | None] | None = None

    @property
    def spec(self) -> TrainingSpec:
        return self.record.spec

    def validation(self) -> Shard:
        return self._load_validation()[0]

    def validation_raw_x(self) -> np.ndarray:
        raw = self._load_validation()[1]
        if raw is None:
            raise NotFound(f"{self.paths.validation} has no raw features")
        return raw

    def _load_validation(self) -> tuple[Shard, np.ndarray | None]:
        if self._validation is None:
            self._validation = shard_from_bytes(self.store.get_bytes(self.paths.validation))
        return self._validation

    def shard(self, worker: int) -> Shard:
        return shard_from_bytes(self.store.get_bytes(self.paths.shard(worker)))[0]

    def trainer(self) -> Trainer:
        return Trainer(
            self.record.architecture,
            self.spec,
            self.validation(),
            self.record.shard_rows,
            target_scale=self.record.target_scale,
        )

    def load_state(self, key: str) -> TrainingState:
        try:
            return state_from_bytes(self.store.get_bytes(key))
        except CorruptObject as err:
            raise CorruptObject(
                f"{self.store.uri(key)}: {err.message}; the run cannot resume from it (start "
                "it again, or delete that checkpoint to resume from the one before)"
            ) from None

    def save_state(self, state: TrainingState, *, epochs_before: int = -1) -> str:
        """Write the metrics (when an epoch ended since ``epochs_before``), then the
        checkpoint. In that order, every checkpoint's history is already in
        ``metrics.jsonl``; a retried invocation rewrites the same bytes under both keys."""
        if len(state.history) != epochs_before:
            lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in state.history)
            self.store.put(self.paths.metrics, lines.encode(), content_type="application/x-ndjson")
        key = self.paths.checkpoint(state.step)
        self.store.put(key, state_to_bytes(state))
        return key


def _progress(given: Progress, state: TrainingState, checkpoint: str) -> Progress:
    if state.rows_seen:
        loss: float | None = state.loss_sum / state.rows_seen
    else:
        loss = state.history[-1]["train_loss"] if state.history else None
    return grow(
        given,
        Progress,
        checkpoint=checkpoint,
        epoch=state.epoch,
        step=state.step,
        loss=loss,
        done=state.done,
    )


# Prepare -------------------------------------------------------------------------


def _dataset_key(store: ObjectStore, spec: TrainingSpec) -> str:
    dataset = spec.dataset
    if dataset.bucket not in (None, store.bucket):
        raise InvalidRequest(
            f"dataset bucket {dataset.bucket!r} is not this deployment's bucket "
            f"{store.bucket!r}: upload the file to s3://{store.bucket}/{DATASET_PREFIX}"
        )
    if not dataset.key.startswith(DATASET_PREFIX) or ".." in dataset.key:
        raise InvalidRequest(
            f"dataset {dataset.key!r} must be under {DATASET_PREFIX} in the bucket "
            f"(training may read only that prefix)"
        )
    return dataset.key


def _check_history_fits(spec: TrainingSpec, shard_rows: Sequence[int]) -> None:
    if spec.workers == 1:
        return
    steps_per_epoch = max(math.ceil(rows / spec.batch_size) for rows in shard_rows)
    rounds = spec.epochs * math.ceil(steps_per_epoch / spec.local_steps)
    events = rounds * (6 + 5 * spec.workers)
    if events > MAX_HISTORY_EVENTS:
        raise InvalidRequest(
            f"{rounds} rounds of {spec.workers} workers would take about {events} Step "
            f"Functions events (limit 25,000 per execution): raise local_steps or batch_size, "
            "or use fewer epochs or workers"
        )


def _numeric_base(store: ObjectStore, manifest: Manifest) -> tuple[Manifest, ModelWeights]:
    weights_key = manifest.metadata.get("weights")
    if not isinstance(weights_key, str):
        raise InvalidRequest(
            f"base model {manifest.name!r} version {manifest.version} is neither a text "
            "package (a tokenizer and an embedding output) nor a model trained by maaskit "
            "(training weights): only those can be fine-tuned"
        )
    return manifest, ModelWeights.from_bytes(store.get_bytes(weights_key))


def prepare_run(
    store: ObjectStore,
    registry: Registry,
    event: Mapping[str, Any],
    *,
    max_dataset_bytes: int,
) -> dict[str, Any]:
    """Validate the request, then either split and shard the data and write checkpoint 0,
    or (a text encoder as the base) plan the embedding of the texts that comes first."""
    given = read_state(event, PrepareInput)
    paths = given.paths
    _write_status(store, paths, "running", step="Prepare")
    spec = parse_spec(given.request)
    key = _dataset_key(store, spec)
    info = store.head(key)
    if info is None:
        raise NotFound(f"dataset {store.uri(key)} does not exist")
    if info.size > max_dataset_bytes:
        raise PayloadTooLarge(
            f"dataset {store.uri(key)} is {info.size} bytes; the limit is {max_dataset_bytes} "
            "(MAASKIT_TRAINING_MAX_DATASET_MB)"
        )
    base_manifest = None
    if spec.base_model is not None:
        base = spec.base_model
        base_manifest = registry.resolve(base.name, version=base.version, alias=base.alias)
    stored = store.get(key)
    dataset = DatasetFacts(uri=store.uri(key), etag=stored.etag, size=len(stored.body))
    if base_manifest is not None and TextBase.describes(base_manifest):
        return _plan_embedding(
            store, paths, spec, base=TextBase.of(base_manifest), body=stored.body, dataset=dataset
        ).to_dict()
    numeric_base = None if base_manifest is None else _numeric_base(store, base_manifest)
    table = read_table(stored.body, spec.dataset.format, target=spec.target, features=spec.features)
    return _start_training(
        store, paths, spec, table, dataset=dataset, numeric_base=numeric_base
    ).to_dict()


def _start_training(
    store: ObjectStore,
    paths: RunPaths,
    spec: TrainingSpec,
    table: Table,
    *,
    dataset: DatasetFacts,
    numeric_base: tuple[Manifest, ModelWeights] | None = None,
    text_base: TextBase | None = None,
    texts: Sequence[str] | None = None,
) -> Progress:
    """Split and shard ``table``, write the run record and checkpoint 0."""
    data = prepare(table, spec)
    spec = data.spec
    architecture = architecture_for(spec, len(data.feature_names), data.n_outputs)
    parts = shard_indices(data.train.rows, spec.workers, spec.seed)
    shard_rows = [len(part) for part in parts]
    _check_history_fits(spec, shard_rows)

    base_lineage: dict[str, Any] | None = None
    if numeric_base is not None:
        manifest, base = numeric_base
        freeze = spec.base_model.freeze if spec.base_model is not None else ()
        initial = from_base(
            architecture,
            base,
            base_label=f"{manifest.name!r} version {manifest.version}",
            feature_names=data.feature_names,
            classes=data.classes,
            freeze=freeze,
            seed=spec.seed,
        )
        params = initial.params
        base_lineage = {
            "name": manifest.name,
            "version": manifest.version,
            "weights": manifest.metadata["weights"],
            "new_output_layer": initial.new_output_layer,
            "frozen_layers": list(freeze),
        }
    else:
        params = fresh_params(architecture, spec.seed)
        if text_base is not None:
            base_lineage = text_base.lineage()
    if texts is not None:
        held_out = [texts[int(row)] for row in data.validation_index]
        store.put_json(paths.validation_texts, {"texts": held_out})

    for worker, part in enumerate(parts):
        shard = Shard(data.train.x[part], data.train.y[part])
        store.put(paths.shard(worker), shard_to_bytes(shard))
    store.put(paths.validation, shard_to_bytes(data.validation, data.validation_raw_x))
    template = ModelWeights(
        architecture=architecture,
        params=params,
        x_scaler=data.x_scaler,
        feature_names=data.feature_names,
        classes=data.classes,
        target_scale=data.target_scale,
    )
    store.put(paths.initial_weights, template.to_bytes())
    classes = template.class_list()
    record = RunRecord(
        run_id=paths.run_id,
        spec=spec,
        architecture=architecture,
        feature_names=data.feature_names,
        classes=None if classes is None else list(classes),
        shard_rows=tuple(shard_rows),
        validation_rows=data.validation.rows,
        target_scale=data.target_scale,
        dataset=dataset,
        base_model=base_lineage,
        created_at=_now(),
    )
    store.put_json(paths.record, record.to_dict())
    run = _Run(store, paths)
    state = run.trainer().start(params)
    checkpoint = run.save_state(state)
    if spec.task is None:
        raise IntegrityError(f"run {paths.run_id}: preparing the data decided no task")
    started = Progress(
        run_id=paths.run_id,
        model=spec.model,
        task=spec.task,
        workers=spec.workers,
        worker_ids=list(range(spec.workers)),
        checkpoint=checkpoint,
        epoch=0,
        step=0,
        loss=None,
        done=False,
    )
    return _progress(started, state, checkpoint)


# Embed (fine-tuning a text encoder) ------------------------------------------------


def _plan_embedding(
    store: ObjectStore,
    paths: RunPaths,
    spec: TrainingSpec,
    *,
    base: TextBase,
    body: bytes,
    dataset: DatasetFacts,
) -> Embedding:
    """Check the texts and the spec against what a text fine-tune can train, before any
    embedding is paid for, and write the plan Embed follows."""
    if spec.features is not None:
        raise InvalidRequest(
            f'base model {base.label} is a text encoder: the model reads the "text" column, '
            '"features" does not apply'
        )
    if spec.base_model is not None and spec.base_model.freeze:
        raise InvalidRequest(
            f"base model {base.label} is a text encoder, frozen as a whole: "
            '"base_model.freeze" applies to numeric fine-tuning only'
        )
    if spec.task == "regression":
        raise InvalidRequest(
            f"fine-tuning text encoder {base.label} trains a classifier: "
            "use a softmax or mlp architecture and labels"
        )
    texts = read_texts(body, spec.dataset.format, target=spec.target or "")
    # The split, batch and class checks of the real run, on the labels alone (no embeddings).
    prepare(
        Table(np.zeros((texts.rows, 1)), texts.target, ("text",)), spec.with_task("classification")
    )
    plan = EmbeddingPlan(rows=texts.rows)
    store.put_json(paths.texts, {"texts": list(texts.texts), "target": texts.target.tolist()})
    record = EmbeddingRecord(
        spec=spec.with_task("classification"),
        base=base.lineage(),
        dataset=dataset,
        rows=plan.rows,
        batch_size=plan.batch_size,
    )
    store.put_json(paths.embedding_plan, record.to_dict())
    return Embedding(
        run_id=paths.run_id,
        model=spec.model,
        workers=spec.workers,
        embedding=EmbeddingProgress(next_batch=0, batches=plan.batches, done=False),
    )


def embed_texts(
    store: ObjectStore,
    runtime: Runtime,
    event: Mapping[str, Any],
    *,
    time_budget: float,
    max_batches: int | None = None,
    encoder: Embed | None = None,
) -> dict[str, Any]:
    """Embed batches of the texts with the frozen encoder until the time budget; when all
    are done, split and shard the embeddings and write checkpoint 0, as Prepare does for
    numeric data. A retried invocation skips the batches already saved."""
    given = read_state(event, Embedding)
    paths = given.paths
    progress = given.embedding
    start = progress.next_batch
    planned = load_record(store, paths.embedding_plan, EmbeddingRecord)
    plan = EmbeddingPlan(rows=planned.rows, batch_size=planned.batch_size)
    base = TextBase.from_lineage(planned.base)
    if base is None:
        raise IntegrityError(f"{paths.embedding_plan} names no text encoder")
    texts_data = store.get_json(paths.texts)
    texts = texts_data["texts"]
    embed = encoder if encoder is not None else base.embedder(runtime)

    def save(batch: int, values: np.ndarray) -> None:
        store.put(paths.embedding_batch(batch), embedding_to_bytes(values))

    done = embed_batches(
        texts,
        plan,
        start,
        embed,
        saved=lambda batch: store.head(paths.embedding_batch(batch)) is not None,
        save=save,
        time_budget=time_budget,
        max_batches=max_batches,
    )
    if done.next_batch < plan.batches:
        moved = msgspec.structs.replace(progress, next_batch=done.next_batch)
        return grow(given, Embedding, embedding=moved).to_dict()
    matrix = assemble(
        plan, lambda batch: embedding_from_bytes(store.get_bytes(paths.embedding_batch(batch)))
    )
    table = Table(
        features=matrix.astype(np.float64),
        target=np.asarray(texts_data["target"]),
        feature_names=tuple(f"embedding{i}" for i in range(matrix.shape[1])),
    )
    reply = _start_training(
        store, paths, planned.spec, table, dataset=planned.dataset, text_base=base, texts=texts
    )
    finished = msgspec.structs.replace(progress, next_batch=plan.batches, done=True)
    return msgspec.structs.replace(reply, embedding=finished).to_dict()


# TrainSteps, workers and the reducer ---------------------------------------------


def train_steps(
    store: ObjectStore,
    event: Mapping[str, Any],
    *,
    time_budget: float,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """As many mini-batches as fit ``time_budget`` seconds (at most ``max_steps``), then
    the next checkpoint."""
    given = read_state(event, Progress)
    paths = given.paths
    run = _Run(store, paths)
    if run.spec.workers != 1:
        raise InvalidRequest(f"run {paths.run_id} trains on {run.spec.workers} workers, in rounds")
    key = _owned(paths, given.checkpoint, "checkpoint")
    state = run.load_state(key)
    if state.done:
        return _progress(given, state, key).to_dict()
    epochs_before = len(state.history)
    run.trainer().run(state, run.shard(0), time_budget=time_budget, max_steps=max_steps or None)
    return _progress(given, state, run.save_state(state, epochs_before=epochs_before)).to_dict()


def train_worker(store: ObjectStore, event: Mapping[str, Any]) -> dict[str, Any]:
    """One worker's ``local_steps`` updates on its shard, from the round's checkpoint."""
    given = read_state(event, WorkerInput)
    paths = given.paths
    run = _Run(store, paths)
    worker = given.worker
    if worker >= run.spec.workers:
        raise InvalidRequest(f"worker {worker!r} is not one of run {paths.run_id}'s workers")
    state = run.load_state(_owned(paths, given.checkpoint, "checkpoint"))
    local = run.trainer().local_round(state, run.shard(worker), worker)
    key = paths.worker_result(state.rounds, worker)
    store.put(key, state_to_bytes(local))
    return WorkerResult(worker=worker, result=key, steps=local.step - state.step).to_dict()


def reduce_round(store: ObjectStore, event: Mapping[str, Any]) -> dict[str, Any]:
    """Average the workers' models of one round and write the next checkpoint."""
    given = read_state(event, Round)
    paths = given.paths
    run = _Run(store, paths)
    results = given.round
    if len(results) != run.spec.workers:
        raise InvalidRequest(f"the round must hold one result per worker ({run.spec.workers})")
    by_worker = {item.worker: item for item in results}
    if sorted(by_worker) != list(range(run.spec.workers)):
        raise InvalidRequest(f"the round's results are not workers 0..{run.spec.workers - 1}")
    state = run.load_state(_owned(paths, given.checkpoint, "checkpoint"))
    locals_ = [
        run.load_state(_owned(paths, by_worker[worker].result, "result"))
        for worker in range(run.spec.workers)
    ]
    epochs_before = len(state.history)
    run.trainer().reduce(state, locals_)
    return _progress(given, state, run.save_state(state, epochs_before=epochs_before)).to_dict()


# Evaluate, Export ----------------------------------------------------------------


def evaluate(store: ObjectStore, event: Mapping[str, Any]) -> dict[str, Any]:
    """Validation metrics of the final weights, kept in ``evaluation.json``."""
    given = read_state(event, Progress)
    paths = given.paths
    run = _Run(store, paths)
    state = run.load_state(_owned(paths, given.checkpoint, "checkpoint"))
    if not state.done:
        raise InvalidRequest(f"run {paths.run_id} has not finished training")
    metrics = {f"val_{name}": value for name, value in run.trainer().evaluate(state.params).items()}
    summary = {
        "metrics": metrics,
        "epochs": state.epoch,
        "steps": state.step,
        "best_epoch": state.best_epoch,
        "stop_reason": state.stop_reason,
        "validation_rows": run.record.validation_rows,
    }
    store.put_json(paths.evaluation, summary)
    return grow(given, Evaluated, metrics=metrics, stop_reason=state.stop_reason).to_dict()


def export(store: ObjectStore, registry: Registry, event: Mapping[str, Any]) -> dict[str, Any]:
    """The ONNX file and final weights, refused unless onnxruntime agrees with numpy.

    A text fine-tune's file is one graph, the base encoder + pooling + the trained head,
    checked on the held-out texts against their embeddings through the numpy head."""
    from maaskit.training.export import check_parity, export_onnx

    given = read_state(event, Evaluated)
    paths = given.paths
    run = _Run(store, paths)
    state = run.load_state(_owned(paths, given.checkpoint, "checkpoint"))
    template = ModelWeights.from_bytes(store.get_bytes(paths.initial_weights))
    weights = template.with_params(state.params)
    model_bytes = export_onnx(weights, model_name=run.spec.model)
    text_base = TextBase.from_lineage(run.record.base_model)
    if text_base is None:
        parity = check_parity(model_bytes, weights, run.validation_raw_x())
    else:
        model_bytes, parity = _compose_text_classifier(
            registry, run, text_base, weights, model_bytes
        )
    store.put(paths.weights, weights.to_bytes())
    store.put(paths.model, model_bytes)
    return grow(
        given, Exported, artifact=paths.model, weights=paths.weights, parity=parity.to_dict()
    ).to_dict()


def _compose_text_classifier(
    registry: Registry,
    run: _Run,
    base: TextBase,
    weights: ModelWeights,
    head_bytes: bytes,
) -> tuple[bytes, ParityReport]:
    from maaskit.onnxmodel.text import TextEncoder, TextProcessing
    from maaskit.training.compose import check_composed_parity, compose_classifier

    manifest = base.manifest(registry)
    encoder_bytes = base.file(registry, manifest, MODEL_FILE)
    model_bytes = compose_classifier(encoder_bytes, base.pooling(manifest), head_bytes)
    text_input, output = base.processing(manifest)
    tokenizer = base.file(registry, manifest, text_input.tokenizer)
    encoder = TextEncoder(tokenizer.decode("utf-8"), TextProcessing(output, text_input))
    texts = run.store.get_json(run.paths.validation_texts)["texts"][:PARITY_TEXTS]
    encoded = encoder.encode(texts)
    expected = weights.predict(run.validation_raw_x()[: len(texts)])
    if weights.classes is None:
        raise IntegrityError(f"run {run.paths.run_id}'s weights carry no classes")
    parity = check_composed_parity(model_bytes, encoded.feeds, expected, weights.classes)
    return model_bytes, parity


# Register, Promote ----------------------------------------------------------------


def _published_by(registry: Registry, name: str, run_id: str) -> Manifest | None:
    """A version this run already published (a retried Register must not publish twice)."""
    try:
        versions = registry.list_versions(name)
    except NotFound:
        return None
    for version in reversed(versions[-20:]):
        manifest = registry.get_manifest(name, version)
        if manifest.lineage.get("run_id") == run_id:
            return manifest
    return None


def register(store: ObjectStore, registry: Registry, event: Mapping[str, Any]) -> dict[str, Any]:
    """Publish the exported model with its metrics, hyper-parameters and lineage."""
    given = read_state(event, Exported)
    paths = given.paths
    run = _Run(store, paths)
    record = run.record
    spec = run.spec
    manifest = _published_by(registry, spec.model, paths.run_id)
    if manifest is None:
        summary = store.get_json(paths.evaluation)
        lineage: dict[str, Any] = {
            "run_id": paths.run_id,
            "dataset": record.dataset.uri,
            "dataset_etag": record.dataset.etag,
        }
        if record.base_model is not None:
            lineage["base_model"] = record.base_model
        package: dict[str, Any] = {}
        feature_names = list(record.feature_names)
        text_base = TextBase.from_lineage(record.base_model)
        if text_base is not None:
            package = _text_package(registry, text_base, record.classes or [])
            feature_names = [TEXT_COLUMN]
        manifest = registry.publish(
            spec.model,
            store.get_bytes(_owned(paths, given.artifact, "artifact")),
            **package,
            metrics={**summary["metrics"], "epochs": summary["epochs"]},
            metadata={
                "task": spec.task,
                "classes": record.classes,
                "feature_names": feature_names,
                "architecture": record.architecture.to_dict(),
                "hyperparameters": spec.hyperparameters(),
                "weights": _owned(paths, given.weights, "weights"),
                "training": {
                    "run_id": paths.run_id,
                    "steps": summary["steps"],
                    "best_epoch": summary["best_epoch"],
                    "stop_reason": summary["stop_reason"],
                    "validation_rows": summary["validation_rows"],
                    "parity": given.parity,
                },
            },
            lineage=lineage,
            move_latest=False,  # Promote moves it: a run that fails now moves no alias
        )
    return grow(given, Registered, version=manifest.version).to_dict()


def _text_package(
    registry: Registry, base: TextBase, classes: Sequence[int | str]
) -> dict[str, Any]:
    """The base's tokenizer and input block, and a classification output with the labels."""
    manifest = base.manifest(registry)
    processing = base.classifier_processing(manifest, [str(label) for label in classes])
    tokenizer = processing["input"]["tokenizer"]
    return {
        "files": {tokenizer: base.file(registry, manifest, tokenizer)},
        "processing": processing,
    }


def _promotion(
    registry: Registry, name: str, candidate: Manifest, task: str
) -> tuple[bool, dict[str, Any]]:
    metric, better = PROMOTION_METRIC[task]
    ours = candidate.metrics.get(metric)
    detail: dict[str, Any] = {"metric": metric, "better": better, "candidate": ours}
    if not isinstance(ours, int | float):
        return False, {**detail, "reason": f"version {candidate.version} has no {metric}"}
    try:
        current = registry.get_alias(name, PRODUCTION)
    except NotFound:
        return True, {**detail, "reason": f"no production version yet: version {candidate.version}"}
    detail["production_version"] = current
    if current == candidate.version:
        return True, {**detail, "reason": f"version {current} is already production"}
    theirs = registry.get_manifest(name, current).metrics.get(metric)
    detail["production"] = theirs
    if not isinstance(theirs, int | float):
        return False, {
            **detail,
            "reason": f"production version {current} has no {metric} to compare with; "
            f"move the alias by hand if version {candidate.version} should serve",
        }
    wins = ours > theirs if better == "higher" else ours < theirs
    verdict = "beats" if wins else "does not beat"
    return wins, {
        **detail,
        "reason": f"version {candidate.version} {metric} {ours:.6g} {verdict} "
        f"production version {current}'s {theirs:.6g} ({better} is better)",
    }


def promote(store: ObjectStore, registry: Registry, event: Mapping[str, Any]) -> dict[str, Any]:
    """Move ``latest`` to the new version, and ``production`` only if it beats the current one."""
    given = read_state(event, Registered)
    paths = given.paths
    name = given.model
    version = given.version
    candidate = registry.get_manifest(name, version)
    task = candidate.metadata.get("task", "classification")
    promoted, detail = _promotion(registry, name, candidate, task)
    if promoted:
        registry.set_alias(name, PRODUCTION, version)
    registry.advance_latest(name, version)
    _write_status(
        store, paths, "succeeded", model=name, version=version, promoted=promoted, promotion=detail
    )
    return grow(given, Promoted, promoted=promoted, promotion=detail).to_dict()


# failures -------------------------------------------------------------------------


def _failure_message(error: Mapping[str, Any]) -> tuple[str, str]:
    name = str(error.get("Error") or "Unknown")
    cause = str(error.get("Cause") or "")
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return name, cause
    if isinstance(document, dict) and "errorMessage" in document:
        return str(document.get("errorType") or name), str(document["errorMessage"])
    return name, cause


def record_failure(store: ObjectStore, event: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``status.json`` for a failed run; return the error for the Fail state."""
    given = read_state(event, FailureInput)
    paths = given.paths
    error = given.error if isinstance(given.error, Mapping) else {}
    name, message = _failure_message(error)
    _write_status(
        store,
        paths,
        "failed",
        error=name,
        message=message,
        last_checkpoint=given.checkpoint,
    )
    return Failure(run_id=paths.run_id, status="failed", error=name, message=message).to_dict()

"""The training spec: the JSON a person writes, as typed models.

``SpecDocument`` is the contract a person writes to (its JSON Schema is what ``maaskit
train schema`` prints): msgspec checks every type, range, required and unknown field, and
``maaskit.training.contract`` words its errors with the field's path and what is accepted.
``parse_spec`` then applies the rules that span fields (an mlp needs hidden layers, a
linear model is a regression, ...) and resolves the document into ``TrainingSpec``: the
typed value the workflow runs on, and what the run record keeps, so later steps load it
without validating the person's JSON again. Unknown keys are errors: a misspelt
``"paitence"`` silently ignored would cost a whole training run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from maaskit.errors import InvalidRequest
from maaskit.registry.catalog import parse_version, validate_alias, validate_name
from maaskit.training.contract import Subject, decode, plain

Task = Literal["classification", "regression"]
ArchitectureType = Literal["linear", "logistic", "softmax", "mlp"]
Activation = Literal["relu", "tanh"]
OptimizerType = Literal["sgd", "momentum", "adam"]
ScheduleType = Literal["constant", "step", "cosine"]
DatasetFormat = Literal["csv", "npz", "jsonl"]

FORMATS: dict[str, DatasetFormat] = {
    ".csv": "csv",
    ".npz": "npz",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
MAX_WORKERS = 64
MAX_EPOCHS = 100_000
MAX_SEED = 2**63 - 1
_OPTIMIZER_FIELDS = {
    "sgd": {"type", "learning_rate"},
    "momentum": {"type", "learning_rate", "momentum"},
    "adam": {"type", "learning_rate", "beta1", "beta2", "epsilon"},
}
_SCHEDULE_FIELDS = {
    "constant": {"type"},
    "step": {"type", "step_size", "gamma"},
    "cosine": {"type", "min_learning_rate"},
}
SPEC = Subject(
    "training spec",
    nouns={
        "architecture.type": "architecture",
        "optimizer": "optimizer",
        "optimizer.type": "optimizer",
        "lr_schedule": "schedule",
        "lr_schedule.type": "learning-rate schedule",
    },
)

# the document a person writes ------------------------------------------------------

Name = Annotated[str, Meta(min_length=1)]
PositiveInt = Annotated[int, Meta(ge=1)]
Fraction = Annotated[float, Meta(ge=0.0, lt=1.0)]  # a decay or momentum: [0, 1)
LearningRate = Annotated[
    float, Meta(gt=0.0, description="the step size", extra_json_schema={"examples": [0.001]})
]


class _Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A JSON object with exactly these fields; unknown ones are refused."""


class ArchitectureDocument(_Document, frozen=True):
    type: Annotated[ArchitectureType, Meta(description="mlp needs hidden; the others have none")]
    hidden: (
        Annotated[list[PositiveInt], Meta(description="hidden layer sizes, e.g. [64] (mlp only)")]
        | None
    ) = None
    activation: Activation | None = None


class SgdDocument(_Document, frozen=True, tag_field="type", tag="sgd"):
    learning_rate: LearningRate


class MomentumDocument(_Document, frozen=True, tag_field="type", tag="momentum"):
    learning_rate: LearningRate
    momentum: Fraction = 0.9


class AdamDocument(_Document, frozen=True, tag_field="type", tag="adam"):
    learning_rate: LearningRate
    beta1: Fraction = 0.9
    beta2: Fraction = 0.999
    epsilon: Annotated[float, Meta(gt=0.0)] = 1e-8


class ConstantScheduleDocument(_Document, frozen=True, tag_field="type", tag="constant"):
    pass


class StepScheduleDocument(_Document, frozen=True, tag_field="type", tag="step"):
    step_size: Annotated[PositiveInt, Meta(description="epochs between decays")] = 10
    gamma: Annotated[float, Meta(gt=0.0, le=1.0, description="the decay factor")] = 0.1


class CosineScheduleDocument(_Document, frozen=True, tag_field="type", tag="cosine"):
    min_learning_rate: Annotated[float, Meta(ge=0.0, description="the floor")] = 0.0


OptimizerDocument = SgdDocument | MomentumDocument | AdamDocument
ScheduleDocument = ConstantScheduleDocument | StepScheduleDocument | CosineScheduleDocument


class BaseModelDocument(_Document, frozen=True):
    name: Name
    alias: Annotated[str | None, Meta(description="default: production")] = None
    version: Annotated[int, Meta(ge=1)] | Annotated[str, Meta(pattern="^[0-9]+$")] | None = None
    freeze: Annotated[
        list[Annotated[int, Meta(ge=0)]],
        Meta(description="layers kept as the base has them (0 is the first)"),
    ] = []


class SpecDocument(_Document, frozen=True):
    """A training run: the data, the model, and how to fit it."""

    model: Annotated[Name, Meta(description="the registry name the trained model gets")]
    dataset: Annotated[
        Name,
        Meta(description="s3://BUCKET/datasets/KEY or a key under datasets/ in the bucket"),
    ]
    architecture: ArchitectureDocument
    optimizer: OptimizerDocument
    epochs: Annotated[int, Meta(ge=1, le=MAX_EPOCHS)]
    batch_size: PositiveInt
    format: Annotated[
        DatasetFormat | None, Meta(description="default: from the dataset's suffix")
    ] = None
    target: Annotated[Name | None, Meta(description="the label column (required unless npz)")] = (
        None
    )
    features: Annotated[
        Annotated[list[Name], Meta(min_length=1)] | None,
        Meta(description="the feature columns (default: every column but the target)"),
    ] = None
    activation: Annotated[
        Activation | None, Meta(description="default: relu (or give it in architecture)")
    ] = None
    task: Annotated[Task | None, Meta(description="default: decided from the target")] = None
    weight_decay: Annotated[float, Meta(ge=0.0, description="L2 on the weights")] = 0.0
    lr_schedule: ScheduleDocument | None = None
    validation_split: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.2
    seed: Annotated[int, Meta(ge=0, le=MAX_SEED)] = 0
    patience: Annotated[
        PositiveInt | None, Meta(description="stop after this many epochs without improvement")
    ] = None
    base_model: BaseModelDocument | None = None
    workers: Annotated[
        int, Meta(ge=1, le=MAX_WORKERS, description="data-parallel workers, one shard each")
    ] = 1
    local_steps: Annotated[PositiveInt, Meta(description="steps between averaging")] = 1


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of the training spec (what ``maaskit train schema`` prints)."""
    schema: dict[str, Any] = msgspec.json.schema(SpecDocument)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "maaskit training spec",
        **schema,
    }


# the resolved spec the workflow runs on -----------------------------------------------


class _Resolved(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A value ``parse_spec`` produced; the run record stores it as it is."""


class ArchitectureSpec(_Resolved, frozen=True):
    type: ArchitectureType
    hidden: tuple[int, ...] = ()
    activation: Activation = "relu"


class OptimizerSpec(_Resolved, frozen=True):
    type: OptimizerType
    learning_rate: float
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


class ScheduleSpec(_Resolved, frozen=True):
    type: ScheduleType = "constant"
    step_size: int = 10  # epochs between decays ("step")
    gamma: float = 0.1  # decay factor ("step")
    min_learning_rate: float = 0.0  # floor ("cosine")


class BaseModelSpec(_Resolved, frozen=True):
    name: str
    alias: str | None = None
    version: int | None = None
    freeze: tuple[int, ...] = ()


class DatasetRef(_Resolved, frozen=True):
    bucket: str | None  # None: the deployment's own bucket
    key: str
    format: DatasetFormat


class TrainingSpec(_Resolved, frozen=True):
    model: str
    dataset: DatasetRef
    target: str | None
    architecture: ArchitectureSpec
    optimizer: OptimizerSpec
    epochs: int
    batch_size: int
    features: tuple[str, ...] | None = None
    task: Task | None = None  # None: decided from the target once the data is read
    weight_decay: float = 0.0
    lr_schedule: ScheduleSpec = ScheduleSpec()
    validation_split: float = 0.2
    seed: int = 0
    patience: int | None = None
    base_model: BaseModelSpec | None = None
    workers: int = 1
    local_steps: int = 1

    def with_task(self, task: Task) -> TrainingSpec:
        return msgspec.structs.replace(self, task=task)

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec document, JSON-ready, and accepted again by ``parse_spec``."""
        data: dict[str, Any] = plain(self)
        dataset = self.dataset
        data["dataset"] = f"s3://{dataset.bucket}/{dataset.key}" if dataset.bucket else dataset.key
        data["format"] = dataset.format
        data["optimizer"] = {
            key: value
            for key, value in data["optimizer"].items()
            if key in _OPTIMIZER_FIELDS[self.optimizer.type]
        }
        data["lr_schedule"] = {
            key: value
            for key, value in data["lr_schedule"].items()
            if key in _SCHEDULE_FIELDS[self.lr_schedule.type]
        }
        if self.base_model is not None:
            data["base_model"] = {k: v for k, v in data["base_model"].items() if v is not None}
        for optional in ("features", "base_model", "task", "patience", "target"):
            if data.get(optional) is None:
                data.pop(optional, None)
        return data

    def hyperparameters(self) -> dict[str, Any]:
        """What a manifest records about how the model was trained."""
        data = self.to_dict()
        for key in ("model", "dataset", "format", "features", "target", "base_model"):
            data.pop(key, None)
        return data


# from the document to the resolved spec: the rules that span fields ---------------------


def _fail(path: str, message: str) -> InvalidRequest:
    return SPEC.fail(path, message)


def _text(value: str, path: str) -> str:
    if not value.strip():
        raise _fail(path, "must be a non-empty string")
    return value.strip()


def _dataset(uri: str, format_override: DatasetFormat | None) -> DatasetRef:
    """``s3://bucket/key`` or a key in the deployment's bucket; the format from the suffix."""
    uri = _text(uri, "dataset")
    bucket: str | None = None
    key = uri
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise _fail("dataset", f"{uri!r} is not an S3 URI of an object (s3://BUCKET/KEY)")
    elif "://" in uri:
        raise _fail("dataset", f"{uri!r}: only s3:// URIs (or keys in the bucket) are supported")
    key = key.lstrip("/")
    if key.endswith("/"):
        raise _fail("dataset", f"{uri!r} names a folder; name one file")
    if format_override is not None:
        return DatasetRef(bucket=bucket, key=key, format=format_override)
    for suffix, fmt in FORMATS.items():
        if key.lower().endswith(suffix):
            return DatasetRef(bucket=bucket, key=key, format=fmt)
    raise _fail(
        "dataset",
        f"cannot tell the format of {uri!r} from its name; use a {', '.join(FORMATS)} file "
        'or set "format" to csv, npz or jsonl',
    )


def _architecture(doc: ArchitectureDocument, activation: Activation | None) -> ArchitectureSpec:
    hidden: tuple[int, ...] = ()
    if doc.type == "mlp":
        if doc.hidden is None:
            raise _fail("architecture.hidden", "an mlp needs hidden layer sizes, e.g. [64]")
        hidden = tuple(doc.hidden)
        if not hidden:
            raise _fail(
                "architecture.hidden",
                "an mlp needs at least one hidden layer; use softmax or linear for none",
            )
    elif doc.hidden:
        raise _fail("architecture.hidden", f"a {doc.type} model has no hidden layers; use mlp")
    if doc.activation is not None and activation is not None and doc.activation != activation:
        raise _fail(
            "activation",
            f"{activation!r} conflicts with architecture.activation {doc.activation!r}; give one",
        )
    chosen = doc.activation or activation or "relu"
    return ArchitectureSpec(type=doc.type, hidden=hidden, activation=chosen)


def _optimizer(doc: OptimizerDocument) -> OptimizerSpec:
    if isinstance(doc, MomentumDocument):
        return OptimizerSpec("momentum", doc.learning_rate, momentum=doc.momentum)
    if isinstance(doc, AdamDocument):
        return OptimizerSpec(
            "adam", doc.learning_rate, beta1=doc.beta1, beta2=doc.beta2, epsilon=doc.epsilon
        )
    return OptimizerSpec("sgd", doc.learning_rate)


def _schedule(doc: ScheduleDocument | None) -> ScheduleSpec:
    if isinstance(doc, StepScheduleDocument):
        return ScheduleSpec("step", step_size=doc.step_size, gamma=doc.gamma)
    if isinstance(doc, CosineScheduleDocument):
        return ScheduleSpec("cosine", min_learning_rate=doc.min_learning_rate)
    return ScheduleSpec()


def _base_model(
    doc: BaseModelDocument | None, architecture: ArchitectureSpec
) -> BaseModelSpec | None:
    if doc is None:
        return None
    name = validate_name(_text(doc.name, "base_model.name"))
    if doc.alias is not None and doc.version is not None:
        raise _fail("base_model", "give either an alias or a version, not both")
    alias = None if doc.alias is None else validate_alias(doc.alias)
    version = None if doc.version is None else parse_version(doc.version)
    if alias is None and version is None:
        alias = "production"
    freeze = tuple(doc.freeze)
    if len(set(freeze)) != len(freeze):
        raise _fail("base_model.freeze", f"lists a layer twice: {list(freeze)}")
    deepest = len(architecture.hidden)  # layers are 0..deepest, the last is the output
    for index in freeze:
        if index > deepest:
            raise _fail(
                "base_model.freeze",
                f"layer {index} does not exist: this architecture has layers 0..{deepest}",
            )
    return BaseModelSpec(name=name, alias=alias, version=version, freeze=freeze)


def _task(declared: Task | None, architecture: ArchitectureSpec) -> Task | None:
    if architecture.type == "linear":
        if declared == "classification":
            raise _fail("task", "a linear model is a regression; use logistic/softmax or mlp")
        return "regression"
    if architecture.type in ("logistic", "softmax"):
        if declared == "regression":
            raise _fail("task", f"a {architecture.type} model classifies; use linear or mlp")
        return "classification"
    return declared


def parse_spec(value: Any) -> TrainingSpec:
    """Validate the JSON a person wrote; raise ``InvalidRequest`` naming the first bad field."""
    doc = decode(value, SpecDocument, SPEC)
    model = validate_name(_text(doc.model, "model"))
    dataset = _dataset(doc.dataset, doc.format)
    target = None if doc.target is None else _text(doc.target, "target")
    if target is None and dataset.format != "npz":
        raise _fail("target", f"is required for a {dataset.format} dataset: name the label column")
    features = None
    if doc.features is not None:
        features = tuple(_text(item, f"features[{i}]") for i, item in enumerate(doc.features))
        if target is not None and target in features:
            raise _fail("features", f"lists the target column {target!r}")
        if len(set(features)) != len(features):
            raise _fail("features", "lists a column twice")
    architecture = _architecture(doc.architecture, doc.activation)
    return TrainingSpec(
        model=model,
        dataset=dataset,
        target=target,
        features=features,
        architecture=architecture,
        task=_task(doc.task, architecture),
        epochs=doc.epochs,
        batch_size=doc.batch_size,
        optimizer=_optimizer(doc.optimizer),
        weight_decay=doc.weight_decay,
        lr_schedule=_schedule(doc.lr_schedule),
        validation_split=doc.validation_split,
        seed=doc.seed,
        patience=doc.patience,
        base_model=_base_model(doc.base_model, architecture),
        workers=doc.workers,
        local_steps=doc.local_steps,
    )

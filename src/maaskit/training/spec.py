"""The training spec: the JSON a person writes, validated field by field.

Every mistake is reported as ``InvalidRequest`` naming the field and what would be
accepted, because the person reading it is usually looking at a failed workflow run and
their own JSON, not at this code. Unknown keys are errors too: a misspelt ``"paitence"``
silently ignored would cost a whole training run.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, cast

from maaskit.errors import InvalidRequest
from maaskit.registry.catalog import parse_version, validate_alias, validate_name

Task = Literal["classification", "regression"]
ArchitectureType = Literal["linear", "logistic", "softmax", "mlp"]
Activation = Literal["relu", "tanh"]
OptimizerType = Literal["sgd", "momentum", "adam"]
ScheduleType = Literal["constant", "step", "cosine"]
DatasetFormat = Literal["csv", "npz", "jsonl"]

ARCHITECTURES: tuple[str, ...] = ("linear", "logistic", "softmax", "mlp")
ACTIVATIONS: tuple[str, ...] = ("relu", "tanh")
OPTIMIZERS: tuple[str, ...] = ("adam", "momentum", "sgd")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "step")
TASKS: tuple[str, ...] = ("classification", "regression")
FORMATS: dict[str, DatasetFormat] = {
    ".csv": "csv",
    ".npz": "npz",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
MAX_WORKERS = 64
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
MAX_EPOCHS = 100_000


@dataclass(frozen=True)
class ArchitectureSpec:
    type: ArchitectureType
    hidden: tuple[int, ...] = ()
    activation: Activation = "relu"


@dataclass(frozen=True)
class OptimizerSpec:
    type: OptimizerType
    learning_rate: float
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


@dataclass(frozen=True)
class ScheduleSpec:
    type: ScheduleType = "constant"
    step_size: int = 10  # epochs between decays ("step")
    gamma: float = 0.1  # decay factor ("step")
    min_learning_rate: float = 0.0  # floor ("cosine")


@dataclass(frozen=True)
class BaseModelSpec:
    name: str
    alias: str | None = None
    version: int | None = None
    freeze: tuple[int, ...] = ()


@dataclass(frozen=True)
class DatasetRef:
    bucket: str | None  # None: the deployment's own bucket
    key: str
    format: DatasetFormat


@dataclass(frozen=True)
class TrainingSpec:
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
    lr_schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    validation_split: float = 0.2
    seed: int = 0
    patience: int | None = None
    base_model: BaseModelSpec | None = None
    workers: int = 1
    local_steps: int = 1

    def with_task(self, task: Task) -> TrainingSpec:
        return replace(self, task=task)

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec, JSON-ready, and accepted again by ``parse_spec``."""
        data = asdict(self)
        dataset = self.dataset
        data["dataset"] = f"s3://{dataset.bucket}/{dataset.key}" if dataset.bucket else dataset.key
        data["format"] = dataset.format
        data["architecture"]["hidden"] = list(self.architecture.hidden)
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
        if self.features is not None:
            data["features"] = list(self.features)
        else:
            del data["features"]
        if self.base_model is None:
            del data["base_model"]
        else:
            base = {k: v for k, v in data["base_model"].items() if v is not None}
            base["freeze"] = list(self.base_model.freeze)
            data["base_model"] = base
        for optional in ("task", "patience", "target"):
            if data[optional] is None:
                del data[optional]
        return data

    def hyperparameters(self) -> dict[str, Any]:
        """What a manifest records about how the model was trained."""
        data = self.to_dict()
        for key in ("model", "dataset", "format", "features", "target", "base_model"):
            data.pop(key, None)
        return data


# field readers ---------------------------------------------------------------


def _fail(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"training spec field {path!r}: {message}")


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a JSON object, got {type(value).__name__}")
    return value


def _no_unknown_keys(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = "the training spec" if not path else f"{path!r}"
        close = difflib.get_close_matches(str(unknown[0]), sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidRequest(
            f"unknown field(s) {', '.join(map(repr, unknown))} in {where}{hint}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "must be a non-empty string")
    return value.strip()


def _choice(value: Any, path: str, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(path, f"unknown {what} {value!r}; use one of {', '.join(choices)}")
    return value


def _integer(value: Any, path: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"must be an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise _fail(path, f"must be an integer, got {value!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise _fail(path, f"must be >= {minimum}{upper}, got {value}")
    return number


def _number(
    value: Any,
    path: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(path, f"must be a finite number, got {value!r}")
    if minimum is not None and (number < minimum or (exclusive_minimum and number == minimum)):
        sign = ">" if exclusive_minimum else ">="
        raise _fail(path, f"must be {sign} {minimum}, got {value}")
    if maximum is not None and (number > maximum or (exclusive_maximum and number == maximum)):
        sign = "<" if exclusive_maximum else "<="
        raise _fail(path, f"must be {sign} {maximum}, got {value}")
    return number


def _int_list(value: Any, path: str, minimum: int) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _fail(path, f"must be a list of integers, got {value!r}")
    return tuple(_integer(item, f"{path}[{i}]", minimum) for i, item in enumerate(value))


# sections --------------------------------------------------------------------


def parse_dataset(value: Any, format_override: Any = None) -> DatasetRef:
    """``s3://bucket/key`` or a key in the deployment's bucket; the format from the suffix."""
    uri = _string(value, "dataset")
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
        fmt = _choice(format_override, "format", tuple(sorted(set(FORMATS.values()))), "format")
        return DatasetRef(bucket=bucket, key=key, format=cast(DatasetFormat, fmt))
    for suffix, fmt_name in FORMATS.items():
        if key.lower().endswith(suffix):
            return DatasetRef(bucket=bucket, key=key, format=fmt_name)
    raise _fail(
        "dataset",
        f"cannot tell the format of {uri!r} from its name; use a {', '.join(FORMATS)} file "
        'or set "format" to csv, npz or jsonl',
    )


def parse_architecture(value: Any, activation: Any) -> ArchitectureSpec:
    data = _object(value, "architecture")
    _no_unknown_keys(data, {"type", "hidden", "activation"}, "architecture")
    kind = _choice(data.get("type"), "architecture.type", ARCHITECTURES, "architecture")
    hidden: tuple[int, ...] = ()
    if kind == "mlp":
        if "hidden" not in data:
            raise _fail("architecture.hidden", "an mlp needs hidden layer sizes, e.g. [64]")
        hidden = _int_list(data["hidden"], "architecture.hidden", minimum=1)
        if not hidden:
            raise _fail(
                "architecture.hidden",
                "an mlp needs at least one hidden layer; use softmax or linear for none",
            )
    elif "hidden" in data and data["hidden"] not in ([], None):
        raise _fail("architecture.hidden", f"a {kind} model has no hidden layers; use mlp")
    inner = data.get("activation")
    if inner is not None and activation is not None and inner != activation:
        raise _fail(
            "activation",
            f"{activation!r} conflicts with architecture.activation {inner!r}; give one",
        )
    chosen = inner if inner is not None else activation
    act = "relu" if chosen is None else _choice(chosen, "activation", ACTIVATIONS, "activation")
    return ArchitectureSpec(
        type=cast(ArchitectureType, kind), hidden=hidden, activation=cast(Activation, act)
    )


def parse_optimizer(value: Any) -> OptimizerSpec:
    data = _object(value, "optimizer")
    _no_unknown_keys(
        data, {"type", "learning_rate", "momentum", "beta1", "beta2", "epsilon"}, "optimizer"
    )
    kind = _choice(data.get("type"), "optimizer.type", OPTIMIZERS, "optimizer")
    if "learning_rate" not in data:
        raise _fail("optimizer.learning_rate", "is required, e.g. 0.001")
    lr = _number(
        data["learning_rate"], "optimizer.learning_rate", minimum=0.0, exclusive_minimum=True
    )
    extras: dict[str, float] = {}
    if "momentum" in data:
        if kind != "momentum":
            raise _fail("optimizer.momentum", f"only applies to the momentum optimizer, not {kind}")
        extras["momentum"] = _number(
            data["momentum"],
            "optimizer.momentum",
            minimum=0.0,
            maximum=1.0,
            exclusive_maximum=True,
        )
    for name in ("beta1", "beta2", "epsilon"):
        if name in data:
            if kind != "adam":
                raise _fail(f"optimizer.{name}", f"only applies to adam, not {kind}")
            if name == "epsilon":
                extras[name] = _number(
                    data[name], "optimizer.epsilon", minimum=0.0, exclusive_minimum=True
                )
            else:
                extras[name] = _number(
                    data[name],
                    f"optimizer.{name}",
                    minimum=0.0,
                    maximum=1.0,
                    exclusive_maximum=True,
                )
    defaults = OptimizerSpec(type=cast(OptimizerType, kind), learning_rate=lr)
    return OptimizerSpec(
        type=defaults.type,
        learning_rate=lr,
        momentum=extras.get("momentum", defaults.momentum),
        beta1=extras.get("beta1", defaults.beta1),
        beta2=extras.get("beta2", defaults.beta2),
        epsilon=extras.get("epsilon", defaults.epsilon),
    )


def parse_schedule(value: Any) -> ScheduleSpec:
    if value is None:
        return ScheduleSpec()
    data = _object(value, "lr_schedule")
    _no_unknown_keys(data, {"type", "step_size", "gamma", "min_learning_rate"}, "lr_schedule")
    kind = _choice(data.get("type"), "lr_schedule.type", SCHEDULES, "learning-rate schedule")
    if kind != "step" and ("step_size" in data or "gamma" in data):
        raise _fail("lr_schedule", "step_size and gamma only apply to the step schedule")
    if kind != "cosine" and "min_learning_rate" in data:
        raise _fail("lr_schedule.min_learning_rate", "only applies to the cosine schedule")
    schedule = ScheduleSpec(type=cast(ScheduleType, kind))
    if kind == "step":
        schedule = ScheduleSpec(
            type="step",
            step_size=_integer(data.get("step_size", 10), "lr_schedule.step_size", 1),
            gamma=_number(
                data.get("gamma", 0.1),
                "lr_schedule.gamma",
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
            ),
        )
    elif kind == "cosine":
        schedule = ScheduleSpec(
            type="cosine",
            min_learning_rate=_number(
                data.get("min_learning_rate", 0.0), "lr_schedule.min_learning_rate", minimum=0.0
            ),
        )
    return schedule


def parse_base_model(value: Any) -> BaseModelSpec | None:
    if value is None:
        return None
    data = _object(value, "base_model")
    _no_unknown_keys(data, {"name", "alias", "version", "freeze"}, "base_model")
    name = validate_name(_string(data.get("name"), "base_model.name"))
    alias = data.get("alias")
    version = data.get("version")
    if alias is not None and version is not None:
        raise _fail("base_model", "give either an alias or a version, not both")
    if alias is not None:
        validate_alias(alias)
    parsed_version = parse_version(version) if version is not None else None
    if alias is None and parsed_version is None:
        alias = "production"
    freeze = _int_list(data.get("freeze", []), "base_model.freeze", minimum=0)
    if len(set(freeze)) != len(freeze):
        raise _fail("base_model.freeze", f"lists a layer twice: {list(freeze)}")
    return BaseModelSpec(name=name, alias=alias, version=parsed_version, freeze=tuple(freeze))


_TOP_LEVEL = {
    "model", "dataset", "format", "target", "features", "architecture", "activation", "task",
    "epochs", "batch_size", "optimizer", "weight_decay", "lr_schedule", "validation_split",
    "seed", "patience", "base_model", "workers", "local_steps",
}  # fmt: skip


def parse_spec(value: Any) -> TrainingSpec:
    """Validate the JSON a person wrote; raise ``InvalidRequest`` naming the first bad field."""
    data = _object(value, "")
    _no_unknown_keys(data, _TOP_LEVEL, "")
    for required in ("model", "dataset", "architecture", "optimizer", "epochs", "batch_size"):
        if required not in data:
            raise _fail(required, "is required")
    model = validate_name(_string(data["model"], "model"))
    dataset = parse_dataset(data["dataset"], data.get("format"))
    target = data.get("target")
    if target is not None:
        target = _string(target, "target")
    elif dataset.format != "npz":
        raise _fail("target", f"is required for a {dataset.format} dataset: name the label column")
    features = None
    if data.get("features") is not None:
        raw = data["features"]
        if not isinstance(raw, list) or not raw:
            raise _fail("features", "must be a non-empty list of column names")
        features = tuple(_string(item, f"features[{i}]") for i, item in enumerate(raw))
        if target is not None and target in features:
            raise _fail("features", f"lists the target column {target!r}")
        if len(set(features)) != len(features):
            raise _fail("features", "lists a column twice")
    architecture = parse_architecture(data["architecture"], data.get("activation"))
    task = data.get("task")
    if task is not None:
        task = _choice(task, "task", TASKS, "task")
    if architecture.type == "linear":
        if task == "classification":
            raise _fail("task", "a linear model is a regression; use logistic/softmax or mlp")
        task = "regression"
    elif architecture.type in ("logistic", "softmax"):
        if task == "regression":
            raise _fail("task", f"a {architecture.type} model classifies; use linear or mlp")
        task = "classification"
    patience = data.get("patience")
    base_model = parse_base_model(data.get("base_model"))
    if base_model is not None and base_model.freeze:
        deepest = len(architecture.hidden)  # layers are 0..deepest, the last is the output
        for index in base_model.freeze:
            if index > deepest:
                raise _fail(
                    "base_model.freeze",
                    f"layer {index} does not exist: this architecture has layers 0..{deepest}",
                )
    workers = _integer(data.get("workers", 1), "workers", 1, MAX_WORKERS)
    return TrainingSpec(
        model=model,
        dataset=dataset,
        target=target,
        features=features,
        architecture=architecture,
        task=cast("Task | None", task),
        epochs=_integer(data["epochs"], "epochs", 1, MAX_EPOCHS),
        batch_size=_integer(data["batch_size"], "batch_size", 1),
        optimizer=parse_optimizer(data["optimizer"]),
        weight_decay=_number(data.get("weight_decay", 0.0), "weight_decay", minimum=0.0),
        lr_schedule=parse_schedule(data.get("lr_schedule")),
        validation_split=_number(
            data.get("validation_split", 0.2),
            "validation_split",
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
            exclusive_maximum=True,
        ),
        seed=_integer(data.get("seed", 0), "seed", 0, 2**63 - 1),
        patience=None if patience is None else _integer(patience, "patience", 1),
        base_model=base_model,
        workers=workers,
        local_steps=_integer(data.get("local_steps", 1), "local_steps", 1),
    )

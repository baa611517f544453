"""The training spec document as pydantic v2 models: the baseline of ``bench/contracts.py``.

Field for field what ``maaskit.training.spec.SpecDocument`` declares in msgspec (types,
ranges, defaults, tagged unions, unknown fields refused), so the two cold starts compare
the libraries, not the models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
LearningRate = Annotated[float, Field(gt=0.0)]
Name = Annotated[str, Field(min_length=1)]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArchitectureDocument(_Document):
    type: Literal["linear", "logistic", "softmax", "mlp"]
    hidden: list[PositiveInt] | None = None
    activation: Literal["relu", "tanh"] | None = None


class SgdDocument(_Document):
    type: Literal["sgd"]
    learning_rate: LearningRate


class MomentumDocument(_Document):
    type: Literal["momentum"]
    learning_rate: LearningRate
    momentum: Fraction = 0.9


class AdamDocument(_Document):
    type: Literal["adam"]
    learning_rate: LearningRate
    beta1: Fraction = 0.9
    beta2: Fraction = 0.999
    epsilon: Annotated[float, Field(gt=0.0)] = 1e-8


class ConstantScheduleDocument(_Document):
    type: Literal["constant"]


class StepScheduleDocument(_Document):
    type: Literal["step"]
    step_size: PositiveInt = 10
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class CosineScheduleDocument(_Document):
    type: Literal["cosine"]
    min_learning_rate: Annotated[float, Field(ge=0.0)] = 0.0


class BaseModelDocument(_Document):
    name: Name
    alias: str | None = None
    version: Annotated[int, Field(ge=1)] | Annotated[str, Field(pattern="^[0-9]+$")] | None = None
    freeze: list[Annotated[int, Field(ge=0)]] = []


class SpecDocument(_Document):
    model: Name
    dataset: Name
    architecture: ArchitectureDocument
    optimizer: Annotated[SgdDocument | MomentumDocument | AdamDocument, Field(discriminator="type")]
    epochs: Annotated[int, Field(ge=1, le=100_000)]
    batch_size: PositiveInt
    format: Literal["csv", "npz", "jsonl"] | None = None
    target: Name | None = None
    features: Annotated[list[Name], Field(min_length=1)] | None = None
    activation: Literal["relu", "tanh"] | None = None
    task: Literal["classification", "regression"] | None = None
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    lr_schedule: (
        Annotated[
            ConstantScheduleDocument | StepScheduleDocument | CosineScheduleDocument,
            Field(discriminator="type"),
        ]
        | None
    ) = None
    validation_split: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    patience: PositiveInt | None = None
    base_model: BaseModelDocument | None = None
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    local_steps: PositiveInt = 1


def parse(value: Any) -> SpecDocument:
    return SpecDocument.model_validate(value)

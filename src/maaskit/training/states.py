"""The JSON each Step Functions state takes and returns, as typed models.

The state machine threads one growing JSON object through the run: Prepare's reply is
TrainSteps' input, Evaluate adds the metrics, Export the artifact, and so on. Each model
here is that object at one point, so a step reads its input as the model it expects and
a corrupted or hand-made execution input fails with ``InvalidRequest`` naming the field.
Payloads carry S3 keys and a few numbers, never arrays (the 256 KB state limit).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from maaskit.training.contract import JsonRecord, Subject, decode
from maaskit.training.runs import RunPaths, validate_run_id
from maaskit.training.spec import Task

STEP_INPUT = Subject("step input")
Count = Annotated[int, Meta(ge=0)]
State = TypeVar("State", bound="StepState")


class StepState(JsonRecord, frozen=True, kw_only=True, omit_defaults=True):
    """What every state carries: the run it belongs to (the execution's name).

    A step reads the fields its model names and checks their types; fields it does not
    know are left out of its reply (a hand-fed later state works, extras are not kept)."""

    run_id: str

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_id)


def read_state(event: Any, kind: type[State]) -> State:
    """The step's input as ``kind``, its run id checked: ``InvalidRequest`` names the field."""
    state = decode(event, kind, STEP_INPUT)
    validate_run_id(state.run_id)
    return state


def grow(state: StepState, kind: type[State], **added: Any) -> State:
    """``state`` as the next state's model, with the fields this step adds or changes."""
    fields = {name: getattr(state, name) for name in kind.__struct_fields__ if hasattr(state, name)}
    return kind(**{**fields, **added})


class PrepareInput(StepState, frozen=True, kw_only=True):
    """The Start state's output: the person's spec, validated by Prepare, and the run id."""

    request: Any


class EmbeddingProgress(msgspec.Struct, frozen=True):
    next_batch: Count
    batches: Count
    done: bool


class Embedding(StepState, frozen=True, kw_only=True):
    """A text fine-tune before training: Prepare's reply, Embed's input and output."""

    model: str
    workers: Annotated[int, Meta(ge=1)]
    embedding: EmbeddingProgress


class Progress(StepState, frozen=True, kw_only=True):
    """Training under way: the checkpoint to resume from and where it stands.

    Prepare (or the last Embed) returns it, TrainSteps and Reduce take and return it."""

    model: str
    task: Task
    workers: Annotated[int, Meta(ge=1)]
    worker_ids: list[Count]
    checkpoint: str
    epoch: Count
    step: Count
    loss: float | None
    done: bool
    embedding: EmbeddingProgress | None = None  # a text fine-tune's, kept for the record


class WorkerInput(StepState, frozen=True, kw_only=True):
    """One item of the TrainRound Map: the round's checkpoint and the worker's number."""

    checkpoint: str
    worker: Count


class WorkerResult(JsonRecord, frozen=True):
    worker: Count
    result: str
    steps: Count


class Round(Progress, frozen=True, kw_only=True):
    """Reduce's input: the progress plus every worker's result of the round."""

    round: list[WorkerResult]


class Evaluated(Progress, frozen=True, kw_only=True):
    metrics: dict[str, float]
    stop_reason: str | None


class Exported(Evaluated, frozen=True, kw_only=True):
    artifact: str
    weights: str
    parity: dict[str, Any]


class Registered(Exported, frozen=True, kw_only=True):
    version: Annotated[int, Meta(ge=1)]


class Promoted(Registered, frozen=True, kw_only=True):
    promoted: bool
    promotion: dict[str, Any]


class FailureInput(StepState, frozen=True, kw_only=True):
    """Whatever state a step failed on, with the error the Catch put at ``$.error``. Only
    the run id must be right: the run may have failed on a malformed state, and its
    failure is recorded all the same."""

    error: Any = None
    checkpoint: Any = None


class Failure(JsonRecord, frozen=True, kw_only=True):
    run_id: str
    status: str
    error: str
    message: str

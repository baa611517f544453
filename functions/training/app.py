"""The training workflow's functions: one entry point per state of the state machine.

Every training function in ``template.yaml`` has this folder as its code and its own
``Handler`` (``app.prepare``, ``app.steps``, ...). Each Lambda sandbox imports the module
once and calls only its own entry point, and ``Components`` builds a piece on first use, so a
step pays only for what it uses: only ``embed`` builds a runtime, only ``export`` imports
onnx (inside the workflow). The work is ``maaskit.training.workflow``'s; each entry point
passes the event and the settings it needs, and logs the outcome.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.components import Components
from maaskit.training import workflow

Event = dict[str, Any]
Reply = dict[str, Any]

logger = Logger()
core = Components.from_env()


def _logged(message: str, reply: Reply, *fields: str) -> Reply:
    """``reply``, once logged as ``message`` with its run id and the named fields."""
    logger.info(message, run_id=reply["run_id"], **{name: reply[name] for name in fields})
    return reply


def _time_budget(context: LambdaContext) -> float:
    """Seconds this invocation may work, less the margin to write its checkpoint."""
    remaining = context.get_remaining_time_in_millis()
    return workflow.time_budget(remaining, core.settings.training_margin_ms)


@logger.inject_lambda_context
def prepare(event: Event, context: LambdaContext) -> Reply:
    """Validate the training request, split and shard the data, write checkpoint 0."""
    reply = workflow.prepare_run(
        core.store,
        core.registry,
        event,
        max_dataset_bytes=core.settings.training_max_dataset_bytes,
    )
    return _logged("prepared", reply, "model", "workers")


@logger.inject_lambda_context
def embed(event: Event, context: LambdaContext) -> Reply:
    """A text fine-tune's texts through the frozen encoder, batch by batch, then checkpoint 0."""
    reply = workflow.embed_texts(
        core.store,
        core.runtime,
        event,
        time_budget=_time_budget(context),
        max_batches=core.settings.training_steps_per_invocation,
    )
    return _logged("embedded", reply, "embedding")


@logger.inject_lambda_context
def steps(event: Event, context: LambdaContext) -> Reply:
    """As many mini-batches as fit this invocation's time, then a checkpoint."""
    reply = workflow.train_steps(
        core.store,
        event,
        time_budget=_time_budget(context),
        max_steps=core.settings.training_steps_per_invocation,
    )
    return _logged("trained", reply, "epoch", "step", "loss", "done")


@logger.inject_lambda_context
def worker(event: Event, context: LambdaContext) -> Reply:
    """One data-parallel worker's local steps on its shard, for one round."""
    return workflow.train_worker(core.store, event)


@logger.inject_lambda_context
def reduce(event: Event, context: LambdaContext) -> Reply:
    """Average the workers' models of a round and write the next checkpoint."""
    return _logged("reduced", workflow.reduce_round(core.store, event), "epoch", "step")


@logger.inject_lambda_context
def evaluate(event: Event, context: LambdaContext) -> Reply:
    """Validation metrics of the final weights."""
    return _logged("evaluated", workflow.evaluate(core.store, event), "metrics")


@logger.inject_lambda_context
def export(event: Event, context: LambdaContext) -> Reply:
    """The ONNX file, checked against the numpy forward pass before anything is kept.

    The only function with the training layer (the onnx package).
    """
    return _logged("exported", workflow.export(core.store, core.registry, event), "parity")


@logger.inject_lambda_context
def register(event: Event, context: LambdaContext) -> Reply:
    """Publish the exported model with metrics, hyper-parameters and lineage."""
    reply = workflow.register(core.store, core.registry, event)
    return _logged("registered", reply, "model", "version")


@logger.inject_lambda_context
def promote(event: Event, context: LambdaContext) -> Reply:
    """Move ``production`` to the new version only if it beats the current one."""
    reply = workflow.promote(core.store, core.registry, event)
    return _logged("promotion", reply, "promoted", "promotion")


@logger.inject_lambda_context
def failure(event: Event, context: LambdaContext) -> Reply:
    """Keep why a training run failed in ``training/{run_id}/status.json``."""
    reply = workflow.record_failure(core.store, event)
    logger.warning(
        "training failed", run_id=reply["run_id"], error=reply["error"], reason=reply["message"]
    )
    return reply

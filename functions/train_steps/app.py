"""TrainSteps: as many mini-batches as fit this invocation's time, then a checkpoint."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.registry.store import ObjectStore
from maaskit.settings import Settings
from maaskit.training import workflow

logger = Logger()
settings = Settings.from_env()
store = ObjectStore(settings.bucket)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = workflow.time_budget(
        context.get_remaining_time_in_millis(), settings.training_margin_ms
    )
    reply = workflow.train_steps(
        store, event, time_budget=budget, max_steps=settings.training_steps_per_invocation
    )
    logger.info(
        "trained",
        run_id=reply["run_id"],
        epoch=reply["epoch"],
        step=reply["step"],
        loss=reply["loss"],
        done=reply["done"],
    )
    return reply

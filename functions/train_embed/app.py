"""Embed: a text fine-tune's texts through the frozen encoder, batch by batch, then checkpoint 0."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.registry.store import ObjectStore
from maaskit.serving.runtime import Runtime
from maaskit.settings import Settings
from maaskit.training import workflow

logger = Logger()
settings = Settings.from_env()
store = ObjectStore(settings.bucket)
runtime = Runtime.from_settings(settings, store)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = workflow.time_budget(
        context.get_remaining_time_in_millis(), settings.training_margin_ms
    )
    reply = workflow.embed_texts(
        store,
        runtime,
        event,
        time_budget=budget,
        max_batches=settings.training_steps_per_invocation,
    )
    logger.info("embedded", run_id=reply["run_id"], embedding=reply["embedding"])
    return reply

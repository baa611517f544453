"""Promote: move ``production`` to the new version only if it beats the current one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.settings import Settings
from maaskit.training import workflow

logger = Logger()
settings = Settings.from_env()
store = ObjectStore(settings.bucket)
registry = Registry(store, max_model_bytes=settings.max_model_bytes)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    reply = workflow.promote(store, registry, event)
    logger.info(
        "promotion",
        run_id=reply["run_id"],
        promoted=reply["promoted"],
        promotion=reply["promotion"],
    )
    return reply

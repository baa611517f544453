"""TrainReduce: average the workers' models of a round and write the next checkpoint."""

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
    reply = workflow.reduce_round(store, event)
    logger.info("reduced", run_id=reply["run_id"], epoch=reply["epoch"], step=reply["step"])
    return reply

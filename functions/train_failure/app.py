"""RecordFailure: keep why a training run failed in training/{run_id}/status.json."""

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
    reply = workflow.record_failure(store, event)
    logger.warning(
        "training failed", run_id=reply["run_id"], error=reply["error"], reason=reply["message"]
    )
    return reply

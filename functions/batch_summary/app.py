"""The last step of the batch state machine: add up every file under the run's prefix.

A thin adapter: the state machine passes its whole state (the prefix, and the map's result
or the error it caught) with the execution name; ``maaskit.batch.summary`` does the rest.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.batch.summary import summarize
from maaskit.components import Components

logger = Logger()
tracer = Tracer()
core = Components.from_env()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = event.get("state") or {}
    result = summarize(
        core.store,
        state.get("prefix", ""),
        run_id=event["run"],
        map_result=state.get("map"),
        map_error=state.get("mapError"),
    )
    logger.info("batch run summarized", **result)
    return result

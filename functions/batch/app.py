"""Batch predictions: an S3 event (or a Distributed Map item) names a file; predict it.

A thin adapter: decode the keys, call ``maaskit.batch.BatchService`` for each, log and
count the outcomes. Anything the service raises (S3 unavailable, a bug) propagates, so
Lambda's asynchronous retries and the on-failure destination see it; the service itself
turns every problem with the file into a report instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.batch import BatchOutcome
from maaskit.components import Components

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="maaskit")
core = Components.from_env(spin_wait=False)  # parsing runs between model calls
service = core.batch


def _keys(event: dict[str, Any]) -> list[str]:
    """Decoded keys from an S3 notification, or the one key of a Distributed Map item."""
    if "Records" in event:
        keys = []
        for record in S3Event(event).records:
            bucket = record.s3.bucket.name
            if bucket != core.settings.bucket:
                logger.warning("event for another bucket ignored", bucket=bucket)
                continue
            keys.append(unquote_plus(record.s3.get_object.key))  # S3 URL-encodes keys
        return keys
    key = event.get("key")
    if not isinstance(key, str) or not key:
        raise ValueError('expected an S3 event notification or a map item {"key": "batch/in/..."}')
    return [key]


def _record(outcome: BatchOutcome) -> None:
    logger.info("batch file processed", **outcome.to_dict())
    metrics.add_metric(name=f"Files_{outcome.status}", unit=MetricUnit.Count, value=1)
    if outcome.status in {"skipped", "ignored", "superseded"}:
        return  # no rows were read this time
    metrics.add_metric(name="RowsIn", unit=MetricUnit.Count, value=outcome.rows_in)
    metrics.add_metric(name="RowsOut", unit=MetricUnit.Count, value=outcome.rows_out)
    metrics.add_metric(name="RowsFailed", unit=MetricUnit.Count, value=outcome.rows_failed)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = []
    for key in _keys(event):
        outcome = service.process(key)
        _record(outcome)
        outcomes.append(outcome.to_dict())
    if "Records" in event:
        return {"outcomes": outcomes}
    return outcomes[0]

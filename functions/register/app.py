"""Model registration by upload: an S3 event for ``uploads/models/{name}/{file}.onnx``.

A thin adapter: decode each key, call ``maaskit.registry.uploads.ModelUploads``, log the outcome.
An invalid upload is not an error here (it gets a ``.rejected.json`` beside it); only what
the core raises (S3 unavailable, a bug) fails the invocation, for Lambda to retry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.components import Components

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="maaskit")
core = Components.from_env()
uploads = core.uploads


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    outcomes = []
    for record in event.records:
        bucket = record.s3.bucket.name
        if bucket != core.settings.bucket:
            logger.warning("event for another bucket ignored", bucket=bucket)
            continue
        outcome = uploads.register(
            unquote_plus(record.s3.get_object.key),  # S3 URL-encodes keys
            lease_seconds=context.get_remaining_time_in_millis() / 1000,
        )
        logger.info("model upload processed", **outcome.to_dict())
        metrics.add_metric(name=f"Uploads_{outcome.status}", unit=MetricUnit.Count, value=1)
        outcomes.append(outcome.to_dict())
    return {"outcomes": outcomes}

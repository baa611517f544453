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
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.registry.uploads import ModelUploads
from maaskit.settings import Settings

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="maaskit")
settings = Settings.from_env()
store = ObjectStore(settings.bucket)
uploads = ModelUploads(store, Registry(store, max_model_bytes=settings.max_model_bytes))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = []
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        if bucket != settings.bucket:
            logger.warning("event for another bucket ignored", bucket=bucket)
            continue
        outcome = uploads.register(
            unquote_plus(record["s3"]["object"]["key"]),
            lease_seconds=context.get_remaining_time_in_millis() / 1000,
        )
        logger.info("model upload processed", **outcome.to_dict())
        metrics.add_metric(name=f"Uploads_{outcome.status}", unit=MetricUnit.Count, value=1)
        outcomes.append(outcome.to_dict())
    return {"outcomes": outcomes}

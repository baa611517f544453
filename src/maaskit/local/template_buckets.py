"""The template's buckets and the Lambda targets of their notifications (SAM S3 events too)."""

from __future__ import annotations

from typing import Any

from maaskit.local.template_model import BUCKET_TYPE, BucketDef, BucketTrigger, TemplateError
from maaskit.local.template_source import TemplateSource, as_tuple, ref_target


def _filter_rules(filter_: Any) -> tuple[tuple[str, str], ...]:
    """``Filter: {S3Key: {Rules: [...]}}`` (CloudFormation) as (name, value) pairs."""
    if not isinstance(filter_, dict):
        return ()
    rules = (filter_.get("S3Key") or filter_.get("Key") or {}).get("Rules") or []
    return tuple((str(rule["Name"]).lower(), str(rule["Value"])) for rule in rules)


def _sam_triggers(source: TemplateSource) -> dict[str, list[BucketTrigger]]:
    """Bucket logical id -> the triggers its functions' ``S3`` events declare."""
    resolve = source.resolver.resolve
    triggers: dict[str, list[BucketTrigger]] = {}
    for function_id in source.of_types(("AWS::Serverless::Function",)):
        for event_name, props in source.events(function_id, "S3"):
            bucket_id = ref_target(props.get("Bucket"))
            if bucket_id is None:
                raise TemplateError(
                    f"{function_id}.Events.{event_name}: Bucket must be !Ref to a bucket"
                )
            triggers.setdefault(bucket_id, []).append(
                BucketTrigger(
                    function_arn=source.names.function_arn(function_id),
                    events=as_tuple(resolve(props.get("Events"))),
                    filter_rules=_filter_rules(resolve(props.get("Filter"))),
                )
            )
    return triggers


def read_buckets(source: TemplateSource) -> list[BucketDef]:
    """Buckets, each with the Lambda targets of its notifications (SAM S3 events included)."""
    triggers = _sam_triggers(source)
    found = []
    for logical_id in source.of_types((BUCKET_TYPE,)):
        props = source.properties(logical_id)
        declared = source.resolver.resolve(
            (props.get("NotificationConfiguration") or {}).get("LambdaConfigurations") or [],
            f"{logical_id}.NotificationConfiguration",
        )
        own = [
            BucketTrigger(
                function_arn=str(item["Function"]),
                events=as_tuple(item.get("Event")),
                filter_rules=_filter_rules(item.get("Filter")),
            )
            for item in declared
        ]
        found.append(
            BucketDef(
                logical_id=logical_id,
                name=source.names.bucket_name(logical_id),
                triggers=tuple(own + triggers.get(logical_id, [])),
            )
        )
    return found

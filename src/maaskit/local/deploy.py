"""Create what the template declares in the embedded AWS, with handlers routed in process.

Order matters: buckets first (so saved data can be restored before any notification is
wired, which would re-run batch jobs), then functions (registered with the router and
created in moto), then the buckets' notifications, then the state machines, whose
definitions name the functions' ARNs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maaskit.errors import MaaskitError
from maaskit.local import resources
from maaskit.local.lambda_router import FunctionSpec, LambdaRouter
from maaskit.local.template import ApiDef, BucketDef, Template

log = logging.getLogger("maaskit-local")

ClientFactory = Callable[[str], Any]

# The embedded AWS accepts any credentials; these only keep real ones out of the local stack
# (so they need not match what a client of the stack sends).
PLACEHOLDER_CREDENTIAL = "testing"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": PLACEHOLDER_CREDENTIAL,
    "AWS_SECRET_ACCESS_KEY": PLACEHOLDER_CREDENTIAL,
    "AWS_SESSION_TOKEN": PLACEHOLDER_CREDENTIAL,
}


def local_environment(endpoint_url: str | None) -> dict[str, str]:
    """What every function gets on top of its template environment when run locally."""
    env = dict(DUMMY_CREDENTIALS)
    env.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "MAASKIT_LOCAL": "true",
        }
    )
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


class DeployError(MaaskitError):
    """A resource of the template could not be created in the embedded AWS."""


@dataclass
class Deployment:
    """What was created, by logical id."""

    buckets: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)
    apis: list[ApiDef] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def deploy(
    template: Template,
    router: LambdaRouter,
    client: ClientFactory,
    *,
    endpoint_url: str | None = None,
    before_notifications: Callable[[list[BucketDef]], None] | None = None,
    extra_environment: Mapping[str, str] | None = None,
) -> Deployment:
    """Create the template's buckets, functions, notifications and state machines.

    ``client(service)`` returns a boto3 client for the embedded AWS; ``endpoint_url`` is what
    the functions' own boto3 clients should use (``None`` inside ``mock_aws``).
    """
    done = Deployment()
    role_arn = resources.ensure_role(client("iam"))
    s3 = client("s3")

    buckets = template.buckets()
    for bucket in buckets:
        resources.create_bucket(s3, bucket.name, template.region)
        done.buckets[bucket.logical_id] = bucket.name
    if before_notifications is not None:
        before_notifications(buckets)

    overrides = local_environment(endpoint_url)
    overrides.update(extra_environment or {})
    lambda_client = client("lambda")
    for function in template.functions():
        environment = {**function.environment, **overrides}
        spec = router.register(
            function.name,
            function.code_dir,
            function.handler,
            environment=environment,
            timeout_s=function.timeout_s,
            memory_mb=function.memory_mb,
            region=template.region,
            account_id=template.account_id,
        )
        resources.create_function(lambda_client, spec, role_arn)
        done.functions[function.logical_id] = spec

    for bucket in buckets:
        if bucket.triggers:
            configurations = [trigger.notification() for trigger in bucket.triggers]
            resources.put_lambda_notifications(s3, bucket.name, configurations)

    sfn = client("stepfunctions")
    for machine in template.state_machines():
        try:
            arn = resources.create_state_machine(
                sfn, machine.name, machine.definition, role_arn, machine.kind
            )
        except sfn.exceptions.ClientError as err:
            raise DeployError(
                f"{machine.logical_id}: the embedded Step Functions refused the definition: "
                f"{err.response.get('Error', {}).get('Message', err)}"
            ) from None
        done.state_machines[machine.logical_id] = arn

    done.apis = template.apis()
    done.outputs = template.outputs()
    done.notes = list(template.notes)
    for note in done.notes:
        log.info("template: %s", note)
    return done

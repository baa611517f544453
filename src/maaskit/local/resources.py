"""Create resources in the embedded AWS through its service APIs.

moto's CloudFormation cannot deploy a SAM-translated template (no API Gateway, no bucket
notifications, state machines land in the non-executing backend), so the local stack calls
the services directly. These are the few calls it needs, usable on their own in tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from maaskit.local.lambda_router import FunctionSpec

LOCAL_ROLE_NAME = "maaskit-local-execution"

_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _placeholder_zip() -> bytes:
    """moto wants a code package; the code really runs from the function's folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Routed in process by maaskit.local.lambda_router.\n")
    return buffer.getvalue()


def ensure_role(iam: Any, name: str = LOCAL_ROLE_NAME) -> str:
    """One role that Lambda and Step Functions may assume (moto checks that it exists)."""
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY))
        return str(role["Role"]["Arn"])


def create_function(lambda_client: Any, spec: FunctionSpec, role_arn: str) -> str:
    """Create (or replace) ``spec`` as a Lambda function; return its ARN."""
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function(FunctionName=spec.name)
    response = lambda_client.create_function(
        FunctionName=spec.name,
        Runtime="python3.12",
        Role=role_arn,
        Handler=spec.handler,
        Code={"ZipFile": _placeholder_zip()},
        Timeout=max(1, round(spec.timeout_s)),
        MemorySize=max(128, spec.memory_mb),
        Environment={"Variables": dict(spec.environment)},
    )
    return str(response["FunctionArn"])


def create_bucket(s3: Any, name: str, region: str) -> None:
    args: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**args)


def put_lambda_notifications(
    s3: Any, bucket: str, configurations: Iterable[Mapping[str, Any]]
) -> None:
    """Replace the bucket's notification configuration with these Lambda targets."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [dict(c) for c in configurations]
        },
    )


def create_state_machine(
    sfn: Any, name: str, definition: Mapping[str, Any], role_arn: str, kind: str = "STANDARD"
) -> str:
    """Create (or replace) a state machine; moto refuses an invalid definition here."""
    for machine in sfn.list_state_machines().get("stateMachines", []):
        if machine["name"] == name:
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    response = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=role_arn, type=kind
    )
    return str(response["stateMachineArn"])


def publish_outputs(cfn: Any, stack_name: str, outputs: Mapping[str, str]) -> None:
    """Record the stack's outputs in the embedded CloudFormation.

    Clients then find the bucket, the API URL and the state machines of a local stack the
    same way as for a deployed one: ``describe_stacks(StackName=...)["Outputs"]``. The stack
    holds a single no-op resource; the real resources were created through their own APIs.
    """
    import warnings

    template = {
        "Description": "maaskit local stack (outputs only)",
        "Resources": {"LocalStackMarker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    with contextlib.suppress(cfn.exceptions.ClientError):
        cfn.delete_stack(StackName=stack_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns that it does not model the marker
        cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))

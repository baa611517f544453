"""Which maaskit deployment a client talks to, and how to find its parts.

Three ways to name one, the same for the SDK and every CLI command:

- ``local=True``: a local stack on its default ports (API on 3000, embedded AWS on 5000);
- ``api_url`` (and ``aws_endpoint_url`` for S3/Step Functions; also read from
  ``MAASKIT_API_URL`` and ``MAASKIT_AWS_ENDPOINT_URL``);
- ``stack``: a deployed CloudFormation stack, whose outputs name the API URL, the bucket and
  the state machines.

What is not given is discovered lazily from the stack's outputs; a local stack records its
outputs in the embedded CloudFormation, so the same code finds both. Credentials and region
come the usual boto3 way (against a local endpoint, dummy credentials do).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from maaskit.errors import MaaskitError

LOCAL_API_URL = "http://127.0.0.1:3000/"
LOCAL_AWS_ENDPOINT_URL = "http://127.0.0.1:5000"
LOCAL_REGION = "us-east-1"
# What an embedded AWS is given as an access key, secret and token: it accepts any.
PLACEHOLDER_CREDENTIAL = "testing"


class TargetError(MaaskitError):
    """The deployment to talk to is not named well enough to find what a command needs."""

    http_status = 400


@dataclass(frozen=True)
class TargetOptions:
    local: bool = False
    api_url: str | None = None
    aws_endpoint_url: str | None = None
    stack: str | None = None
    bucket: str | None = None
    region: str | None = None
    api_key: str | None = None
    sigv4: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def _is_state_machine(value: str) -> bool:
    return value.startswith("arn:") and ":states:" in value and ":stateMachine:" in value


class Target:
    """A resolved deployment: URLs, bucket, region, and boto3 clients aimed at it."""

    def __init__(self, options: TargetOptions | None = None) -> None:
        options = options or TargetOptions()
        env = options.env
        if options.local and (options.stack or options.api_url or options.aws_endpoint_url):
            raise TargetError(
                "--local already names the endpoints: drop --api-url, --aws-endpoint-url, --stack"
            )
        self.local = options.local
        self.api_key = options.api_key or env.get("MAASKIT_API_KEY") or None
        self.sigv4 = options.sigv4
        self._bucket = options.bucket  # not MAASKIT_BUCKET: that is the functions' setting
        if options.local:
            self._api_url: str | None = LOCAL_API_URL
            self.aws_endpoint_url: str | None = LOCAL_AWS_ENDPOINT_URL
            self.stack: str | None = None  # the one stack a local endpoint holds, any name
        else:
            self._api_url = options.api_url or env.get("MAASKIT_API_URL") or None
            self.aws_endpoint_url = (
                options.aws_endpoint_url or env.get("MAASKIT_AWS_ENDPOINT_URL") or None
            )
            self.stack = options.stack
        self.region = (
            options.region
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or (LOCAL_REGION if self.aws_endpoint_url else None)
        )

    # boto3 -----------------------------------------------------------------------------

    @cached_property
    def session(self) -> Any:
        import boto3

        session = boto3.session.Session(region_name=self.region)
        if self.aws_endpoint_url and session.get_credentials() is None:
            # An embedded AWS accepts any credentials; do not make people invent some.
            session = boto3.session.Session(
                aws_access_key_id=PLACEHOLDER_CREDENTIAL,
                aws_secret_access_key=PLACEHOLDER_CREDENTIAL,
                region_name=self.region or LOCAL_REGION,
            )
        return session

    def client(self, service: str) -> Any:
        if self.session.region_name is None:
            raise TargetError(
                "no AWS region: set AWS_REGION or pass --region (or use a profile with one)"
            )
        return self.session.client(service, endpoint_url=self.aws_endpoint_url)

    # the stack's outputs ---------------------------------------------------------------

    @cached_property
    def outputs(self) -> dict[str, str]:
        """The stack's outputs ({} when no stack is named or discoverable)."""
        cfn = self.client("cloudformation")
        name = self.stack
        if name is None:
            if not self.aws_endpoint_url:
                return {}
            stacks = [
                s["StackName"]
                for s in cfn.describe_stacks().get("Stacks", [])
                if not str(s.get("StackStatus", "")).startswith("DELETE")
            ]
            if len(stacks) != 1:
                return {}
            name = stacks[0]
        try:
            described = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except Exception as err:
            if "does not exist" in str(err):
                raise TargetError(f"no stack called {name!r} in this account/region") from None
            raise
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    @property
    def api_url(self) -> str:
        if self._api_url:
            return self._api_url
        for key in ("ApiUrl", "ApiEndpoint", "MaasApiUrl"):
            if self.outputs.get(key):
                return self.outputs[key]
        raise TargetError(
            "no API URL: pass --local, --api-url URL (or MAASKIT_API_URL), or --stack NAME"
        )

    @property
    def bucket(self) -> str:
        if self._bucket:
            return self._bucket
        for key in ("BucketName", "ModelBucketName", "ModelBucket"):
            if self.outputs.get(key):
                return self.outputs[key]
        if self.aws_endpoint_url:
            buckets = [b["Name"] for b in self.client("s3").list_buckets().get("Buckets", [])]
            if len(buckets) == 1:
                return str(buckets[0])
        raise TargetError(
            "no bucket: pass --stack NAME, --local, --aws-endpoint-url URL of a local stack, "
            "or --bucket NAME"
        )

    def state_machine(self, hint: str = "training") -> str:
        """The ARN of the state machine whose output key or name mentions ``hint``."""
        machines = {k: v for k, v in self.outputs.items() if _is_state_machine(v)}
        for key, value in machines.items():
            if hint.lower() in key.lower():
                return value
        if len(machines) == 1:
            return next(iter(machines.values()))
        listed = self.client("stepfunctions").list_state_machines().get("stateMachines", [])
        matching = [m["stateMachineArn"] for m in listed if hint.lower() in m["name"].lower()]
        if len(matching) == 1:
            return str(matching[0])
        if not matching and len(listed) == 1:
            return str(listed[0]["stateMachineArn"])
        raise TargetError(
            f"cannot tell which state machine runs {hint}: "
            + (
                "none is deployed"
                if not listed
                else "candidates: " + ", ".join(m["name"] for m in listed)
            )
        )

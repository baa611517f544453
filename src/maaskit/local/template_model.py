"""What a template declares, in the terms the local stack deploys: the description types.

:class:`maaskit.local.template.Template` produces these; :mod:`maaskit.local.deploy` turns
them into resources. They hold resolved values only: no intrinsics, no template documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maaskit.errors import MaaskitError

DEFAULT_STACK_NAME = "maaskit-local"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
API_TYPES = ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi")
BUCKET_TYPE = "AWS::S3::Bucket"
IMPLICIT_API = "ServerlessRestApi"
IMPLICIT_API_STAGE = "Prod"


class TemplateError(MaaskitError):
    """The template asks for something the local stack cannot provide."""


@dataclass(frozen=True)
class BucketTrigger:
    """One Lambda target of a bucket's notifications."""

    function_arn: str
    events: tuple[str, ...]
    filter_rules: tuple[tuple[str, str], ...] = ()

    def notification(self) -> dict[str, Any]:
        """The ``LambdaFunctionConfigurations`` entry the S3 API takes."""
        entry: dict[str, Any] = {
            "LambdaFunctionArn": self.function_arn,
            "Events": list(self.events),
        }
        if self.filter_rules:
            rules = [{"Name": name, "Value": value} for name, value in self.filter_rules]
            entry["Filter"] = {"Key": {"FilterRules": rules}}
        return entry


@dataclass(frozen=True)
class BucketDef:
    logical_id: str
    name: str
    triggers: tuple[BucketTrigger, ...] = ()


@dataclass(frozen=True)
class Route:
    """One API route: ``method`` is upper case or ``ANY``; ``path`` keeps ``{name}`` templates."""

    api_id: str
    path: str
    method: str
    function_id: str
    function_name: str
    api_key_required: bool = False


@dataclass(frozen=True)
class ApiDef:
    logical_id: str
    stage: str
    rest_api_id: str = "localapi"
    binary_media_types: tuple[str, ...] = ()
    auth: str = "none"  # "none", "api key", "iam", or an authorizer's name
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class FunctionDef:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 3.0
    memory_mb: int = 128


@dataclass(frozen=True)
class StateMachineDef:
    logical_id: str
    name: str
    definition: Mapping[str, Any]
    kind: str = "STANDARD"

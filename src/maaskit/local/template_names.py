"""Physical names, ARNs and the values of ``Ref``/``Fn::GetAtt`` for a template's resources.

Names are invented the way CloudFormation would (``{stack}-{LogicalId}``, cut to the
service's limit) unless the template names the resource itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from maaskit.local.intrinsics import UnresolvableError
from maaskit.local.template_model import (
    API_TYPES,
    BUCKET_TYPE,
    FUNCTION_TYPES,
    IMPLICIT_API,
    STATE_MACHINE_TYPES,
)

# Resources the local stack does not create but whose Ref is harmless to invent.
_INVENTED_REF_TYPES = (
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Logs::LogGroup",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
)
_LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")

Resolve = Callable[[Any, str], Any]


class PhysicalNames:
    """What each resource is called once deployed, and what its ``Ref``/``GetAtt`` give."""

    def __init__(
        self,
        resources: Mapping[str, Mapping[str, Any]],
        *,
        stack_name: str,
        region: str,
        account_id: str,
        resolve: Resolve,
        uses_implicit_api: Callable[[], bool],
    ) -> None:
        self.resources = resources
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self._resolve = resolve
        self._uses_implicit_api = uses_implicit_api

    def type_of(self, logical_id: str) -> str:
        if logical_id in self.resources:
            return str(self.resources[logical_id].get("Type", ""))
        if logical_id == IMPLICIT_API and self._uses_implicit_api():
            return "AWS::Serverless::Api"
        if logical_id.endswith("Role"):
            owner = self.resources.get(logical_id[: -len("Role")], {})
            if owner.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                return "AWS::IAM::Role"
        raise UnresolvableError(f"no resource called {logical_id!r}")

    def _named(self, logical_id: str, prop: str, limit: int, lower: bool = False) -> str:
        properties = self.resources.get(logical_id, {}).get("Properties") or {}
        given = properties.get(prop)
        if given is not None:
            return str(self._resolve(given, f"{logical_id}.{prop}"))
        name = f"{self.stack_name}-{logical_id}"
        if lower:
            name = re.sub(r"[^a-z0-9.-]", "-", name.lower())
        return name[:limit]

    def bucket_name(self, logical_id: str) -> str:
        return self._named(logical_id, "BucketName", 63, lower=True)

    def function_name(self, logical_id: str) -> str:
        return self._named(logical_id, "FunctionName", 64)

    def function_arn(self, logical_id: str) -> str:
        name = self.function_name(logical_id)
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def state_machine_name(self, logical_id: str) -> str:
        kind = self.type_of(logical_id)
        prop = "Name" if kind == "AWS::Serverless::StateMachine" else "StateMachineName"
        return self._named(logical_id, prop, 80)

    def state_machine_arn(self, logical_id: str) -> str:
        name = self.state_machine_name(logical_id)
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{name}"

    def api_id(self, logical_id: str) -> str:
        return re.sub(r"[^a-z0-9]", "", logical_id.lower())[:10] or "localapi"

    def ref(self, logical_id: str) -> Any:
        kind = self.type_of(logical_id)
        if kind == BUCKET_TYPE:
            return self.bucket_name(logical_id)
        if kind in FUNCTION_TYPES:
            return self.function_name(logical_id)
        if kind in STATE_MACHINE_TYPES:
            return self.state_machine_arn(logical_id)
        if kind in API_TYPES:
            return self.api_id(logical_id)
        if kind in _LAYER_TYPES:
            return (
                f"arn:aws:lambda:{self.region}:{self.account_id}:layer:"
                f"{self.stack_name}-{logical_id}:1"
            )
        if kind in _INVENTED_REF_TYPES:
            return f"{self.stack_name}-{logical_id}"
        raise UnresolvableError(f"{logical_id} ({kind}) is not created by the local stack")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.type_of(logical_id)
        if kind == BUCKET_TYPE:
            name = self.bucket_name(logical_id)
            values = {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            }
            if attribute in values:
                return values[attribute]
        elif kind in FUNCTION_TYPES and attribute == "Arn":
            return self.function_arn(logical_id)
        elif kind in STATE_MACHINE_TYPES and attribute in ("Arn", "Name"):
            if attribute == "Name":
                return self.state_machine_name(logical_id)
            return self.state_machine_arn(logical_id)
        elif kind in API_TYPES and attribute == "RootResourceId":
            return "root"
        elif kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{self.account_id}:role/{self.stack_name}-{logical_id}"
        raise UnresolvableError(f"{logical_id}.{attribute} ({kind}) is not known locally")

"""What the SAM template declares, in the terms the local stack deploys.

:class:`Template` reads ``template.yaml`` and answers: which buckets (and which functions
their notifications trigger), which functions (code folder, handler, merged ``Globals``,
resolved environment, timeout), which API routes, which state machines (definition with
``DefinitionSubstitutions`` applied), and the stack's outputs. Physical names are invented
the way CloudFormation would (``{stack}-{LogicalId}``) unless the template names them.

Nothing here talks to AWS: :mod:`maaskit.local.deploy` turns these descriptions into
resources. Add a function, a route or an S3 event to the template and it shows up here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maaskit.errors import MaaskitError
from maaskit.local import cfn_yaml
from maaskit.local.intrinsics import NO_VALUE, Resolver, UnresolvableError

DEFAULT_STACK_NAME = "maaskit-local"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
API_TYPES = ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi")
BUCKET_TYPE = "AWS::S3::Bucket"
IMPLICIT_API = "ServerlessRestApi"
IMPLICIT_API_STAGE = "Prod"
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


def _merge_globals(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: mappings merge, lists append, anything else is overridden."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in own.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = _merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + value
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _ref_target(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return value["Ref"]
    return None


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def _filter_rules(filter_: Any) -> tuple[tuple[str, str], ...]:
    """``Filter: {S3Key: {Rules: [...]}}`` (CloudFormation) as (name, value) pairs."""
    if not isinstance(filter_, dict):
        return ()
    rules = (filter_.get("S3Key") or filter_.get("Key") or {}).get("Rules") or []
    return tuple((str(rule["Name"]).lower(), str(rule["Value"])) for rule in rules)


def _substitute(value: Any, substitutions: Mapping[str, str]) -> Any:
    """Apply ``DefinitionSubstitutions`` to every string in a state machine definition."""
    if isinstance(value, str):
        return re.sub(
            r"\$\{([^}]+)\}",
            lambda m: substitutions.get(m.group(1), m.group(0)),
            value,
        )
    if isinstance(value, list):
        return [_substitute(item, substitutions) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, substitutions) for key, item in value.items()}
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class Template:
    """A parsed template with its parameters chosen, ready to be described resource by resource."""

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        root: str | Path = ".",
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.document = document
        self.root = Path(root).resolve()
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.resources: dict[str, dict[str, Any]] = dict(document.get("Resources") or {})
        self.globals: dict[str, Any] = dict(document.get("Globals") or {})
        self.notes: list[str] = []  # what was ignored, for the stack's log
        self.resolver = Resolver(
            parameters=self._parameters(parameters or {}),
            pseudo={
                "AWS::Region": region,
                "AWS::AccountId": account_id,
                "AWS::StackName": stack_name,
                "AWS::StackId": (
                    f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local"
                ),
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NotificationARNs": [],
            },
            conditions=document.get("Conditions") or {},
            mappings=document.get("Mappings") or {},
            ref=self._ref,
            get_att=self._get_att,
        )

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> Template:
        """Read ``path``; relative ``CodeUri``/``DefinitionUri`` are taken from its folder."""
        path = Path(path)
        if not path.is_file():
            raise TemplateError(
                f"template not found: {path} (run from the project's folder, or pass --template)"
            )
        try:
            document = cfn_yaml.load(path)
        except Exception as err:  # yaml raises several error types
            raise TemplateError(f"cannot read {path}: {err}") from None
        return cls(document, root=path.parent, **options)

    # parameters and physical names ----------------------------------------------------

    def _parameters(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        declared: dict[str, Any] = dict(self.document.get("Parameters") or {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"the template has no parameter {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default: give it a value")
            allowed = spec.get("AllowedValues")
            if allowed and str(value) not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            if str(spec.get("Type", "")).startswith("CommaDelimitedList") or str(
                spec.get("Type", "")
            ).startswith("List<"):
                value = [item.strip() for item in str(value).split(",")] if value != "" else []
            else:
                value = str(value)
            values[name] = value
        return values

    def _type(self, logical_id: str) -> str:
        if logical_id in self.resources:
            return str(self.resources[logical_id].get("Type", ""))
        if logical_id == IMPLICIT_API and self._uses_implicit_api():
            return "AWS::Serverless::Api"
        if logical_id.endswith("Role"):
            owner = self.resources.get(logical_id[: -len("Role")], {})
            if owner.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                return "AWS::IAM::Role"
        raise UnresolvableError(f"no resource called {logical_id!r}")

    def _properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources.get(logical_id, {}).get("Properties") or {})

    def _named(self, logical_id: str, prop: str, limit: int, lower: bool = False) -> str:
        given = self._properties(logical_id).get(prop)
        if given is not None:
            return str(self.resolver.resolve(given, f"{logical_id}.{prop}"))
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
        kind = self._type(logical_id)
        prop = "Name" if kind == "AWS::Serverless::StateMachine" else "StateMachineName"
        return self._named(logical_id, prop, 80)

    def state_machine_arn(self, logical_id: str) -> str:
        name = self.state_machine_name(logical_id)
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{name}"

    def api_id(self, logical_id: str) -> str:
        return re.sub(r"[^a-z0-9]", "", logical_id.lower())[:10] or "localapi"

    def _ref(self, logical_id: str) -> Any:
        kind = self._type(logical_id)
        if kind == BUCKET_TYPE:
            return self.bucket_name(logical_id)
        if kind in FUNCTION_TYPES:
            return self.function_name(logical_id)
        if kind in STATE_MACHINE_TYPES:
            return self.state_machine_arn(logical_id)
        if kind in API_TYPES:
            return self.api_id(logical_id)
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return (
                f"arn:aws:lambda:{self.region}:{self.account_id}:layer:"
                f"{self.stack_name}-{logical_id}:1"
            )
        if kind in _INVENTED_REF_TYPES:
            return f"{self.stack_name}-{logical_id}"
        raise UnresolvableError(f"{logical_id} ({kind}) is not created by the local stack")

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self._type(logical_id)
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

    def _enabled(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.resolver.condition(condition)

    def _of_types(self, types: tuple[str, ...]) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.resources.items()
            if resource.get("Type") in types and self._enabled(logical_id)
        ]

    # functions ------------------------------------------------------------------------

    def _function_properties(self, logical_id: str) -> dict[str, Any]:
        own = self._properties(logical_id)
        if self.resources[logical_id]["Type"] == "AWS::Serverless::Function":
            return _merge_globals(self.globals.get("Function") or {}, own)
        return own

    def functions(self) -> list[FunctionDef]:
        """Every function whose code is a local folder (``CodeUri``), Globals merged."""
        found = []
        for logical_id in self._of_types(FUNCTION_TYPES):
            props = self._function_properties(logical_id)
            where = f"{logical_id}"
            code = self.resolver.resolve(props.get("CodeUri", props.get("Code")), where)
            if not isinstance(code, str):
                self.notes.append(f"{logical_id}: code is not a local folder; not deployed")
                continue
            if props.get("PackageType") == "Image":
                self.notes.append(f"{logical_id}: image functions are not run locally")
                continue
            variables = (props.get("Environment") or {}).get("Variables") or {}
            resolved = self.resolver.resolve(variables, f"{where}.Environment")
            found.append(
                FunctionDef(
                    logical_id=logical_id,
                    name=self.function_name(logical_id),
                    code_dir=(self.root / code).resolve(),
                    handler=str(self.resolver.resolve(props.get("Handler"), where)),
                    environment={k: _env_value(v) for k, v in resolved.items()},
                    timeout_s=float(self.resolver.resolve(props.get("Timeout", 3), where)),
                    memory_mb=int(self.resolver.resolve(props.get("MemorySize", 128), where)),
                )
            )
        return found

    def _events(self, logical_id: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
        events = self._properties(logical_id).get("Events") or {}
        return [
            (name, dict(event.get("Properties") or {}))
            for name, event in events.items()
            if event.get("Type") == kind
        ]

    # buckets --------------------------------------------------------------------------

    def buckets(self) -> list[BucketDef]:
        """Buckets, each with the Lambda targets of its notifications (SAM S3 events included)."""
        triggers: dict[str, list[BucketTrigger]] = {}
        for function_id in self._of_types(("AWS::Serverless::Function",)):
            for event_name, props in self._events(function_id, "S3"):
                bucket_id = _ref_target(props.get("Bucket"))
                if bucket_id is None:
                    raise TemplateError(
                        f"{function_id}.Events.{event_name}: Bucket must be !Ref to a bucket"
                    )
                triggers.setdefault(bucket_id, []).append(
                    BucketTrigger(
                        function_arn=self.function_arn(function_id),
                        events=_as_tuple(self.resolver.resolve(props.get("Events"))),
                        filter_rules=_filter_rules(self.resolver.resolve(props.get("Filter"))),
                    )
                )
        found = []
        for logical_id in self._of_types((BUCKET_TYPE,)):
            props = self._properties(logical_id)
            declared = self.resolver.resolve(
                (props.get("NotificationConfiguration") or {}).get("LambdaConfigurations") or [],
                f"{logical_id}.NotificationConfiguration",
            )
            own = [
                BucketTrigger(
                    function_arn=str(item["Function"]),
                    events=_as_tuple(item.get("Event")),
                    filter_rules=_filter_rules(item.get("Filter")),
                )
                for item in declared
            ]
            found.append(
                BucketDef(
                    logical_id=logical_id,
                    name=self.bucket_name(logical_id),
                    triggers=tuple(own + triggers.get(logical_id, [])),
                )
            )
        return found

    # the API --------------------------------------------------------------------------

    def _uses_implicit_api(self) -> bool:
        return any(
            "RestApiId" not in props
            for function_id in self._of_types(("AWS::Serverless::Function",))
            for _, props in self._events(function_id, "Api")
        )

    def apis(self) -> list[ApiDef]:
        """REST APIs and their routes, from the functions' ``Api`` events."""
        routes: dict[str, list[Route]] = {}
        for function_id in self._of_types(("AWS::Serverless::Function",)):
            for _, props in self._events(function_id, "Api"):
                api_id = _ref_target(props.get("RestApiId")) or IMPLICIT_API
                auth = self.resolver.resolve(props.get("Auth") or {}, function_id)
                routes.setdefault(api_id, []).append(
                    Route(
                        api_id=api_id,
                        path="/" + str(self.resolver.resolve(props["Path"])).strip("/"),
                        method=str(self.resolver.resolve(props["Method"])).upper(),
                        function_id=function_id,
                        function_name=self.function_name(function_id),
                        api_key_required=bool(auth.get("ApiKeyRequired", False)),
                    )
                )
        for function_id in self._of_types(("AWS::Serverless::Function",)):
            for kind in ("HttpApi",):
                if self._events(function_id, kind):
                    self.notes.append(f"{function_id}: {kind} events are not served locally")
        defaults = self.globals.get("Api") or {}
        found = []
        for api_id, api_routes in routes.items():
            if api_id == IMPLICIT_API:
                props, stage = dict(defaults), IMPLICIT_API_STAGE
            else:
                if self.resources.get(api_id, {}).get("Type") != "AWS::Serverless::Api":
                    raise TemplateError(f"RestApiId {api_id} is not an AWS::Serverless::Api")
                props = _merge_globals(defaults, self._properties(api_id))
                stage = str(self.resolver.resolve(props.get("StageName", "Prod"), api_id))
            binary = self.resolver.resolve(props.get("BinaryMediaTypes") or [], api_id)
            found.append(
                ApiDef(
                    logical_id=api_id,
                    stage=stage,
                    rest_api_id=self.api_id(api_id),
                    binary_media_types=tuple(str(t).replace("~1", "/") for t in binary),
                    auth=self._auth(
                        self.resolver.resolve(props.get("Auth") or {}, api_id), api_routes
                    ),
                    routes=tuple(api_routes),
                )
            )
        return found

    def _auth(self, auth: Mapping[str, Any], routes: list[Route]) -> str:
        authorizer = auth.get("DefaultAuthorizer")
        if authorizer == "AWS_IAM":
            return "iam"
        if authorizer:
            return str(authorizer)
        if auth.get("ApiKeyRequired") or any(route.api_key_required for route in routes):
            return "api key"
        return "none"

    # state machines -------------------------------------------------------------------

    def state_machines(self) -> list[StateMachineDef]:
        """State machines with their definitions loaded and ``DefinitionSubstitutions`` applied."""
        found = []
        for logical_id in self._of_types(STATE_MACHINE_TYPES):
            props = self._properties(logical_id)
            serverless = self.resources[logical_id]["Type"] == "AWS::Serverless::StateMachine"
            definition = self._definition(logical_id, props)
            substitutions = self.resolver.resolve(
                props.get("DefinitionSubstitutions") or {},
                f"{logical_id}.DefinitionSubstitutions",
            )
            kind = props.get("Type" if serverless else "StateMachineType") or "STANDARD"
            found.append(
                StateMachineDef(
                    logical_id=logical_id,
                    name=self.state_machine_name(logical_id),
                    definition=_substitute(
                        definition, {k: _env_value(v) for k, v in substitutions.items()}
                    ),
                    kind=str(self.resolver.resolve(kind)),
                )
            )
        return found

    def _definition(self, logical_id: str, props: Mapping[str, Any]) -> Any:
        if "Definition" in props:
            return self.resolver.resolve(props["Definition"], f"{logical_id}.Definition")
        if "DefinitionString" in props:
            text = self.resolver.resolve(props["DefinitionString"], logical_id)
            return json.loads(text)
        uri = props.get("DefinitionUri")
        if isinstance(uri, str):
            path = self.root / uri
            if not path.is_file():
                raise TemplateError(f"{logical_id}.DefinitionUri: {path} does not exist")
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".json":
                return json.loads(text)
            return cfn_yaml.loads(text)
        raise TemplateError(f"{logical_id}: only local DefinitionUri or inline definitions run")

    # outputs --------------------------------------------------------------------------

    def outputs(self) -> dict[str, str]:
        """Outputs whose values are known locally (the others are noted and left out)."""
        values: dict[str, str] = {}
        for key, output in (self.document.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition is not None and not self.resolver.condition(condition):
                continue
            try:
                value = self.resolver.resolve(output.get("Value"), f"Outputs.{key}")
            except UnresolvableError as err:
                self.notes.append(f"output {key} left out: {err}")
                continue
            if value is not NO_VALUE:
                values[key] = _env_value(value)
        return values

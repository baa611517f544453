"""What the SAM template declares, in the terms the local stack deploys.

:class:`Template` reads ``template.yaml``, chooses its parameters and answers: which buckets
(and which functions their notifications trigger), which functions (code folder, handler,
merged ``Globals``, resolved environment, timeout), which API routes, which state machines
(definition with ``DefinitionSubstitutions`` applied), and the stack's outputs. Each kind of
resource has its own reader (``template_functions``, ``template_buckets``, ``template_apis``,
``template_state_machines``); physical names come from
:class:`~maaskit.local.template_names.PhysicalNames`.

Nothing here talks to AWS: :mod:`maaskit.local.deploy` turns these descriptions into
resources. Add a function, a route or an S3 event to the template and it shows up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maaskit.local import cfn_yaml
from maaskit.local.intrinsics import NO_VALUE, Resolver, UnresolvableError
from maaskit.local.template_apis import read_apis, uses_implicit_api
from maaskit.local.template_buckets import read_buckets
from maaskit.local.template_functions import read_functions
from maaskit.local.template_model import (
    API_TYPES,
    BUCKET_TYPE,
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    FUNCTION_TYPES,
    IMPLICIT_API,
    IMPLICIT_API_STAGE,
    STATE_MACHINE_TYPES,
    ApiDef,
    BucketDef,
    BucketTrigger,
    FunctionDef,
    Route,
    StateMachineDef,
    TemplateError,
)
from maaskit.local.template_names import PhysicalNames
from maaskit.local.template_source import TemplateSource, env_value
from maaskit.local.template_state_machines import read_state_machines

__all__ = [
    "API_TYPES",
    "BUCKET_TYPE",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "DEFAULT_STACK_NAME",
    "FUNCTION_TYPES",
    "IMPLICIT_API",
    "IMPLICIT_API_STAGE",
    "STATE_MACHINE_TYPES",
    "ApiDef",
    "BucketDef",
    "BucketTrigger",
    "FunctionDef",
    "Route",
    "StateMachineDef",
    "Template",
    "TemplateError",
    "parameter_values",
]


def _is_list_type(kind: str) -> bool:
    return kind.startswith("CommaDelimitedList") or kind.startswith("List<")


def parameter_values(
    declared: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, str]
) -> dict[str, Any]:
    """Each declared parameter's value: the override, else its default, checked and typed."""
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
        if _is_list_type(str(spec.get("Type", ""))):
            value = [item.strip() for item in str(value).split(",")] if value != "" else []
        else:
            value = str(value)
        values[name] = value
    return values


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
        self.names = PhysicalNames(
            self.resources,
            stack_name=stack_name,
            region=region,
            account_id=account_id,
            resolve=self._resolve,  # the resolver, made next, asks these names back
            uses_implicit_api=self._uses_implicit_api,
        )
        self.resolver = Resolver(
            parameters=parameter_values(document.get("Parameters") or {}, parameters or {}),
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
            ref=self.names.ref,
            get_att=self.names.get_att,
        )
        self._source = TemplateSource(
            resources=self.resources,
            globals=self.globals,
            root=self.root,
            resolver=self.resolver,
            names=self.names,
        )
        self.notes = self._source.notes  # what was ignored, for the stack's log

    def _resolve(self, value: Any, where: str) -> Any:
        return self.resolver.resolve(value, where)

    def _uses_implicit_api(self) -> bool:
        return uses_implicit_api(self._source)

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

    # what the template declares ---------------------------------------------------------

    def functions(self) -> list[FunctionDef]:
        """Every function whose code is a local folder (``CodeUri``), Globals merged."""
        return read_functions(self._source)

    def buckets(self) -> list[BucketDef]:
        """Buckets, each with the Lambda targets of its notifications (SAM S3 events included)."""
        return read_buckets(self._source)

    def apis(self) -> list[ApiDef]:
        """REST APIs and their routes, from the functions' ``Api`` events."""
        return read_apis(self._source)

    def state_machines(self) -> list[StateMachineDef]:
        """State machines with their definitions loaded and ``DefinitionSubstitutions`` applied."""
        return read_state_machines(self._source)

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
                values[key] = env_value(value)
        return values

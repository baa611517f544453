"""The template's IAM grants are the least each function needs.

Every Allow statement of every function, state machine and role in ``template.yaml`` is
resolved with the local stack's template reader (real ARNs for a made-up account) and checked
against three rules: no ``*`` action or resource where a narrower one fits, the API function
only reads (``models/``), and only registration and training write under ``models/``.

Known trade-off, kept on purpose: ``s3:ListBucket`` is granted on the whole bucket, with no
``s3:prefix`` condition. Without an unconditional ListBucket, S3 answers a GET or HEAD of a
missing key with 403 instead of 404, and missing keys are ordinary here (no report yet, no
``production`` alias). A role may therefore list every key name in the bucket, never read
an object outside its prefixes.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from maaskit.local.template import Template

TEMPLATE = Path(__file__).parents[2] / "template.yaml"
BUCKET_ARN = "arn:aws:s3:::maaskit-123456789012-us-east-1"
MODEL_WRITERS = frozenset({"RegisterFunction", "TrainRegisterFunction", "TrainPromoteFunction"})
# Keys of every kind the registry keeps under models/ (a grant covers models/ if it matches one).
MODEL_KEYS = (
    "models/iris/versions/3/model.onnx",
    "models/iris/versions/3/manifest.json",
    "models/iris/versions/3/tokenizer.json",
    "models/iris/aliases/production.json",
)
# AWS managed policies a role of this template may carry, each scoped by who may assume it.
REVIEWED_MANAGED_POLICIES = frozenset(
    {"arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
)
_POLICY_OWNERS = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")


@dataclass(frozen=True)
class Grant:
    owner: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None


def _strings(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(item) for item in value)


def _allows(owner: str, statements: Iterable[Mapping[str, Any]]) -> list[Grant]:
    return [
        Grant(
            owner,
            _strings(statement["Action"]),
            _strings(statement["Resource"]),
            statement.get("Condition"),
        )
        for statement in statements
        if statement.get("Effect") == "Allow"
    ]


def collect(template: Template) -> tuple[list[Grant], list[str]]:
    """Every Allow grant in the template, and every policy the rules cannot read."""
    grants: list[Grant] = []
    unreviewed: list[str] = []
    for logical_id, resource in template.resources.items():
        kind = resource.get("Type")
        raw = resource.get("Properties") or {}
        keys = ("Policies", "ManagedPolicyArns", "PolicyDocument")
        props = template.resolver.resolve({k: raw[k] for k in keys if k in raw}, logical_id)
        if kind in _POLICY_OWNERS:
            for policy in props.get("Policies") or []:
                if isinstance(policy, Mapping) and "Statement" in policy:
                    grants += _allows(logical_id, policy["Statement"])
                elif isinstance(policy, Mapping) and set(policy) == {"LambdaInvokePolicy"}:
                    name = policy["LambdaInvokePolicy"]["FunctionName"]
                    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
                    grants.append(Grant(logical_id, ("lambda:InvokeFunction",), (arn, f"{arn}:*")))
                else:  # a managed policy or another SAM policy template: read it, then list it
                    unreviewed.append(f"{logical_id}: {policy}")
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                grants += _allows(logical_id, policy["PolicyDocument"]["Statement"])
            unreviewed += [
                f"{logical_id}: {arn}"
                for arn in props.get("ManagedPolicyArns") or []
                if arn not in REVIEWED_MANAGED_POLICIES
            ]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            grants += _allows(logical_id, props["PolicyDocument"]["Statement"])
    return grants, unreviewed


def _object_path(arn: str) -> str | None:
    """The key pattern of an S3 object ARN in the bucket, or None for any other ARN."""
    prefix = f"{BUCKET_ARN}/"
    return arn[len(prefix) :] if arn.startswith(prefix) else None


def _is_s3_write(action: str) -> bool:
    return action.startswith("s3:") and not action.startswith(("s3:Get", "s3:List"))


def wildcards(grants: Iterable[Grant]) -> list[str]:
    """Grants with a ``*`` that a narrower action or resource would replace."""
    found = []
    for grant in grants:
        found += [f"{grant.owner}: action {a}" for a in grant.actions if "*" in a]
        for arn in grant.resources:
            path = _object_path(arn)
            if path is not None:
                wide = "*" in path.split("/", 1)[0]  # objects must name a top-level prefix
            else:
                fields = arn.split(":", 5)
                # a named resource: partition to account literal, and a literal name first
                wide = len(fields) < 6 or "*" in ":".join(fields[:5]) or fields[5][:1] == "*"
            if wide:
                found.append(f"{grant.owner}: resource {arn}")
    return found


def s3_writes(grants: Iterable[Grant], owner: str) -> list[str]:
    return [
        f"{action} on {arn}"
        for grant in grants
        if grant.owner == owner
        for action in grant.actions
        if _is_s3_write(action)
        for arn in grant.resources
    ]


def model_writers(grants: Iterable[Grant]) -> set[str]:
    """Who may write (put, delete, ...) some key under ``models/``."""
    writers = set()
    for grant in grants:
        if not any(_is_s3_write(action) for action in grant.actions):
            continue
        for arn in grant.resources:
            path = _object_path(arn)
            if path is not None and any(fnmatch.fnmatchcase(key, path) for key in MODEL_KEYS):
                writers.add(grant.owner)
    return writers


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(TEMPLATE)


@pytest.fixture(scope="module")
def grants(template: Template) -> list[Grant]:
    found, _ = collect(template)
    return found


def test_every_policy_is_one_the_rules_can_read(template: Template) -> None:
    # SAM policy templates such as S3CrudPolicy or managed policies such as AmazonS3FullAccess
    # grant whole buckets; only inline statements and LambdaInvokePolicy are checked here.
    grants, unreviewed = collect(template)
    assert unreviewed == []
    owners = {grant.owner for grant in grants}
    functions = {f.logical_id for f in template.functions()}
    assert functions <= owners, f"functions without any grant: {functions - owners}"


def test_no_allow_has_a_wildcard_action_or_resource_where_a_narrower_one_fits(
    grants: list[Grant],
) -> None:
    assert wildcards(grants) == []


def test_the_api_function_only_reads_models(grants: list[Grant]) -> None:
    api = [grant for grant in grants if grant.owner == "ApiFunction"]
    assert api, "the API function's policy was not found"
    assert s3_writes(grants, "ApiFunction") == []
    for grant in api:
        for action in grant.actions:
            if action == "s3:ListBucket":
                assert grant.resources == (BUCKET_ARN,)
            else:
                assert action == "s3:GetObject", action
                assert all(_object_path(arn) == "models/*" for arn in grant.resources)


def test_only_registration_and_training_write_under_models(grants: list[Grant]) -> None:
    assert model_writers(grants) == MODEL_WRITERS


def test_listing_is_granted_on_the_bucket_alone_and_unconditionally(grants: list[Grant]) -> None:
    # The trade-off in this module's docstring: bucket-wide key names, so that a missing key
    # is a 404 and not a 403.
    listing = [grant for grant in grants if "s3:ListBucket" in grant.actions]
    assert listing
    for grant in listing:
        assert grant.actions == ("s3:ListBucket",), grant
        assert grant.resources == (BUCKET_ARN,), grant
        assert grant.condition is None, grant


# The rules catch what they are for: the same template with one grant widened.


def _with_statement(template: Template, owner: str, statement: dict[str, Any]) -> Template:
    document = copy.deepcopy(dict(template.document))
    policies = document["Resources"][owner]["Properties"].setdefault("Policies", [])
    policies.append({"Statement": [statement]})
    return Template(document, root=template.root)


@pytest.mark.parametrize(
    ("owner", "action", "resource", "broken"),
    [
        ("ApiFunction", "s3:PutObject", f"{BUCKET_ARN}/models/*", "api writes"),
        ("BatchFunction", "s3:DeleteObject", f"{BUCKET_ARN}/*", "writes models"),
        (
            "BatchSummaryFunction",
            "s3:PutObject",
            f"{BUCKET_ARN}/models/*/aliases/*",
            "writes models",
        ),
        ("BatchFunction", "s3:Get*", f"{BUCKET_ARN}/batch/in/*", "wildcard"),
        ("TrainStepsFunction", "s3:GetObject", "*", "wildcard"),
        ("TrainStepsFunction", "s3:GetObject", f"{BUCKET_ARN}/*/checkpoints/*", "wildcard"),
        (
            "BatchStateMachine",
            "states:StartExecution",
            "arn:aws:states:*:*:stateMachine:*",
            "wildcard",
        ),
    ],
)
def test_a_widened_grant_is_caught(
    template: Template, owner: str, action: str, resource: str, broken: str
) -> None:
    widened = _with_statement(
        template, owner, {"Effect": "Allow", "Action": action, "Resource": resource}
    )
    grants, _ = collect(widened)
    caught = {
        "api writes": bool(s3_writes(grants, "ApiFunction")),
        "writes models": model_writers(grants) != MODEL_WRITERS,
        "wildcard": bool(wildcards(grants)),
    }
    assert caught[broken], (owner, action, resource)


def test_an_unreviewed_policy_template_is_caught(template: Template) -> None:
    document = copy.deepcopy(dict(template.document))
    api = document["Resources"]["ApiFunction"]["Properties"]
    api["Policies"].append({"S3CrudPolicy": {"BucketName": "anything"}})
    _, unreviewed = collect(Template(document, root=template.root))
    assert unreviewed == ["ApiFunction: {'S3CrudPolicy': {'BucketName': 'anything'}}"]

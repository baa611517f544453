"""The batch state machine's definition and its wiring in template.yaml.

Its definition is checked the way AWS would (cfn-lint's schema for Step Functions, and
moto's parser, which refuses what it cannot read), and its shape is checked against what
the functions it calls expect.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from maaskit.batch.keys import FORMATS, IN_PREFIX
from maaskit.registry.uploads import UPLOAD_PREFIX, UPLOAD_SUFFIXES

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "infra" / "statemachines" / "batch.asl.json"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"
SUBSTITUTIONS = {
    "Bucket": "maaskit-test-models",
    "BatchFunctionArn": FUNCTION_ARN.format("maaskit-batch"),
    "BatchSummaryFunctionArn": FUNCTION_ARN.format("maaskit-batch-summary"),
    "MaxConcurrency": "7",
    "ToleratedFailurePercentage": "5",
}


class _Tag(str):
    """A CloudFormation short-form tag (!Ref X, !Sub "...") kept as its name and value."""

    tag: str
    value: Any

    def __new__(cls, tag: str, value: Any) -> _Tag:
        made = super().__new__(cls, f"{tag} {value}")
        made.tag, made.value = tag, value
        return made


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return _Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    with (ROOT / "template.yaml").open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_Loader)  # a SafeLoader subclass
    return loaded


def definition(substitutions: dict[str, str] = SUBSTITUTIONS) -> str:
    text = ASL.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    return text


# the definition ------------------------------------------------------------------------


def test_every_placeholder_is_substituted_by_the_template(template: dict[str, Any]) -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    machine = template["Resources"]["BatchStateMachine"]["Properties"]
    assert set(machine["DefinitionSubstitutions"]) == placeholders == set(SUBSTITUTIONS)
    assert machine["DefinitionUri"] == "infra/statemachines/batch.asl.json"
    assert "${" not in definition()


def test_definition_is_valid_for_aws_according_to_cfn_lint() -> None:
    from cfnlint.api import ManualArgs, lint

    document = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/batch",
                    "Definition": json.loads(ASL.read_text()),
                    "DefinitionSubstitutions": SUBSTITUTIONS,
                },
            }
        },
    }
    matches = lint(json.dumps(document), config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_moto_parses_and_accepts_the_definition() -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(
            name="maaskit-batch",
            definition=definition(),
            roleArn="arn:aws:iam::123456789012:role/batch",
        )["stateMachineArn"]
        assert client.describe_state_machine(stateMachineArn=arn)["status"] == "ACTIVE"


def test_definition_shape() -> None:
    states = json.loads(definition())["States"]
    mapped = states["PredictEachFile"]
    # a Distributed Map reading the bucket's listing, its knobs taken from the input
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert mapped["ItemReader"]["Parameters"] == {
        "Bucket": "maaskit-test-models",
        "Prefix.$": "$.prefix",
    }
    assert mapped["MaxConcurrencyPath"] == "$.maxConcurrency"
    assert mapped["ToleratedFailurePercentagePath"] == "$.toleratedFailurePercentage"
    # each item is what the batch handler takes as a map item: {"key": ...}
    assert mapped["ItemSelector"] == {"key.$": "$$.Map.Item.Value.Key"}
    task = mapped["ItemProcessor"]["States"]["PredictFile"]
    assert task["Parameters"]["FunctionName"] == SUBSTITUTIONS["BatchFunctionArn"]
    retried = {e for rule in task["Retry"] for e in rule["ErrorEquals"]}
    assert "Lambda.TooManyRequestsException" in retried
    assert "States.Timeout" not in retried
    assert "States.ALL" not in retried
    # a failed map is still summarized, then fails the execution
    assert mapped["Catch"] == [
        {
            "Comment": mapped["Catch"][0]["Comment"],
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.mapError",
            "Next": "Summarize",
        }
    ]
    assert (
        states["Summarize"]["Parameters"]["FunctionName"]
        == SUBSTITUTIONS["BatchSummaryFunctionArn"]
    )
    assert states["Summarize"]["Parameters"]["Payload"] == {
        "run.$": "$$.Execution.Name",
        "state.$": "$",
    }
    assert states["CheckOutcome"]["Choices"][0]["Next"] == "TooManyFailures"
    assert "QueryLanguage" not in json.loads(definition())  # JSONPath, not JSONata


# the template ----------------------------------------------------------------------------


def _events(function: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for event in function["Properties"]["Events"].values():
        assert event["Type"] == "S3"
        props = event["Properties"]
        assert isinstance(props["Bucket"], _Tag)
        assert (props["Bucket"].tag, props["Bucket"].value) == ("Ref", "ModelBucket")
        assert props["Events"] == "s3:ObjectCreated:*"
        rules = {r["Name"]: r["Value"] for r in props["Filter"]["S3Key"]["Rules"]}
        found.append((rules["prefix"], rules["suffix"]))
    return sorted(found)


def test_s3_events_match_what_the_handlers_accept(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert _events(resources["BatchFunction"]) == sorted((IN_PREFIX, s) for s in FORMATS)
    assert _events(resources["RegisterFunction"]) == sorted(
        (UPLOAD_PREFIX, s) for s in UPLOAD_SUFFIXES
    )


@pytest.mark.parametrize("name", ["BatchFunction", "RegisterFunction"])
def test_failed_invocations_go_to_the_dead_letter_queue(
    template: dict[str, Any], name: str
) -> None:
    config = template["Resources"][name]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] in (0, 1, 2)
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert (on_failure["Destination"].tag, on_failure["Destination"].value) == (
        "GetAtt",
        "BatchDeadLetterQueue.Arn",
    )


@pytest.mark.parametrize(
    "name", ["BatchFunction", "RegisterFunction", "BatchSummaryFunction", "BatchStateMachine"]
)
def test_policies_name_the_bucket_without_ref_and_stay_in_their_prefixes(
    template: dict[str, Any], name: str
) -> None:
    resource = template["Resources"][name]
    text = json.dumps(resource["Properties"]["Policies"], default=str)
    assert "ModelBucket" not in text  # !Ref of the triggering bucket is a circular dependency
    for policy in resource["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            resources = (
                statement["Resource"]
                if isinstance(statement["Resource"], list)
                else [statement["Resource"]]
            )
            for arn in resources:
                if ":s3:::" in str(arn) and "/" in str(arn.value):
                    prefix = str(arn.value).split("}/", 1)[1]
                    assert prefix in {
                        "batch/in/*",
                        "batch/out/*",
                        "batch/runs/*",
                        "models/*",
                        "uploads/models/*",
                    }


def test_state_machine_may_invoke_each_function_it_calls(template: dict[str, Any]) -> None:
    policies = template["Resources"]["BatchStateMachine"]["Properties"]["Policies"]
    invoked = {
        p["LambdaInvokePolicy"]["FunctionName"].value for p in policies if "LambdaInvokePolicy" in p
    }
    assert invoked == {"BatchFunction", "BatchSummaryFunction"}


@pytest.mark.parametrize("folder", ["batch", "register", "batch_summary"])
def test_each_function_folder_is_complete(template: dict[str, Any], folder: str) -> None:
    uris = {
        r["Properties"].get("CodeUri")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert f"functions/{folder}" in uris
    for name in ("app.py", "__init__.py", "requirements.txt"):
        assert (ROOT / "functions" / folder / name).is_file()


def test_outputs_name_the_new_resources(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "BatchFunctionArn",
        "RegisterFunctionArn",
        "BatchSummaryFunctionArn",
        "BatchDeadLetterQueueUrl",
        "BatchStateMachineArn",
    ):
        assert name in outputs

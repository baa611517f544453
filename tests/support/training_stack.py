"""The real training state machine on moto's Step Functions interpreter, Lambdas in process.

Shared by the workflow tests and ``bench/train_workflow.py``. The functions and the
definition's substitutions are read from ``template.yaml``, so this harness fails when the
template and ``infra/statemachines/training.asl.json`` drift apart.

moto runs Lambda code only in Docker; invocations are routed to our handlers by the
local stack's router (``maaskit.local.lambda_router``), counting what it runs.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from moto import mock_aws

from maaskit.local.testing import wait_for_execution
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from tests.support.lambdas import Call, CountingLambdas

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
BUCKET = "maaskit-test-models"

# ---------------------------------------------------------------- template.yaml


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Sub, !Ref, !GetAtt, ...) as plain data."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tagged)


def load_template() -> dict[str, Any]:
    """template.yaml as plain data, a copy of its own for each caller.

    Parsed once per version of the file: pure-Python YAML takes ~0.1 s of CPU for it, and
    every stack these harnesses build reads it.
    """
    stat = TEMPLATE.stat()
    return copy.deepcopy(_parsed_template(stat.st_mtime_ns, stat.st_size))


@functools.cache
def _parsed_template(_mtime_ns: int, _size: int) -> dict[str, Any]:
    with TEMPLATE.open() as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # a SafeLoader
    return data


@dataclass(frozen=True)
class TemplateFunction:
    logical_id: str
    code_dir: Path
    handler: str


def training_functions() -> tuple[str, dict[str, TemplateFunction]]:
    """The state machine's definition file and its substitution name -> function."""
    resources = load_template()["Resources"]
    machine = resources["TrainingStateMachine"]["Properties"]
    functions = {}
    for name, value in machine["DefinitionSubstitutions"].items():
        logical_id = value["GetAtt"].removesuffix(".Arn")
        props = resources[logical_id]["Properties"]
        functions[name] = TemplateFunction(
            logical_id=logical_id, code_dir=ROOT / props["CodeUri"], handler=props["Handler"]
        )
    return machine["DefinitionUri"], functions


def substitute(definition: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        definition = definition.replace("${" + name + "}", value)
    if "${" in definition:
        raise AssertionError(
            f"unsubstituted placeholder left: {definition[definition.index('${') :][:60]}"
        )
    return definition


# ---------------------------------------------------------------- the stack


@dataclass
class TrainingStack:
    store: ObjectStore
    registry: Registry
    sfn: Any
    state_machine_arn: str
    lambdas: CountingLambdas
    function_names: dict[str, str]  # logical id -> function name

    def start(self, spec: dict[str, Any], run_id: str) -> str:
        response = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=run_id, input=json.dumps(spec)
        )
        return str(response["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        return wait_for_execution(self.sfn, execution_arn, timeout_s=timeout)

    def run(self, spec: dict[str, Any], run_id: str) -> dict[str, Any]:
        return self.wait(self.start(spec, run_id))

    def output(self, described: dict[str, Any]) -> dict[str, Any]:
        assert described["status"] == "SUCCEEDED", described
        result: dict[str, Any] = json.loads(described["output"])
        return result

    def status(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.store.get_json(f"training/{run_id}/status.json")
        return result

    def calls(self, logical_id: str) -> list[Call]:
        return self.lambdas.calls(self.function_names[logical_id])


@contextmanager
def training_stack(bucket: str = BUCKET) -> Iterator[TrainingStack]:
    """Bucket, one Lambda per training function, the state machine; handlers in process.

    Handlers read their settings (``MAASKIT_*``) from the environment at their first
    invocation, as at a cold start: set it before the first run.
    """
    definition_uri, functions = training_functions()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=bucket)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="training", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name=REGION)
        lambdas = CountingLambdas()
        arns, names = {}, {}
        for substitution, function in functions.items():
            name = f"maaskit-{function.logical_id}"
            arns[substitution] = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=function.handler,
                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip: code runs here
            )["FunctionArn"]
            names[function.logical_id] = name
            lambdas.register(name, function.code_dir, function.handler, timeout_s=900)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = substitute((ROOT / definition_uri).read_text(), arns)
        machine = sfn.create_state_machine(name="training", definition=definition, roleArn=role)
        store = ObjectStore(bucket, client=s3)
        with lambdas.installed():
            yield TrainingStack(
                store=store,
                registry=Registry(store),
                sfn=sfn,
                state_machine_arn=machine["stateMachineArn"],
                lambdas=lambdas,
                function_names=names,
            )

"""The real training state machine on moto's Step Functions interpreter, Lambdas in process.

Shared by the workflow tests and ``bench/train_workflow.py``. The functions and the
definition's substitutions are read from ``template.yaml``, so this harness fails when the
template and ``infra/statemachines/training.asl.json`` drift apart.

moto runs Lambda code only in Docker; every invocation goes through
``LambdaFunction._invoke_lambda``, which ``InProcessLambdas`` replaces while installed.
It has the same ``register``/``installed`` shape as the shared router that is being built
in ``maaskit.local.lambda_router``: once that is on main, ``_router()`` below is the only
line to change.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import yaml
from moto import mock_aws

from maaskit.registry import Registry
from maaskit.store import ObjectStore

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


# ---------------------------------------------------------------- Lambda in process


class Context:
    """What Powertools and our handlers read from the Lambda context."""

    def __init__(self, name: str, deadline: float) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
        self.memory_limit_in_mb = "3008"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function_name: str
    event: Any
    error_type: str | None


@dataclass
class InProcessLambdas:
    """Function name -> handler module, imported cold once per instance."""

    timeout_s: float = 900.0
    invocations: list[Invocation] = field(default_factory=list)
    _handlers: dict[str, Callable[[Any, Any], Any]] = field(default_factory=dict)
    _sources: dict[str, tuple[Path, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def register(
        self, function_name: str, code_dir: Path, handler: str = "app.lambda_handler"
    ) -> None:
        self._sources[function_name] = (code_dir, handler)

    def _handler(self, name: str) -> Callable[[Any, Any], Any]:
        with self._lock:
            if name not in self._handlers:
                code_dir, handler = self._sources[name]
                module_file, _, attribute = handler.rpartition(".")
                spec = importlib.util.spec_from_file_location(
                    f"_training_lambda_{next(self._ids)}_{name}", code_dir / f"{module_file}.py"
                )
                assert spec is not None
                assert spec.loader is not None
                module: ModuleType = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._handlers[name] = getattr(module, attribute)
            return self._handlers[name]

    def invoke(self, name: str, event: Any) -> tuple[str, bool, str]:
        if isinstance(event, str | bytes):
            event = json.loads(event or "{}")
        context = Context(name, time.monotonic() + self.timeout_s)
        try:
            result = self._handler(name)(event, context)
        except Exception as err:  # the invocation's result, as the Lambda service reports it
            error_type = type(err).__name__
            with self._lock:
                self.invocations.append(Invocation(name, event, error_type))
            document = {"errorType": error_type, "errorMessage": str(err)}
            return json.dumps(document), True, ""
        with self._lock:
            self.invocations.append(Invocation(name, event, None))
        return json.dumps(result), False, ""

    def calls(self, name: str) -> list[Invocation]:
        with self._lock:
            return [i for i in self.invocations if i.function_name == name]

    @contextmanager
    def installed(self) -> Iterator[InProcessLambdas]:
        from moto.awslambda.models import LambdaFunction

        original = LambdaFunction._invoke_lambda
        router = self

        def _invoke_lambda(function: Any, event: Any = None) -> tuple[str, bool, str]:
            if function.function_name not in router._sources:
                return original(function, event)
            return router.invoke(function.function_name, event)

        setattr(LambdaFunction, "_invoke_lambda", _invoke_lambda)  # noqa: B010 (moto's method)
        try:
            yield self
        finally:
            setattr(LambdaFunction, "_invoke_lambda", original)  # noqa: B010


def _router() -> InProcessLambdas:
    return InProcessLambdas()


# ---------------------------------------------------------------- the stack


@dataclass
class TrainingStack:
    store: ObjectStore
    registry: Registry
    sfn: Any
    state_machine_arn: str
    lambdas: InProcessLambdas
    function_names: dict[str, str]  # logical id -> function name

    def start(self, spec: dict[str, Any], run_id: str) -> str:
        response = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=run_id, input=json.dumps(spec)
        )
        return str(response["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still running after {timeout} s")
            time.sleep(0.02)

    def run(self, spec: dict[str, Any], run_id: str) -> dict[str, Any]:
        return self.wait(self.start(spec, run_id))

    def output(self, described: dict[str, Any]) -> dict[str, Any]:
        assert described["status"] == "SUCCEEDED", described
        result: dict[str, Any] = json.loads(described["output"])
        return result

    def status(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.store.get_json(f"training/{run_id}/status.json")
        return result

    def calls(self, logical_id: str) -> list[Invocation]:
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
        lambdas = _router()
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
            lambdas.register(name, function.code_dir, function.handler)
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

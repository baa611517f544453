"""The real batch state machine on moto's Step Functions interpreter, Lambdas in process.

Functions and substitutions come from ``template.yaml`` (so a drift between the template
and ``infra/statemachines/batch.asl.json`` fails here); Lambda invocations are routed to
our handlers by the local stack's router (``maaskit.local.lambda_router``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

from maaskit.local.testing import wait_for_execution
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from tests.support.lambdas import Call, CountingLambdas
from tests.support.training_stack import BUCKET, REGION, ROOT, load_template, substitute


@dataclass
class BatchStack:
    store: ObjectStore
    registry: Registry
    sfn: Any
    state_machine_arn: str
    lambdas: CountingLambdas
    names: dict[str, str]  # logical id -> function name

    def run(self, payload: dict[str, Any], name: str, timeout: float = 120.0) -> dict[str, Any]:
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
        )["executionArn"]
        return wait_for_execution(self.sfn, arn, timeout_s=timeout)

    def calls(self, logical_id: str) -> list[Call]:
        return self.lambdas.calls(self.names[logical_id])


@contextmanager
def batch_stack(
    *, max_concurrency: int = 4, tolerated_failure_percentage: int = 0
) -> Iterator[BatchStack]:
    machine = load_template()["Resources"]["BatchStateMachine"]["Properties"]
    resources = load_template()["Resources"]
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name=REGION)
        lambdas = CountingLambdas()
        values = {
            "Bucket": BUCKET,
            "MaxConcurrency": str(max_concurrency),
            "ToleratedFailurePercentage": str(tolerated_failure_percentage),
        }
        names = {}
        for substitution, value in machine["DefinitionSubstitutions"].items():
            if not (isinstance(value, dict) and "GetAtt" in value):
                continue  # the bucket and the parameters, given above
            logical_id = value["GetAtt"].removesuffix(".Arn")
            props = resources[logical_id]["Properties"]
            name = f"maaskit-{logical_id}"
            values[substitution] = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=props["Handler"],
                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip: code runs here
            )["FunctionArn"]
            lambdas.register(
                name,
                ROOT / props["CodeUri"],
                props["Handler"],
                environment={"MAASKIT_BUCKET": BUCKET},
                timeout_s=900,
            )
            names[logical_id] = name
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = substitute((ROOT / machine["DefinitionUri"]).read_text(), values)
        arn = sfn.create_state_machine(name="maaskit-batch", definition=definition, roleArn=role)[
            "stateMachineArn"
        ]
        store = ObjectStore(BUCKET, client=s3)
        with lambdas.installed():
            yield BatchStack(store, Registry(store), sfn, arn, lambdas, names)

"""pytest fixtures for tests that run handlers against moto in process.

Enable them with ``pytest_plugins = ["maaskit.local.testing"]`` in a ``conftest.py``.

- ``aws_env``: dummy credentials and region, no endpoint override, no profile.
- ``mocked_aws``: moto in decorator mode with Step Functions executing real ASL.
- ``lambda_router``: a :class:`~maaskit.local.lambda_router.LambdaRouter` installed for the test.
- ``local_lambda``: ``local_lambda.add(name, code_dir, ...)`` registers a handler *and* creates
  the function in moto, returning its ARN, so direct invokes, S3 notifications and state
  machine Task states reach the handler in process.
- ``template_stack``: the project's ``template.yaml`` deployed into ``mocked_aws`` (bucket
  with its notifications, every function, state machines with their substitutions); a
  :class:`~maaskit.local.deploy.Deployment`. ``deploy_template(router, path)`` does the same
  for another template.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from maaskit.local import resources
from maaskit.local.deploy import DUMMY_CREDENTIALS as PLACEHOLDER_CREDENTIALS
from maaskit.local.deploy import Deployment, deploy
from maaskit.local.lambda_router import DEFAULT_REGION, LambdaRouter
from maaskit.local.s3_conditional import make_conditional_writes_atomic
from maaskit.local.template import Template

# S3's conditional writes are atomic; moto's are made so for every test that uses these fixtures
# or mock_aws directly (the registry's version claims race in tests).
make_conditional_writes_atomic()

DUMMY_CREDENTIALS = {
    **PLACEHOLDER_CREDENTIALS,
    "AWS_DEFAULT_REGION": DEFAULT_REGION,
    "AWS_REGION": DEFAULT_REGION,
}


class LocalLambdas:
    """Functions that exist in moto and run in process through one router."""

    def __init__(self, router: LambdaRouter, region: str = DEFAULT_REGION) -> None:
        self.router = router
        self.region = region
        self._lambda = boto3.client("lambda", region_name=region)
        self._role_arn: str | None = None

    def add(
        self,
        name: str,
        code_dir: str | Path,
        handler: str = "app.lambda_handler",
        *,
        environment: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        memory_mb: int = 512,
    ) -> str:
        """Register ``name`` with the router and create it in moto; return its ARN."""
        if self._role_arn is None:
            self._role_arn = resources.ensure_role(boto3.client("iam", region_name=self.region))
        spec = self.router.register(
            name,
            code_dir,
            handler,
            environment=environment,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            region=self.region,
        )
        return resources.create_function(self._lambda, spec, self._role_arn)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def mocked_aws(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def lambda_router() -> Iterator[LambdaRouter]:
    router = LambdaRouter()
    with router.installed():
        yield router


@pytest.fixture
def local_lambda(mocked_aws: None, lambda_router: LambdaRouter) -> LocalLambdas:
    return LocalLambdas(lambda_router)


def wait_for_execution(sfn: Any, execution_arn: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Poll a Step Functions execution until it leaves RUNNING (moto runs it in a thread)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s} s")
        time.sleep(0.05)


def deploy_template(
    router: LambdaRouter, path: str | Path, *, parameters: Mapping[str, str] | None = None
) -> Deployment:
    """Deploy ``path`` into the active ``mock_aws`` (no endpoint: moto intercepts boto3)."""
    template = Template.load(path, parameters=parameters or {})
    return deploy(
        template,
        router,
        lambda service: boto3.client(service, region_name=template.region),  # type: ignore[call-overload]
    )


@pytest.fixture
def template_stack(
    mocked_aws: None, lambda_router: LambdaRouter, request: pytest.FixtureRequest
) -> Deployment:
    return deploy_template(lambda_router, request.config.rootpath / "template.yaml")
